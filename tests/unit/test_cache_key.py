"""Kernel cache keys: every input changes the key; nothing else does."""

import pytest

from harness.build import cache
from harness.build import kernel
from harness.spec.config import KernelSpec
from harness.core.errors import InputError


def test_digest_ignores_dict_order_but_not_content():
    assert cache.digest({"a": 1, "b": 2}) == cache.digest({"b": 2, "a": 1})
    assert cache.digest({"a": 1}) != cache.digest({"a": 2})


@pytest.fixture
def fake_inputs(monkeypatch, tmp_path):
    src = tmp_path / "linux"
    src.mkdir()
    (src / "Makefile").write_text("VERSION = 6\n")
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    return src


def test_key_follows_source_fragments_patches_and_toolchain(fake_inputs, monkeypatch):
    base = KernelSpec(source=str(fake_inputs))
    k0 = cache.digest(kernel.inputs(base))
    assert cache.digest(kernel.inputs(base)) == k0, "same inputs, same key"
    assert cache.digest(kernel.inputs(KernelSpec(source=str(fake_inputs), fragments=("virt-arm", "cma")))) != k0
    assert cache.digest(kernel.inputs(KernelSpec(source=str(fake_inputs), patches="reintroduce-2012"))) != k0
    (fake_inputs / "Makefile").write_text("VERSION = 7\n")
    assert cache.digest(kernel.inputs(base)) != k0, "a changed source file changes the key"
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 13")
    k_tool = cache.digest(kernel.inputs(base))
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    assert k_tool != cache.digest(kernel.inputs(base))


def test_bad_kernel_inputs_name_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        kernel.inputs(KernelSpec(source=str(tmp_path / "missing")))
    with pytest.raises(InputError, match="without a top-level Makefile"):
        kernel.inputs(KernelSpec(source=str(tmp_path)))
    with pytest.raises(InputError, match="known fragments: .*virt-arm"):
        kernel.fragment_path("virt-amr")
    with pytest.raises(InputError, match="known series: .*reintroduce-2012"):
        kernel.series_patches("reintroduce-2021")


def test_every_patch_series_resolves():
    for series in sorted(kernel.PATCHES_DIR.glob("*/series")):
        assert kernel.series_patches(series.parent.name), series


def test_store_publishes_atomically(tmp_path):
    store = cache.Store("k", root=tmp_path)
    assert not store.has("x")
    with pytest.raises(RuntimeError):
        with store.building("x", {}) as work:
            (work / "half").write_text("")
            raise RuntimeError("build failed")
    assert not store.has("x"), "a failed build is never published"
    with store.building("x", {"v": 1}) as work:
        (work / "zImage").write_text("k")
    assert store.has("x") and (store.path("x") / "zImage").read_text() == "k"


def test_an_allnoconfig_kernel_keeps_the_key_it_had_before_config_bases(fake_inputs):
    """The key dict of the default base is exactly the one made before `KernelSpec.base` existed: no
    `base` entry, so every kernel in the cache keeps its key."""
    spec = KernelSpec(source=str(fake_inputs))
    before = {"source": str(fake_inputs), "source_identity": kernel.source_identity(fake_inputs),
              "fragments": {n: kernel.fragment_path(n).read_text() for n in ("virt-arm", "cma", "trace")},
              "patches": {}, "toolchain": "gcc 12", "recipe": 1}
    assert kernel.inputs(spec) == before
    assert kernel.inputs(KernelSpec(source=str(fake_inputs), base="allnoconfig")) == before
    assert cache.digest(kernel.inputs(KernelSpec(source=str(fake_inputs), base="vexpress_defconfig"))) \
        != cache.digest(before)
