"""After a run: busy traces and accounting identities from the run folder's files (no QEMU)."""

import json
import shutil

from harness.store.run_folder import RunFolder
from harness.spec import config
from harness.orchestrate import run
from harness import cli
from harness.present import text
from harness.orchestrate.run import RunState, RunSummary
from tests.conftest import FIXTURES

AREA = "cma-harness-area"


def _folder(tmp_path, loop=6):
    shutil.copy(FIXTURES / f"console-reintroduce-2012-loop{loop}.log", tmp_path / "console.log")
    shutil.copy(FIXTURES / f"trace-reintroduce-2012-loop{loop}.txt", tmp_path / "trace.txt")
    (tmp_path / "trace-stats.txt").write_text("entries: 0\noverrun: 0\ndropped events: 0\n")
    return tmp_path


def _summary(sysfs_fail_pages):
    s = RunSummary(RunState.REPRODUCED, "reintroduce-2012", 2, loops_done=2, failed_loops=1, failed_chunks=1,
                   calls_failed=1, area={"name": AREA, "base": 0x48800000, "size": 56 << 20})
    s.counters_delta = {f"cma/{AREA}/alloc_pages_fail": sysfs_fail_pages}
    return s


def test_busy_traces_and_identities_land_in_the_summary_and_the_run_folder(tmp_path):
    folder, s = _folder(tmp_path), _summary(256)
    run.analyse_run(config.Scenario(), RunFolder(folder), s)
    assert s.accounting["status"] == "pass" and s.accounting["detail"] == "records agree with sysfs and trace"
    assert (s.busy["traced"], s.busy["with_try_to_free_buffers"], s.busy["ring_lost_events"]) == (1, 1, 0)
    assert s.busy["chains"][0]["chain"][:3] == ["try_to_free_buffers", "filemap_release_folio", "migrate_pages_batch"]
    [t] = [json.loads(l) for l in (folder / "busy-traces.jsonl").read_text().splitlines()]
    assert (t["loop"], t["chunk"], t["cause"], t["pfn"]) == (6, 55, "T", 0x4bfee)
    assert "top chain (1 of 1): try_to_free_buffers <- filemap_release_folio <- migrate_pages_batch" in "\n".join(
        text.busy_lines(s.busy))


def test_a_mismatch_is_reported_as_it_is(tmp_path):
    folder, s = _folder(tmp_path), _summary(512)
    run.analyse_run(config.Scenario(), RunFolder(folder), s)
    assert s.accounting["status"] == "fail"
    assert s.accounting["detail"] == "sysfs alloc_pages_fail grew by 512, records imply 256"


def test_without_a_trace_sysfs_alone_is_compared(tmp_path):
    folder, s = _folder(tmp_path), _summary(256)
    (folder / "trace.txt").unlink()
    run.analyse_run(config.Scenario(), RunFolder(folder), s)
    assert s.busy is None and s.accounting["detail"] == "records agree with sysfs"


def test_cli_parse_prints_every_kind_of_event_of_a_capture(capsys):
    files = [str(FIXTURES / n) for n in ("console-reintroduce-2012-loop6.log", "trace-reintroduce-2012-loop6.txt")]
    assert cli.main(["parse", *files]) == cli.EXIT_OK
    events = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    kinds = {(e["file"].rsplit("/", 1)[-1], e["kind"]) for e in events}
    assert {("console-reintroduce-2012-loop6.log", k) for k in ("loop", "page_dump", "cma_alloc_failed")} <= kinds
    assert ("trace-reintroduce-2012-loop6.txt", "trace") in kinds
    lines = [e["line"] for e in events if e["file"] == files[1]]
    assert lines == sorted(lines), "events in line order"
