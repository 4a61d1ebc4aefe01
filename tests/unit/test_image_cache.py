"""The guest images made once and kept (build/image_cache.py): the pristine disk is made by mkfs.ext4 once
per input, every boot sees the same bytes, and a board that writes gets a copy of its own."""

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from harness.boards.qemu import QemuBoardConfig, qemu_argv
from harness.build import cache, image, image_cache
from harness.build.image import GuestImages
from harness.spec.config import WorkloadSpec
from harness.spec.qemu_hardware import QemuHardware

SMALL = WorkloadSpec(disk_mib=32, tree_files=20)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / image_cache.STORE


def test_the_pristine_disk_is_made_once_and_its_record_is_its_own_sha256(store, monkeypatch):
    made = []
    real = image.make_disk
    monkeypatch.setattr(image, "make_disk", lambda *a, **k: made.append(a) or real(*a, **k))
    first, record = image_cache.disk_template(SMALL)
    again, record_again = image_cache.disk_template(SMALL)
    assert len(made) == 1
    assert first == again and record == record_again
    assert record["sha256"] == cache.file_sha256(first) and record["bytes"] == 32 << 20
    assert first.parent.parent == store


def test_only_the_fields_that_shape_the_disk_key_it():
    key = lambda w: cache.digest(image_cache.disk_inputs(w))
    assert key(replace(SMALL, idle_ms=5, scan_workers=1, churn_workers=3, fill_mib=8)) == key(SMALL)
    assert key(replace(SMALL, tree_files=21)) != key(SMALL)
    assert key(replace(SMALL, block_size=1024)) != key(SMALL)
    assert key(replace(SMALL, profile="journal")) != key(SMALL)
    assert key(replace(SMALL, profile="none")) == key(SMALL)     # none and nojournal both format without one


def test_a_board_that_writes_gets_a_sparse_copy_and_the_pristine_disk_stays_as_made(store, tmp_path):
    template, record = image_cache.disk_template(SMALL)
    copy = image_cache.fresh_disk(SMALL, tmp_path / "disk.img")
    assert copy.read_bytes() == template.read_bytes()
    assert os.stat(copy).st_blocks * 512 < (32 << 20) // 2          # holes kept: not 32 MiB written
    with open(copy, "r+b") as f:
        f.write(b"written by the guest")
    assert cache.file_sha256(template) == record["sha256"]


def test_a_run_on_a_shared_disk_records_which_disk_it_read(store, tmp_path, monkeypatch):
    monkeypatch.setattr(image, "make_initramfs", lambda kb, ko, out, extra=(): out)
    monkeypatch.setattr(image_cache, "board_dtb", lambda machine, area, folder: folder / "board.dtb")
    imgs = image_cache.for_run(None, Path("/m.ko"), QemuHardware(2, 128), None, SMALL, tmp_path / "images",
                               shared_disk=True)
    template, record = image_cache.disk_template(SMALL)
    assert imgs.disk == template and imgs.disk_shared
    assert not (tmp_path / "images" / image_cache.DISK).exists()
    kept = json.loads((tmp_path / "images" / image_cache.DISK_RECORD).read_text())
    assert kept["sha256"] == record["sha256"] and kept["path"] == str(template)
    own = image_cache.for_run(None, Path("/m.ko"), QemuHardware(2, 128), None, SMALL, tmp_path / "own")
    assert own.disk == tmp_path / "own" / image_cache.DISK and not own.disk_shared


def test_qemu_reads_a_shared_disk_through_a_snapshot_and_writes_its_own_copy(tmp_path):
    def drive(shared):
        cfg = QemuBoardConfig(QemuHardware(2, 128), Path("/z"), GuestImages(Path("/i"), Path("/d"), Path("/t"), shared),
                              tmp_path)
        argv = qemu_argv(cfg, "qemu-system-arm", tmp_path / "s", tmp_path / "t")
        return argv[argv.index("-drive") + 1]
    assert drive(True) == "file=/d,if=none,format=raw,id=disk0,snapshot=on"
    assert drive(False) == "file=/d,if=none,format=raw,id=disk0"
