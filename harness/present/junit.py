"""JUnit XML for CI systems that show test results (one file per run or campaign folder). Pure: facts in,
text out.

A run folder is one test case: it passes when every loop ran and none failed. A campaign is one test
case for the verdict (it passes when the verdict is the one expected, `--expect`) and one per boot; a
boot that reproduced the failure is a result, not a test failure, so only a crash or a hang fails it and
an infrastructure failure is an error (nothing was learnt about the kernel).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Iterable

from harness.present import text

# XML 1.0 allows neither most control characters nor lone surrogates; kernel reports can hold both.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _reports_text(summary: dict) -> str:
    return "\n\n".join(r.get("text", "") for r in summary.get("kernel_reports") or [])


def run_case(summary: dict, name: str, classname: str, *, reproduced_fails: bool) -> ET.Element:
    case = ET.Element("testcase", classname=classname, name=name,
                      time=f"{float((summary.get('timings') or {}).get('total_s', 0.0)):.1f}")
    state = summary["state"]
    line = text.run_line(summary)
    if state in ("crash", "hang") or (state == "reproduced" and reproduced_fails):
        kind = "failure"
    elif state == "infra" or (summary.get("error") or "").startswith("interrupted"):
        kind = "error"
    else:
        kind = None
    if kind:
        ET.SubElement(case, kind, message=_clean(line), type=state).text = _clean(_reports_text(summary) or line)
    ET.SubElement(case, "system-out").text = _clean(line)
    return case


def _document(suite: ET.Element, cases: Iterable[ET.Element], seconds: float | None = None) -> str:
    """`seconds`: the suite's wall time when its cases overlap (a campaign's verdict case spans its boots)."""
    cases = list(cases)
    for key in ("failure", "error"):
        suite.set(key + "s", str(sum(c.find(key) is not None for c in cases)))
    suite.set("tests", str(len(cases)))
    total = sum(float(c.get("time", 0)) for c in cases) if seconds is None else seconds
    suite.set("time", f"{total:.1f}")
    suite.extend(cases)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def for_run(summary: dict, folder_name: str) -> str:
    """A run folder's JUnit: one case, failed when a loop failed (or the kernel crashed or hung)."""
    variant = summary.get("variant") or "kernel"
    suite = ET.Element("testsuite", name=f"cma-harness run {variant}")
    return _document(suite, [run_case(summary, folder_name, f"cma-harness.orchestrate.run.{variant}", reproduced_fails=True)])


def for_campaign(result: dict, run_summaries: dict[str, dict]) -> str:
    """A campaign's JUnit: the verdict against the expected one, then each boot (by run folder name)."""
    v = result["variants"]
    expect = result.get("expect", "fixed")
    suite = ET.Element("testsuite", name=f"cma-harness ab {v['baseline']['variant']} vs {v['patched']['variant']}")
    props = ET.SubElement(suite, "properties")
    for key, value in (("metric", result["metric"]), ("verdict", result["verdict"]), ("expect", expect),
                       ("p_fixed", (result.get("decision") or {}).get("p_fixed"))):
        ET.SubElement(props, "property", name=key, value=str(value))
    verdict = ET.Element("testcase", classname="cma-harness.ab", name=f"verdict is {expect}",
                         time=f"{float(result.get('seconds_this_session', 0.0)):.1f}")
    said = text.verdict_text(result)
    if result["verdict"] != expect:
        ET.SubElement(verdict, "failure", message=_clean(f"verdict {result['verdict']}, expected {expect}"),
                      type="verdict").text = _clean(said)
    ET.SubElement(verdict, "system-out").text = _clean(said)
    boots = [run_case(run_summaries[r["run"]], r["run"], f"cma-harness.ab.{r['variant']}", reproduced_fails=False)
             for r in result["runs"] if r["run"] in run_summaries]
    return _document(suite, [verdict, *boots], float(result.get("seconds_this_session", 0.0)))


