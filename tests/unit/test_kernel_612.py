"""Linux 6.12 as a second embedded source: `kernel.source: debian-6.12` selects Debian's linux-source-6.12
tarball and the 6.12 ports of the same series names; the module template takes the right .remove for each
kernel version. Render and resolve only: nothing is built here."""

import re
import shutil
import subprocess

import pytest

from harness.build import cache, kernel, module, toolchain
from harness.core.errors import InputError
from harness.spec import config
from harness.spec.config import KernelSpec, ModuleSpec
from harness.spec.variants import EMBEDDED

PATCHED = sorted((v for v in EMBEDDED.values() if v.series), key=lambda v: v.name)
SCENARIO_612 = config.PROJECT_ROOT / "images" / "scenarios" / "seed-2012-6.12.yaml"


def _defence_numbers(patches) -> tuple[int, ...]:
    """The defences a list of defence patches removes, from their 000N prefix."""
    return tuple(int(p.name[:4]) for p in patches)


@pytest.mark.parametrize("variant", PATCHED, ids=lambda v: v.name)
def test_each_variant_name_selects_its_series_per_source(variant):
    p61 = kernel.series_patches(variant.series, "debian")
    p612 = kernel.series_patches(variant.series, "debian-6.12")
    assert all(p.parent == kernel.PATCHES_DIR / "defences" for p in p61)
    assert all(p.parent == kernel.PATCHES_DIR / "debian-6.12" / "defences" for p in p612)
    # Same defences removed, in the same order, under the same patch names; different contents.
    assert _defence_numbers(p61) == _defence_numbers(p612) == variant.removed
    assert [p.name for p in p61] == [p.name for p in p612]
    assert all(a.read_text() != b.read_text() for a, b in zip(p61, p612))


def test_series_default_and_path_sources_keep_the_61_folder(tmp_path):
    assert kernel.series_patches("remove-3") == kernel.series_patches("remove-3", "debian")
    assert kernel.patches_dir(str(tmp_path / "linux")) == kernel.PATCHES_DIR
    assert kernel.patches_dir("debian-6.12") == kernel.PATCHES_DIR / "debian-6.12"


def test_both_sources_know_the_same_series_names():
    names = lambda d: sorted(p.parent.name for p in d.glob("*/series"))
    assert names(kernel.patches_dir("debian")) == names(kernel.patches_dir("debian-6.12")) \
        == sorted(v.series for v in PATCHED)


def test_every_612_patch_says_what_it_is_based_on():
    for patch in sorted((kernel.PATCHES_DIR / "debian-6.12" / "defences").glob("*.patch")):
        text = patch.read_text()
        assert "TEST-ONLY" in text and "linux-source-6.12 (6.12.117)" in text, patch


def test_a_missing_series_names_the_source_and_its_choices():
    with pytest.raises(InputError, match=r"patch series 'remove-4' not found for kernel source 'debian-6.12' "
                                         r"\(.*debian-6.12/remove-4/series\); known series: .*reintroduce-2012.*remove-2-3"):
        kernel.series_patches("remove-4", "debian-6.12")


@pytest.fixture
def fake_tarballs(tmp_path, monkeypatch):
    t61, t612 = tmp_path / "linux-source-6.1.tar.xz", tmp_path / "linux-source-6.12.tar.xz"
    t61.write_bytes(b"6.1")
    t612.write_bytes(b"6.12")
    monkeypatch.setattr(kernel, "DEBIAN_KERNEL_TARBALL", t61)
    monkeypatch.setattr(kernel, "DEBIAN_KERNEL_612_TARBALL", t612)
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    return t61, t612


def test_embedded_source_names_resolve_to_their_tarballs(fake_tarballs):
    t61, t612 = fake_tarballs
    assert kernel.source_path(KernelSpec(source="debian")) == t61
    assert kernel.source_path(KernelSpec(source="debian-6.12")) == t612
    t612.unlink()
    with pytest.raises(InputError, match=r"does not exist; install it with: apt-get install -y linux-source-6.12$"):
        kernel.source_path(KernelSpec(source="debian-6.12"))


