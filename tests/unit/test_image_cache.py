"""The image parts made once and kept (build/image_cache.py): the workload's tree is written once per
input, yet every disk is a new file system; the DTB is made once, yet every copy gets fresh seeds."""

import shutil
import subprocess
from dataclasses import replace

import pytest

from harness.build import image, image_cache
from harness.spec.config import WorkloadSpec

SMALL = WorkloadSpec(disk_mib=32, tree_files=20)
needs_e2fs = pytest.mark.skipif(shutil.which("dumpe2fs") is None, reason="e2fsprogs is not installed")
needs_dtc = pytest.mark.skipif(shutil.which("fdtput") is None, reason="device-tree-compiler is not installed")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path / "cache"))


def _uuid(disk) -> str:
    out = subprocess.run(["dumpe2fs", "-h", str(disk)], capture_output=True, text=True, check=True).stdout
    return next(line.split()[-1] for line in out.splitlines() if line.startswith("Filesystem UUID"))


@needs_e2fs
def test_the_tree_is_written_once_and_every_disk_is_a_new_file_system(tmp_path, monkeypatch):
    written = []
    real = image.populate_tree
    monkeypatch.setattr(image, "populate_tree", lambda *a, **k: written.append(a) or real(*a, **k))
    a = image_cache.fresh_disk(SMALL, tmp_path / "a.img")
    b = image_cache.fresh_disk(SMALL, tmp_path / "b.img")
    assert len(written) == 1
    assert _uuid(a) != _uuid(b), "mkfs.ext4 draws a UUID for each disk"
    listing = subprocess.run(["debugfs", "-R", "ls -l /tree/d0000", str(a)], capture_output=True, text=True).stdout
    assert "f019" in listing and "f020" not in listing, "the cached tree's 20 files are on the disk"


def test_only_the_file_count_keys_the_tree(monkeypatch):
    roots = {image_cache.tree_root(SMALL), image_cache.tree_root(replace(SMALL, idle_ms=5, disk_mib=64)),
             image_cache.tree_root(replace(SMALL, tree_files=21))}
    assert len(roots) == 2


@needs_dtc
def test_each_copy_of_the_cached_dtb_gets_its_own_seeds(tmp_path, monkeypatch):
    def fake_make_dtb(machine, area, out, log_path=None):       # a blob with QEMU's /chosen seeds
        src = tmp_path / "base.dts"
        src.write_text('/dts-v1/;\n/ {\n\tchosen {\n\t\trng-seed = <1 2 3 4 5 6 7 8>;\n'
                       '\t\tkaslr-seed = <9 10>;\n\t};\n};\n')
        subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(src)], check=True)
        return out
    monkeypatch.setattr(image, "make_dtb", fake_make_dtb)
    monkeypatch.setattr(image_cache, "dtb_inputs", lambda machine, area: {"kind": "dtb", "test": True})
    seeds = []
    for name in ("one", "two"):
        dtb = image_cache.board_dtb(None, None, tmp_path / name)
        got = [subprocess.run(["fdtget", "-t", "x", str(dtb), "/chosen", p], capture_output=True, text=True,
                              check=True).stdout.split() for p in ("rng-seed", "kaslr-seed")]
        assert [len(g) for g in got] == [8, 2]
        assert "kaslr-seed" in (tmp_path / name / "board.dts").read_text()
        seeds.append(got)
    assert seeds[0] != seeds[1] and seeds[0][0] != ["1", "2", "3", "4", "5", "6", "7", "8"]
