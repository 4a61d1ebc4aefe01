"""A developer's patches (KernelSpec.extra_patches) in the kernel's cache key: their contents and order count,
their paths and packaging (one mbox or single files) do not, and a spec without them keeps the key it
had before they existed (the cached kernels stay cached)."""

import pytest

from harness.build import cache, kernel
from harness.spec.config import KernelSpec
from tests.unit import fake_kernel as fk

A = fk.mail("fix a", fk.GOOD_HUNK)
B = fk.mail("fix b", fk.STALE_HUNK).replace("0123456789abcdef0123", "fedcba98765432100123")


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    return str(fk.tree(tmp_path / "linux"))


def _key(source, *paths) -> str:
    return cache.digest(kernel.inputs(KernelSpec(source=source, extra_patches=tuple(map(str, paths)))))


def _file(path, text):
    path.write_text(text)
    return path


def test_a_spec_without_extra_patches_has_the_inputs_it_always_had(source):
    meta = kernel.inputs(KernelSpec(source=source, patches="reintroduce-2012"))
    assert set(meta) == {"source", "source_identity", "fragments", "patches", "toolchain", "recipe"}


def test_contents_and_order_count_paths_and_packaging_do_not(source, tmp_path):
    a, b = _file(tmp_path / "a.patch", A), _file(tmp_path / "b.patch", B)
    base = _key(source)
    k = _key(source, a, b)
    assert k != base
    assert _key(source, _file(tmp_path / "elsewhere.patch", A), b) == k, "a copy elsewhere is the same patch"
    assert _key(source, _file(tmp_path / "both.mbox", A + B)) == k, "an mbox of the two is the same two patches"
    assert _key(source, b, a) != k, "order is an input"
    assert _key(source, _file(tmp_path / "a2.patch", A.replace("line 5 fixed", "line 5 fixed again")), b) != k


def test_the_inputs_name_each_patch_by_sha256_and_subject(source, tmp_path):
    meta = kernel.inputs(KernelSpec(source=source, extra_patches=(str(_file(tmp_path / "both.mbox", A + B)),)))
    assert [p["subject"] for p in meta["extra_patches"]] == ["fix a", "fix b"]
    assert all(len(p["sha256"]) == 64 for p in meta["extra_patches"])
