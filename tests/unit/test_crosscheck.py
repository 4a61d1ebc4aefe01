"""The reference model's cross-checks of run folders: synthetic folders, and two recorded real runs."""

import dataclasses
import json
import shutil

import pytest
import yaml

from harness.spec import config
from harness.judging import crosscheck
from harness.judging import prediction
from harness.judging import stats
from harness import cli
from harness.core.errors import InputError
from harness.store.run_folder import RunFolder
from harness.orchestrate.run import RunState, RunSummary
from tests.conftest import FIXTURES

BASE, MIB = 0x48800000, 1 << 20
AREA = {"name": "cma-harness-area", "base": BASE, "size": 4 * MIB}
CALLS_FAILED = {".": 0, "T": 1, "L": 2, "P": 3, "F": 1}      # as the module's attribute_failure() counts


def _scenario(patches=None, attribution=True, source="debian"):
    scn = config.Scenario()
    return dataclasses.replace(scn, kernel=dataclasses.replace(scn.kernel, patches=patches, source=source),
                               module=dataclasses.replace(scn.module, chunks=4, attribution=attribution))


def _record(loop, slots, outcome=None):
    outcome = outcome or "." * len(slots)
    return {"loop": loop, "outcome": outcome, "pa": [None if s is None else BASE + s * MIB for s in slots],
            "failed": sum(c != "." for c in outcome), "calls_failed": sum(CALLS_FAILED[c] for c in outcome),
            "time": float(loop + 1), "variant": "kernel", "kind": "loop"}


def _folder(path, records, *, scn=None, summary=None, busy_rows=(), trace_lines=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "scenario.yaml").write_text(yaml.safe_dump(config.as_dict(scn or _scenario())))
    (path / "loops.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (path / "busy-traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in busy_rows))
    failed_calls = sum(r["calls_failed"] for r in records)
    if summary is None:
        summary = {"variant": "kernel", "area": AREA, "calls_failed": failed_calls,
                   "counters_delta": {"cma/cma-harness-area/alloc_pages_fail": 256 * failed_calls}}
    (path / "summary.json").write_text(json.dumps(summary))
    if trace_lines is not None:
        (path / "trace.txt").write_text("\n".join(trace_lines) + "\n")
    return path


def _checks(folder):
    return {r.name: r for r in crosscheck.check_folder(folder)}


def _trace_call(t, pfn, busy_pages=()):
    """ftrace lines of one successful cma_alloc() at time t that found busy_pages busy on the way."""
    head = "   cma_harness/0-166     [000] .....    {:.6f}: "
    lines = [head.format(t) + "cma_alloc_start: name=cma-harness-area count=256 align=8"]
    for i, page in enumerate(busy_pages):
        start = page & ~0xff
        lines.append(head.format(t + 0.001 * (i + 1)) + f"test_pages_isolated: start_pfn={start:#x} "
                     f"end_pfn={start + 256:#x} fin_pfn={page:#x} ret=fail")
    lines.append(head.format(t + 0.01) + f"cma_alloc_finish: name=cma-harness-area pfn={pfn:#x} page=c7766000 "
                 f"count=256 align=8")
    return lines


def _pfn(slot, offset=0):
    return (BASE >> 12) + slot * 256 + offset


# ---- synthetic run folders -------------------------------------------------------------------

def test_idle_loops_pass_chunk_by_chunk(tmp_path):
    checks = _checks(_folder(tmp_path, [_record(0, [0, 1, 2, 3]), _record(1, [0, 1, 2, 3])]))
    assert checks["placement"].status == "pass"
    assert checks["placement"].data["idle_loops"] == 2 and checks["placement"].data["calls"] == 8
    assert checks["accounting"].detail == "records agree with sysfs"
    assert checks["variant_rule"].detail == "stock: no LRU-caused failed chunk, none possible"
    assert (checks["busy_pages"].status, checks["busy_pages"].detail) == ("skipped", "no failed chunk")


def test_a_chunk_where_the_allocator_cannot_put_it_fails_placement(tmp_path):
    misaligned = _record(1, [0, 1, 2, 3])
    misaligned["pa"][2] += 64 * 4096
    checks = _checks(_folder(tmp_path, [_record(0, [0, 1, 2, 3]), misaligned, _record(2, [0, 1, 2, 5])]))
    placement = checks["placement"]
    assert placement.status == "fail"
    assert placement.data["mismatches"][0].startswith("loop 1 chunk 2: measured 0x48a40000, not a free aligned range")
    assert placement.data["mismatches"][1].startswith("loop 2 chunk 3: measured 0x48d00000")


