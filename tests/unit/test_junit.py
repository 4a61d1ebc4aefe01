"""JUnit XML: well-formed whatever the kernel printed, a case per run or boot plus the verdict, and the
right cases marked failed or errored."""

import json
import xml.etree.ElementTree as ET

from harness.present import junit
from harness.present import report

from .test_kernel_reports import OOPS
from .test_report import _run_folder
from tests.conftest import FIXTURES



def _cases(text: str) -> dict[str, ET.Element]:
    root = ET.fromstring(text.encode())
    suite = root.find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert suite.get("tests") == str(len(cases))
    return cases


def _kind(case: ET.Element) -> str:
    return "failure" if case.find("failure") is not None else "error" if case.find("error") is not None else "pass"


def test_a_recorded_run_that_reproduced_is_one_failed_case_and_a_clean_one_passes():
    for name, expected in (("run-reintroduce-2012", "failure"), ("run-stock", "pass")):
        summary = json.loads((FIXTURES / name / "summary.json").read_text())
        case = _cases(junit.for_run(summary, name))[name]
        assert _kind(case) == expected, name
        assert f"failed loops {summary['failed_loops']}" in case.find("system-out").text


def test_kernel_report_text_with_control_characters_stays_well_formed():
    summary = {"state": "crash", "variant": "stock", "loops_done": 2, "loops_requested": 4, "failed_loops": 0,
               "causes": {}, "error": "kernel oops", "timings": {"total_s": 3.0},
               "kernel_reports": [{"text": OOPS + "\x1b[0m\x00 <&>"}]}
    case = _cases(junit.for_run(summary, "r"))["r"]
    assert _kind(case) == "failure" and "end trace" in case.find("failure").text
    assert case.find("failure").get("type") == "crash"


def test_campaign_verdict_case_follows_expect_and_boots_fail_only_on_crash_or_hang():
    rate = {"events": 1, "trials": 3, "low": 0.06, "high": 0.79, "rate": 1 / 3}
    result = {"metric": "failed loops", "verdict": "not-fixed", "expect": "fixed",
              "decision": {"reason": "the patched kernel still fails; no significant drop", "p_fixed": 0.2},
              "seconds_this_session": 12.0,
              "variants": {arm: {"variant": v, "loops": 3, "failed_loops": rate, "lru_caused_loops": rate,
                                 "failed_chunks_by_cause": {"P": 1}}
                           for arm, v in (("baseline", "reintroduce-2012"), ("patched", "stock"))},
              "runs": [{"run": "000-reintroduce-2012", "variant": "reintroduce-2012"},
                       {"run": "001-stock", "variant": "stock"}, {"run": "002-reintroduce-2012", "variant": "reintroduce-2012"},
                       {"run": "003-stock", "variant": "stock"}]}
    summaries = {"000-reintroduce-2012": {"state": "reproduced"}, "001-stock": {"state": "hang"},
                 "002-reintroduce-2012": {"state": "infra", "error": "QEMU stopped"},
                 "003-stock": {"state": "infra", "error": "interrupted (SIGTERM)"}}
    text = junit.for_campaign(result, summaries)
    assert ET.fromstring(text.encode()).find("testsuite").get("time") == "12.0", "the campaign's wall time, once"
    cases = _cases(text)
    assert _kind(cases["verdict is fixed"]) == "failure"
    assert "verdict not-fixed, expected fixed" == cases["verdict is fixed"].find("failure").get("message")
    assert [_kind(cases[r]) for r in summaries] == ["pass", "failure", "error", "error"]
    result["expect"] = "not-fixed"
    assert _kind(_cases(junit.for_campaign(result, summaries))["verdict is not-fixed"]) == "pass"


def test_report_writes_junit_beside_the_page(tmp_path):
    folder = _run_folder(tmp_path / "run", state="reproduced")
    report.write_run(folder)
    case = _cases((folder / "junit.xml").read_text())["run"]
    assert _kind(case) == "failure" and case.get("time") == "20.5"
    assert "junit.xml" not in json.loads((folder / "report.json").read_text())["provenance"]["artefacts"]
