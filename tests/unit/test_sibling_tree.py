"""A variant's tree from a built sibling's (harness/build/sibling_tree.py): which entry is a sibling, and the
copy with the sibling's patches reverted, by the real `patch` on a small tree."""

import os

from harness.build import cache, sibling_tree
from harness.build.kernel import PATCH_ARGV
from harness.core import proc

PATCH = """--- a/fs/buffer.c
+++ b/fs/buffer.c
@@ -1,3 +1,3 @@
 int a;
-int pinned = 0;
+int pinned = 1;
 int b;
"""
PRISTINE = "int a;\nint pinned = 0;\nint b;\n"


def _meta(**over):
    return {"source": "/usr/src/linux-source-6.1.tar.xz", "source_identity": "tar:abc", "fragments": {"x": "CONFIG_X=y"},
            "patches": {}, "toolchain": "gcc", "recipe": 1} | over


def test_the_tree_key_ignores_the_patches_and_nothing_else():
    base = sibling_tree.tree_key(_meta())
    assert sibling_tree.tree_key(_meta(patches={"0001.patch": PATCH})) == base
    assert sibling_tree.tree_key(_meta(extra_patches=[{"sha256": "1", "subject": "s"}])) == base
    assert sibling_tree.tree_key(_meta(fragments={"x": "CONFIG_X=n"})) != base
    assert sibling_tree.tree_key(_meta(toolchain="gcc 13")) != base
    assert sibling_tree.tree_key(_meta(base="bcm2835_defconfig")) != base


def _entry(store: cache.Store, key: str, tree_key: str | None, complete: bool = True, patches: list[str] = ()):
    work = store.path(key)
    (work / "tree" / "fs").mkdir(parents=True)
    (work / "tree" / "fs" / "buffer.c").write_text(PRISTINE)
    for i, text in enumerate(patches, 1):
        path = work / f"p{i}.patch"
        path.write_text(text)
        proc.run([*PATCH_ARGV, "-i", str(path)], cwd=work / "tree")
        sibling_tree.keep_applied(work, path)
    if tree_key:
        sibling_tree.record(work, tree_key)
    if complete:
        (work / ".complete").write_text("")
    return work


def test_a_sibling_is_a_complete_entry_of_the_same_tree_key(tmp_path):
    store = cache.Store("kernel", root=tmp_path)
    _entry(store, "other", "k2")
    _entry(store, "half", "k1", complete=False)         # a build that did not finish is no sibling
    _entry(store, "old", None)                          # built before entries recorded their tree key
    assert sibling_tree.find(store, "k1") is None
    good = _entry(store, "good", "k1")
    assert sibling_tree.find(store, "k1") == good


def test_the_copy_reverts_the_siblings_patches_and_keeps_every_timestamp(tmp_path):
    store = cache.Store("kernel", root=tmp_path)
    sib = _entry(store, "patched", "k1", patches=[PATCH])
    assert (sib / "tree/fs/buffer.c").read_text() != PRISTINE
    (sib / "tree" / "fs" / "buffer.o").write_text("object")
    os.utime(sib / "tree/fs/buffer.o", (1_000_000, 1_000_000))
    tree, log, lines = tmp_path / "new-tree", tmp_path / "build.log", []
    assert sibling_tree.copy_tree(sib, tree, log, lines.append)
    assert (tree / "fs/buffer.c").read_text() == PRISTINE
    assert (tree / "fs/buffer.o").stat().st_mtime == 1_000_000          # make sees only the patched file as newer
    assert (tree / "fs/buffer.c").stat().st_mtime > 1_000_000
    assert (sib / "tree/fs/buffer.c").read_text() != PRISTINE          # the sibling itself is untouched
    assert "patched" in lines[0]


def test_a_sibling_whose_patches_do_not_revert_leaves_no_tree(tmp_path):
    store = cache.Store("kernel", root=tmp_path)
    sib = _entry(store, "patched", "k1", patches=[PATCH])
    (sib / "tree/fs/buffer.c").write_text("int a;\nint something_else;\nint b;\n")   # not what its record says
    tree, lines = tmp_path / "new-tree", []
    assert not sibling_tree.copy_tree(sib, tree, tmp_path / "build.log", lines.append)
    assert not tree.exists()
    assert "does not revert" in lines[-1] and "unpacking the source instead" in lines[-1]


def test_applied_patches_are_kept_in_the_order_they_were_applied(tmp_path):
    (tmp_path / "entry").mkdir()
    for name in ("0002-b.patch", "0001-a.patch", "fix.patch"):
        (tmp_path / name).write_text(name)
        sibling_tree.keep_applied(tmp_path / "entry", tmp_path / name)
    kept = sorted(p.name for p in (tmp_path / "entry" / sibling_tree.APPLIED).iterdir())
    assert kept == ["0001-0002-b.patch", "0002-0001-a.patch", "0003-fix.patch"]