def test_busy_ranges_are_inferred_without_a_trace_and_replayed_with_one(tmp_path):
    # Chunk 1 found slot 1 busy and took slot 2; the page left, so chunk 2 took slot 1.
    records = [_record(0, [0, 1, 2, 3]), _record(1, [0, 2, 1, 3])]
    untraced = _checks(_folder(tmp_path / "untraced", records))["placement"]
    assert untraced.status == "pass" and untraced.data["busy_loops_inferred"] == [1]

    def trace(busy_page):
        lines = [line for slot, t in zip([0, 1, 2, 3], [0.1, 0.2, 0.3, 0.4]) for line in _trace_call(t, _pfn(slot))]
        calls = [(_pfn(0), ()), (_pfn(2), (busy_page,)), (_pfn(1), ()), (_pfn(3), ())]
        times = [1.1, 1.2, 1.3, 1.4]
        return lines + [line for (pfn, busy), t in zip(calls, times) for line in _trace_call(t, pfn, busy)]

    traced = _checks(_folder(tmp_path / "traced", records, trace_lines=trace(_pfn(1, 9))))["placement"]
    assert traced.status == "pass", traced.detail
    assert traced.data["busy_loops_traced"] == [1] and traced.data["loops_traced"] == 2
    # A trace whose busy page lies in slot 3 cannot have sent chunk 1 to slot 2.
    wrong = _checks(_folder(tmp_path / "wrong", records, trace_lines=trace(_pfn(3, 9))))["placement"]
    assert wrong.status == "fail"
    assert "loop 1 chunk 1: the trace saw busy pages at 0x48b09000, the model met busy ranges at none" in wrong.detail


def test_an_lru_caused_failure_on_stock_is_a_finding(tmp_path):
    folder = _folder(tmp_path, [_record(0, [0, 1, 2, 3], "...L")])
    rule = _checks(folder)["variant_rule"]
    assert rule.status == "fail" and rule.detail.startswith("stock: finding: LRU-caused failed chunks: 1, on a variant")
    assert cli.main(["check", str(folder)]) == cli.EXIT_FOUND


def test_the_variant_rule_names_the_series_or_says_why_it_is_skipped(tmp_path):
    records = [_record(0, [0, 1, 2, 3], "...L")]
    series_file = _checks(_folder(tmp_path / "a", records, scn=_scenario("kernel-configs/patches/remove-2/series")))
    assert series_file["variant_rule"].status == "fail" and series_file["variant_rule"].data["series"] == "remove-2"
    ok = _checks(_folder(tmp_path / "b", records, scn=_scenario("reintroduce-2012")))["variant_rule"]
    assert ok.status == "pass" and ok.detail.startswith("reintroduce-2012: LRU-caused failed chunks: 1; possible through")
    unknown = _checks(_folder(tmp_path / "c", records, scn=_scenario("my-fix")))["variant_rule"]
    assert unknown.status == "skipped" and "unknown patch series 'my-fix'" in unknown.detail
    tree = _checks(_folder(tmp_path / "d", records, scn=_scenario(source="/src/linux")))["variant_rule"]
    assert tree.status == "skipped" and "not one the model was checked against" in tree.detail
    off = _checks(_folder(tmp_path / "e", [_record(0, [0, 1, 2, None], "...F")], scn=_scenario(attribution=False)))
    assert off["variant_rule"].status == "skipped" and "attribution off" in off["variant_rule"].detail


def test_checks_without_their_data_are_skipped_not_failed(tmp_path):
    folder = _folder(tmp_path, [_record(0, [0, 1, 2, None], "...P")], summary={})
    checks = _checks(folder)
    assert {n: r.status for n, r in checks.items()} == {
        "placement": "skipped", "accounting": "skipped", "variant_rule": "pass", "busy_pages": "skipped"}
    # The module's area line in the console is enough to place chunks.
    (folder / "console.log").write_text("[    9.9] cma_harness: area name=cma-harness-area base=48800000 size=400000\n")
    checks = _checks(folder)
    assert checks["placement"].status == "pass"
    assert checks["busy_pages"].data["left_out"] == {0: "no busy page known for failed chunk(s) [3]"}
    assert cli.main(["check", str(folder)]) == cli.EXIT_OK


