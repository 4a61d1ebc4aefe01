"""A kernel's config base (KernelSpec.base): allnoconfig, a defconfig or a .config file. What each
contributes to the cache key, how a defconfig is checked against the source before anything is built,
and how a scenario's `kernel.base` is validated. On a fake tree: no kernel is read."""

import pytest

from harness.build import cache, kernel, kernel_base
from harness.core.errors import InputError
from harness.spec import config
from harness.spec.config import KernelSpec
from tests.unit import fake_kernel as fk

DEFCONFIGS = ("bcm2835_defconfig", "multi_v7_defconfig", "omap2plus_defconfig", "vexpress_defconfig")


@pytest.fixture
def src(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    root = fk.tree(tmp_path / "linux")
    for name in DEFCONFIGS:
        (root / "arch/arm/configs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "arch/arm/configs" / name).write_text(f"# {name}\nCONFIG_CMA=y\n")
    return root


def _key(src, base: str) -> str:
    return cache.digest(kernel.inputs(KernelSpec(source=str(src), base=base)))


def test_base_kind_tells_the_three_apart():
    assert config.base_kind("allnoconfig") == "allnoconfig"
    assert config.base_kind("omap2plus_defconfig") == "defconfig"
    for path in ("./board.config", "/boot/config-6.1.0-rpi", "board.config", "~/x/.config", "/x/my_defconfig"):
        assert config.base_kind(path) == "file", path
    for bad in ("omap2plus", "defconfig", "_defconfig", ""):
        assert config.base_kind(bad) is None, bad


def test_a_defconfig_base_is_keyed_by_its_name(src):
    meta = kernel.inputs(KernelSpec(source=str(src), base="omap2plus_defconfig"))
    assert meta["base"] == {"defconfig": "omap2plus_defconfig"}
    keys = {_key(src, b) for b in ("allnoconfig", "omap2plus_defconfig", "vexpress_defconfig")}
    assert len(keys) == 3
    assert _key(src, "omap2plus_defconfig") == _key(src, "omap2plus_defconfig")


def test_an_unknown_defconfig_of_a_directory_source_names_the_close_ones(src):
    with pytest.raises(InputError, match=r"'omap2_defconfig': kernel source .* has no arch/arm/configs/"
                                         r"omap2_defconfig; close names there: omap2plus_defconfig"):
        kernel.inputs(KernelSpec(source=str(src), base="omap2_defconfig"))
    with pytest.raises(InputError, match=r"close names there: bcm2835_defconfig, multi_v7_defconfig"):
        kernel.inputs(KernelSpec(source=str(src), base="zzzzzzzz_defconfig"))


def test_check_defconfig_is_pure_and_says_when_there_are_none():
    kernel_base.check_defconfig("a_defconfig", ["a_defconfig"], "s")
    with pytest.raises(InputError, match=r"close names there: \(none: it has no defconfigs\)"):
        kernel_base.check_defconfig("a_defconfig", [], "s")


def test_a_tarball_s_defconfig_is_checked_once_unpacked(tmp_path, monkeypatch):
    """Listing a tarball costs a full decompression: the name is checked in the unpacked tree instead."""
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    tarball = fk.tarball(tmp_path)
    assert kernel.inputs(KernelSpec(source=str(tarball), base="nosuch_defconfig"))["base"] == \
        {"defconfig": "nosuch_defconfig"}


@fk.needs_git
def test_a_git_source_s_defconfig_is_checked_in_the_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    repo = fk.repository(tmp_path)
    (repo / "arch/arm/configs").mkdir()
    (repo / "arch/arm/configs/vexpress_defconfig").write_text("CONFIG_ARCH_VEXPRESS=y\n")
    fk.git(repo, "add", ".")
    fk.git(repo, "commit", "-qm", "defconfig")
    head = fk.git(repo, "rev-parse", "HEAD").strip()
    source = f"git:{repo}@{head}"
    assert kernel.inputs(KernelSpec(source=source, base="vexpress_defconfig"))["base"] == {"defconfig": "vexpress_defconfig"}
    with pytest.raises(InputError, match=r"has no arch/arm/configs/vexpres_defconfig; close names there: vexpress_defconfig"):
        kernel.inputs(KernelSpec(source=source, base="vexpres_defconfig"))


def test_a_config_file_base_is_keyed_by_its_text_not_its_path(src, tmp_path):
    a, b = tmp_path / "a.config", tmp_path / "elsewhere" / "board.config"
    b.parent.mkdir()
    a.write_text("CONFIG_ARCH_OMAP2PLUS=y\n")
    b.write_text(a.read_text())
    assert kernel.inputs(KernelSpec(source=str(src), base=str(a)))["base"] == {"config": "CONFIG_ARCH_OMAP2PLUS=y\n"}
    assert _key(src, str(a)) == _key(src, str(b)), "the same .config anywhere is the same kernel"
    k0 = _key(src, str(a))
    a.write_text("CONFIG_ARCH_OMAP2PLUS=y\nCONFIG_SMP=y\n")
    assert _key(src, str(a)) != k0, "a changed .config changes the key"
    with pytest.raises(InputError, match=r"kernel config base .*missing.config does not exist"):
        kernel.inputs(KernelSpec(source=str(src), base=str(tmp_path / "missing.config")))


def test_the_record_names_a_base_only_when_it_is_not_allnoconfig(src, tmp_path):
    from harness.build import kernel_record
    from harness.build.kernel import KernelBuild

    kb = KernelBuild("k" * 24, tmp_path / "no-tree")
    assert "base" not in kernel_record.describe(KernelSpec(source=str(src)), kb)
    assert kernel_record.describe(KernelSpec(source=str(src), base="vexpress_defconfig"), kb)["base"] == "vexpress_defconfig"


def test_a_scenario_base_is_validated_and_inherited_by_its_variants():
    scn = config.from_dict({"kernel": {"base": "multi_v7_defconfig"}, "variants": {"x": {"patches": "reintroduce-2012"}}})
    assert scn.kernel.base == scn.variant("x").base == "multi_v7_defconfig"
    assert config.from_dict({}).kernel.base == "allnoconfig"
    with pytest.raises(InputError, match=r"s.yaml: `kernel.base` = 'omap2plus' is not a config base; allowed: "
                                         r"allnoconfig, a NAME_defconfig"):
        config.from_dict({"kernel": {"base": "omap2plus"}}, "s.yaml")
    with pytest.raises(InputError, match=r"`variants.y.base` = 'x' is not a config base"):
        config.from_dict({"variants": {"y": {"base": "x"}}}, "s.yaml")
