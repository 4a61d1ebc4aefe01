"""The 2012 loop end to end on stock 6.1: a real kernel, module, guest and workload."""

import json

import pytest

from harness.parsers import kmsg
from harness.store.jsonl import read_jsonl
from harness.orchestrate.run import RunState

pytestmark = pytest.mark.integration
MiB = 1 << 20


@pytest.fixture(scope="module")
def idle_run(run_seed):
    return run_seed("stock", "idle", module={"loops": 3}, workload={"profile": "none"})


def test_idle_area_chunks_fill_the_dedicated_area_exactly(idle_run):
    summary, folder = idle_run
    assert summary.state is RunState.PASS, summary.error
    console = (folder / "console.log").read_text(errors="replace").splitlines()
    pools = [e for e in kmsg.parse_lines(console) if isinstance(e, kmsg.CmaPoolCreated)]
    assert summary.area is not None, "the module did not report its area"
    base, size = summary.area["base"], summary.area["size"]
    assert size == 56 * MiB
    assert base in [p.base for p in pools], "the module's area must be the pool the kernel created from the DT"
    records = list(read_jsonl(folder / "loops.jsonl"))
    assert len(records) == 3
    for rec in records:
        assert rec["outcome"] == "." * 56
        pa = rec["pa"]
        assert all(base <= a < base + size and a % MiB == 0 for a in pa)
        assert sorted(pa) == [base + i * MiB for i in range(56)], "56 chunks must fill the 56 slots exactly"


def test_run_folder_has_everything_a_developer_needs(idle_run):
    summary, folder = idle_run
    for name in ("console.log", "qemu-cmdline.txt", "kernel.config", "scenario.yaml", "loops.jsonl",
                 "summary.json", "cma_harness.c"):
        assert (folder / name).stat().st_size > 0, name
    saved = json.loads((folder / "summary.json").read_text())
    assert saved["loops_done"] == 3 and saved["state"] == "pass"
    assert "CONFIG_CMA=y" in (folder / "kernel.config").read_text()
    for name in ("initramfs.cpio", "board.dtb", "board.dts"):
        assert (folder / "images" / name).stat().st_size > 0, name
    assert not (folder / "images" / "disk.img").exists(), "the guest's scratch disk goes with the guest"


def test_under_filesystem_load_every_asked_loop_is_recorded(run_seed):
    summary, folder = run_seed("stock", "loaded", module={"loops": 12})
    assert summary.state in (RunState.PASS, RunState.REPRODUCED), summary.error
    records = list(read_jsonl(folder / "loops.jsonl"))
    assert [r["loop"] for r in records] == list(range(12))
    assert summary.loops_done == 12
    # The workload really ran: ext4 block-device pages went through migration out of the area.
    assert summary.counters_delta is not None
    assert summary.counters_delta.get("cma/cma-harness-area/alloc_pages_success", 0) >= 12 * 56 * 256 - \
        summary.calls_failed * 256
    # The trace streamed out of the guest (second virtio serial port) and came back whole: its end line
    # arrived, the stream became trace.txt, and it holds the loop thread's cma_alloc events.
    assert summary.trace_error is None
    assert not (folder / "trace.stream").exists()
    trace_text = (folder / "trace.txt").read_text(errors="replace")
    assert trace_text.count("cma_alloc_start") >= 12 * 56 and "end of trace" not in trace_text
    assert summary.accounting["ok"], summary.accounting


@pytest.mark.parametrize("profile, mounted", [("journal", "mounted filesystem with ordered data mode"),
                                              ("nojournal", "mounted filesystem without journal")])
def test_the_workload_profile_reaches_the_guest_filesystem(run_seed, profile, mounted):
    """The journaled profile really mounts a journaled ext4 (and the default one a journal-less one):
    the kernel's own mount line says which."""
    summary, folder = run_seed("stock", f"profile-{profile}", module={"loops": 2}, workload={"profile": profile},
                               trace={"enabled": False})
    assert summary.state in (RunState.PASS, RunState.REPRODUCED), summary.error
    assert f"EXT4-fs (vda): {mounted}" in (folder / "console.log").read_text(errors="replace")