def test_busy_pages_replays_the_busy_traces(tmp_path):
    # A page in slot 1 pinned until the flush: chunk 1 stepped over it, chunk 3 failed on it twice, then got it.
    page = _pfn(1, 9)
    records = [_record(0, [0, 1, 2, 3]), _record(1, [0, 2, 3, 1], "...L")]
    row = {"loop": 1, "chunk": 3, "cause": "L", "pfn": page, "call_busy_pfns": [[page], [page], []]}
    result = _checks(_folder(tmp_path / "new", records, busy_rows=[row]))["busy_pages"]
    assert result.status == "pass" and result.data["agreement"] == 1.0 and result.data["causes_agreeing"] == 1
    assert result.data["source"] == "busy-traces.jsonl" and result.data["placement_agreeing_loops"] == 1
    # Busy traces written before call_busy_pfns existed: the first busy page, for every failed call.
    old = {k: v for k, v in row.items() if k != "call_busy_pfns"}
    result = _checks(_folder(tmp_path / "old", records, busy_rows=[old]))["busy_pages"]
    assert result.status == "pass" and result.data["source"] == "busy-traces.jsonl (first busy page only)"
    # A page in slot 0 fails the same chunk (the last one always fails in a full area), but chunk 0 would
    # have stepped over it: the placement tells.
    elsewhere = {**row, "call_busy_pfns": [[_pfn(0, 1)], [_pfn(0, 1)], []]}
    result = _checks(_folder(tmp_path / "elsewhere", records, busy_rows=[elsewhere]))["busy_pages"]
    assert result.data["agreement"] == 1.0 and result.data["placement_agreeing_loops"] == 0
    # Chunk 2 failed, but its busy trace names one busy page: slot 3 was free, so the model says it must not.
    short = [_record(0, [0, 1, 2, 3], "..L.")]
    row = {"loop": 0, "chunk": 2, "cause": "L", "pfn": _pfn(2), "call_busy_pfns": [[_pfn(2)], [_pfn(2)], []]}
    result = _checks(_folder(tmp_path / "short", short, busy_rows=[row]))["busy_pages"]
    assert result.status == "fail" and result.data["agreement"] == 0.0
    assert "disagreeing loops: 0 (measured chunks 2L, model no failed chunk)" in result.detail


def test_a_crash_of_the_checks_never_reaches_the_run(tmp_path):
    folder = _folder(tmp_path, [{"loop": 0, "failed": 0, "calls_failed": 0}])   # no outcome, no pa
    summary = RunSummary(RunState.PASS, "kernel", 1, area=AREA).as_dict()
    [entry] = crosscheck.crosscheck_quietly(_scenario(), _scenario().kernel, RunFolder(folder), summary)
    assert entry["status"] == "skipped" and entry["detail"].startswith("the cross-checks could not run: KeyError")


def test_check_refuses_a_folder_that_is_not_a_run(tmp_path):
    assert cli.main(["check", str(tmp_path)]) == cli.EXIT_INPUT


