"""Bad input of a developer's kernel, each refused by name before anything is built: a patch that does not
apply (file and hunk), a patch for another kernel version (the missing file and the tree's version), a
patch already in the tree, a --tree that is not a kernel source. On fake trees: no kernel is read."""

import pytest

from harness.build import kernel, preflight
from harness.core.errors import InputError
from harness.spec.config import KernelSpec
from tests.unit import fake_kernel as fk


@pytest.fixture(autouse=True)
def no_toolchain(monkeypatch, tmp_path):
    """The cache key needs the cross-compiler's version; the check needs no compiler, so fake it."""
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path / "cache"))


def _spec(source, tmp_path, *hunks, path="fs/buffer.c") -> KernelSpec:
    files = []
    for i, hunk in enumerate(hunks):
        f = tmp_path / f"{i:04d}-fix.patch"
        f.write_text(fk.mail(f"fix {i}", hunk, path))
        files.append(str(f))
    return KernelSpec(source=str(source), extra_patches=tuple(files))


@pytest.mark.parametrize("kind", ["dir", "tarball", pytest.param("git", marks=fk.needs_git)])
def test_a_patch_that_applies_passes_on_every_kind_of_source(tmp_path, kind):
    if kind == "dir":
        source = fk.tree(tmp_path / "linux")
    elif kind == "tarball":
        source = fk.tarball(tmp_path)
    else:
        repo = fk.repository(tmp_path)
        source = f"git:{repo}@{fk.git(repo, 'rev-parse', 'base').strip()}"
    preflight.check([_spec(source, tmp_path, fk.GOOD_HUNK)])


def test_a_stale_hunk_is_named_with_its_file_header_and_the_trees_version(tmp_path):
    src = fk.tree(tmp_path / "linux")
    with pytest.raises(InputError) as e:
        preflight.check([_spec(src, tmp_path, fk.GOOD_HUNK, fk.STALE_HUNK)])
    msg = str(e.value)
    assert "0001-fix.patch 'fix 1'" in msg, "the file and its subject"
    assert "fs/buffer.c: hunk #1 (patch line" in msg and "@@ -20,3 +20,3 @@" in msg
    assert "Linux 6.1.99" in msg and "1 patch before it" in msg


def test_a_patch_for_another_version_names_the_missing_file_and_the_version(tmp_path):
    src = fk.tree(tmp_path / "linux")
    with pytest.raises(InputError, match=r"(?s)mm/execmem.c: no such file in the kernel source.*another kernel "
                                         r"version\? This tree is Linux 6.1.99"):
        preflight.check([_spec(src, tmp_path, fk.GOOD_HUNK, path="mm/execmem.c")])


def test_a_patch_already_in_the_tree_says_so(tmp_path):
    src = fk.tree(tmp_path / "linux")
    (src / "fs/buffer.c").write_text(fk.BUFFER_C.replace("line 5\n", "line 5 fixed\n"))
    with pytest.raises(InputError, match="already applied"):
        preflight.check([_spec(src, tmp_path, fk.GOOD_HUNK)])


def test_a_cached_kernel_is_not_checked_again(tmp_path, monkeypatch):
    src = fk.tree(tmp_path / "linux")
    spec = _spec(src, tmp_path, fk.STALE_HUNK)
    monkeypatch.setattr(preflight, "_cached", lambda s: True)
    preflight.check([spec])         # built before from these very inputs: nothing to try


@pytest.mark.parametrize("make, missing", [
    (lambda d: None, "no such folder"),
    (lambda d: (d.mkdir(), (d / "README").write_text("notes\n")), "lacks: a top-level Makefile that sets VERSION"),
    (lambda d: (fk.tree(d), (d / "arch/arm/Kconfig").unlink()), "lacks: arch/arm/Kconfig"),
])
def test_a_tree_that_is_not_a_kernel_source_is_refused(tmp_path, make, missing):
    d = tmp_path / "tree"
    make(d)
    with pytest.raises(InputError, match=missing):
        preflight.check_tree(d)


def test_version_and_touched_files_are_read_from_the_text():
    assert preflight.version_of(fk.FILES["Makefile"]) == "6.1.99"
    assert preflight.version_of("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\n") == "6.12.0-rc1"
    assert preflight.version_of("all:\n") is None
    assert preflight.touched(fk.mail("x", fk.GOOD_HUNK)) == {"fs/buffer.c"}
    new_file = "--- /dev/null\n+++ b/mm/new.c\n@@ -0,0 +1 @@\n+x\n"
    assert preflight.touched(new_file) == {"mm/new.c"}