def test_the_same_variant_on_each_source_is_a_different_kernel(fake_tarballs):
    keys = {src: cache.digest(kernel.inputs(KernelSpec(source=src, patches="reintroduce-2012")))
            for src in ("debian", "debian-6.12")}
    assert keys["debian"] != keys["debian-6.12"]
    stock = cache.digest(kernel.inputs(KernelSpec(source="debian")))
    assert stock not in keys.values()


def test_scenario_accepts_exactly_the_embedded_source_names():
    for name in toolchain.DEBIAN_SOURCES:
        assert config.from_dict({"kernel": {"source": name}}).kernel.source == name
    with pytest.raises(InputError) as e:
        config.from_dict({"kernel": {"source": "debian-6.13"}, "variants": {"stock": {}}})
    msg = str(e.value)
    assert "`kernel.source` = 'debian-6.13' is not an embedded kernel source" in msg
    assert re.search(r"allowed: (.*), or a path", msg).group(1).split(", ") == list(toolchain.DEBIAN_SOURCES)
    with pytest.raises(InputError, match=r"`variants.remove-1.source` = 'debian6.12'"):
        config.from_dict({"variants": {"remove-1": {"source": "debian6.12", "patches": "remove-1"}}})
    # A path that happens to start with "debian" is a path.
    assert config.from_dict({"kernel": {"source": "debian-trees/linux"}}).kernel.source == "debian-trees/linux"


def test_the_612_scenario_is_the_seed_on_612():
    seed, s612 = config.load(None), config.load(SCENARIO_612)
    assert s612.name == "seed-2012-6.12"
    assert {n: v.source for n, v in s612.variants.items()} == {n: "debian-6.12" for n in seed.variants}
    assert {n: v.patches for n, v in s612.variants.items()} == {n: v.patches for n, v in seed.variants.items()}
    for section in ("board", "area", "module", "workload", "trace"):
        assert getattr(s612, section) == getattr(seed, section), section
    for v in s612.variants.values():
        if v.patches:
            assert kernel.series_patches(v.patches, v.source)


# ---- the module template on 6.1 and 6.12 -------------------------------------------------------------

def _version_code(major: int, minor: int, sub: int) -> int:
    return (major << 16) + (minor << 8) + min(sub, 255)   # include/generated/uapi/linux/version.h


def _preprocess(c_source: str, version: tuple[int, int, int], tmp_path) -> str:
    """The rendered module through the C preprocessor, with linux/version.h as the kernel generates it
    and every other kernel header empty: which code a kernel of `version` compiles."""
    inc = tmp_path / f"inc-{'.'.join(map(str, version))}"
    for header in re.findall(r"^#include <(.+)>", c_source, re.M):
        (inc / header).parent.mkdir(parents=True, exist_ok=True)
        (inc / header).write_text("")
    (inc / "linux/version.h").write_text(
        f"#define LINUX_VERSION_CODE {_version_code(*version)}\n"
        "#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))\n")
    src = tmp_path / "cma_harness.c"
    src.write_text(c_source)
    return subprocess.run(["cpp", "-nostdinc", "-P", "-I", str(inc), str(src)], check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("cpp") is None, reason="needs the host C preprocessor (cpp)")
@pytest.mark.parametrize("version, remove_type", [((6, 1, 192), "int"), ((6, 10, 14), "int"),
                                                  ((6, 11, 0), "void"), ((6, 12, 117), "void")])
def test_remove_callback_matches_the_kernel_version(version, remove_type, tmp_path):
    out = _preprocess(module.render(ModuleSpec())["cma_harness.c"], version, tmp_path)
    remove = re.search(r"static (\w+) cma_harness_remove\(struct platform_device \*pdev\)\s*\{(.*?)\n\}", out, re.S)
    assert remove and remove.group(1) == remove_type, out
    assert ("return 0;" in remove.group(2)) == (remove_type == "int")
    assert len(re.findall(r"cma_harness_remove\(struct platform_device", out)) == 1
    assert ".remove = cma_harness_remove," in out
    assert "static void cma_harness_teardown(struct platform_device *pdev)" in out


def test_rendered_module_includes_version_h_and_guards_on_6_11():
    c = module.render(ModuleSpec())["cma_harness.c"]
    assert "#include <linux/version.h>" in c
    assert c.count("#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)") == 1