def test_check_names_every_wrong_folder_before_checking_any(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    assert cli.main(["check", str(a), str(FIXTURES / "run-stock"), str(b)]) == cli.EXIT_INPUT
    out, err = capsys.readouterr()
    assert f"{a}: neither a run folder" in err and f"{b}: neither a run folder" in err
    assert "cross-check" not in out and "run-stock" not in out


# ---- recorded real runs ----------------------------------------------------------------------

def test_real_stock_run_places_every_chunk_where_the_model_does():
    """tests/fixtures/run-stock: `cma-harness ab` stock run, 50 loops (see SOURCE.md there). Loop 12 met a
    busy range twice; its trace window is kept, and the model replays those busy ranges exactly."""
    checks = _checks(FIXTURES / "run-stock")
    placement = checks["placement"]
    assert placement.status == "pass", placement.detail
    assert (placement.data["loops"], placement.data["calls"], placement.data["idle_loops"]) == (50, 2800, 49)
    assert placement.data["busy_loops_traced"] == [12] and placement.data["mismatches"] == []
    assert checks["variant_rule"].status == "pass" and checks["accounting"].status == "pass"


def test_real_stock_run_catches_a_wrong_alignment(tmp_path):
    """The same run judged as if CONFIG_CMA_ALIGNMENT were 4: a busy range then moves the search on by
    64 KiB, not 1 MiB, and loop 12 no longer fits."""
    folder = shutil.copytree(FIXTURES / "run-stock", tmp_path / "run")
    (folder / "kernel.config").write_text("CONFIG_CMA=y\nCONFIG_CMA_ALIGNMENT=4\n")
    placement = _checks(folder)["placement"]
    assert placement.status == "fail" and placement.data["mismatches"][0].startswith("loop 12 chunk 11:")


def test_real_reintroduce_2012_run_busy_pages_agree_on_every_failed_chunk():
    """tests/fixtures/run-reintroduce-2012: 50 loops, 7 failed chunks in 6 loops (T, L and P), including
    loop 12 (chunk 54 failed on two transiently busy ranges) and loop 44 (54 T, then 55 L)."""
    checks = _checks(FIXTURES / "run-reintroduce-2012")
    busy = checks["busy_pages"]
    assert busy.status == "pass", busy.detail
    assert (busy.data["failed_chunks"], busy.data["agreeing_chunks"], busy.data["agreement"]) == (7, 7, 1.0)
    assert busy.data["causes_agreeing"] == 7 and busy.data["placement_agreeing_loops"] == 6
    # Without when each page was seen, holding every busy page for the whole loop gets loop 12 wrong.
    assert busy.data["whole_loop_agreement"] == 7 / 8
    assert busy.data["loops"][12]["whole_loop"].endswith("PP") and busy.data["loops"][12]["measured"].endswith("T.")
    assert checks["placement"].status == "pass" and checks["variant_rule"].status == "pass"


def test_cli_check_prints_one_line_per_check(capsys):
    assert cli.main(["check", str(FIXTURES / "run-stock"), str(FIXTURES / "run-reintroduce-2012")]) == cli.EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("  cross-check ") for line in out) == 8
    assert any("busy_pages   pass    7 of 7 failed chunks agree (100%)" in line for line in out)


def test_cli_model_simulate_compares_with_measured_runs(capsys):
    argv = ["model", "simulate", "--variant", "stock", "--variant", "reintroduce-2012", "--loops", "20",
            "--compare", str(FIXTURES / "run-stock"), str(FIXTURES / "run-reintroduce-2012")]
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "not fitted to the guest" in out
    assert "reintroduce-2012: 50 loops in 1 runs" in out and "failed loops         6/50" in out
    assert "LRU-caused loops     3/50" in out and "stock: 50 loops in 1 runs" in out
    assert cli.main(["model", "simulate", "--variant", "remove-4"]) == cli.EXIT_INPUT


def test_model_fit_picks_the_value_nearest_the_measured_rate_and_tries_each_with_one_seed():
    measured = stats.rate(3, 50)                                         # the fixture's 3 LRU-caused loops
    f = prediction.fit("reintroduce-2012", measured, "metadata_pages_in_area", range(0, 4), 200, {})
    assert list(f.tried) == [0, 1, 2, 3] and f.tried[0] == 0.0, "no metadata page in the area: no pin can matter"
    assert f.value == min(f.tried, key=lambda v: abs(f.tried[v] - measured.rate))
    again = prediction.fit("reintroduce-2012", measured, "metadata_pages_in_area", range(0, 4), 200, {})
    assert again.tried == f.tried
    with pytest.raises(InputError, match="integer workload knobs are"):
        prediction.fit("reintroduce-2012", measured, "share_installs_during_alloc", range(2), 10, {})


def test_cli_model_fit_fits_on_one_variant_and_predicts_the_others(capsys):
    argv = ["model", "fit", "--range", "0", "3", "--loops", "100",
            "--compare", str(FIXTURES / "run-stock"), str(FIXTURES / "run-reintroduce-2012")]
    assert cli.main(argv) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "fit: metadata_pages_in_area on reintroduce-2012, measured LRU-caused loops 3/50" in out
    assert out.count("<- chosen") == 1 and "out of sample" in out and "not fitted" not in out
    assert "stock: 50 loops in 1 runs" in out
    assert cli.main(["model", "fit", "--on", "remove-1", "--compare", str(FIXTURES / "run-stock")]) == cli.EXIT_INPUT
