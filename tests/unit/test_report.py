"""Reports from run and campaign folders: the page says the verdict first, holds what summary.json holds,
escapes what the kernel printed, and its provenance hashes match the files."""

import json

import pytest

from harness.present import report
from harness.build.cache import file_sha256
from harness.store.jsonl import JsonlWriter

from .test_kernel_reports import OOPS


def _run_folder(folder, state="crash", outcomes=("..", ".L", ".."), **extra):
    folder.mkdir(parents=True)
    with JsonlWriter(folder / "loops.jsonl") as out:
        for i, o in enumerate(outcomes):
            out.write({"variant": "stock", "loop": i, "failed": sum(c != "." for c in o), "outcome": o})
    summary = {"state": state, "variant": "stock", "loops_requested": 4, "error": "kernel oops: <b>x</b>",
               "kernel_reports": [{"report": "oops", "title": "Unable to handle kernel NULL pointer", "fatal": True,
                                   "complete": True, "text": OOPS}],
               "timings": {"total_s": 20.5}, **extra}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "kernel.config").write_text("CONFIG_CMA=y\n")
    (folder / "qemu-cmdline.txt").write_text("qemu-system-arm -M virt\n")
    return folder


def test_run_report(tmp_path):
    busy = {"chains": [{"chain": ["try_to_free_buffers", "move_to_new_folio"], "count": 3}],
            "refused_by": {"try_to_free_buffers": 3}}
    folder = _run_folder(tmp_path / "run", busy=busy)
    page = report.write_run(folder, argv=["cma-harness", "run", "--variant", "stock"])
    html = page.read_text()
    assert page.name == "report.html" and (folder / "failures.png").read_bytes()[:4] == b"\x89PNG"
    assert "<b>CRASH</b>" in html and "1 / 3 (33.3 %" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html, "text from the run is escaped"
    assert "---[ end trace 0000000000000000 ]---" in html, "the whole kernel report is on the page"
    assert "try_to_free_buffers &larr; move_to_new_folio" in html
    facts = json.loads((folder / "report.json").read_text())
    assert facts["failed_loops"]["events"] == 1 and facts["failed_chunks_by_cause"] == {"L": 1}
    prov = facts["provenance"]
    assert prov["artefacts"]["loops.jsonl"]["sha256"] == file_sha256(folder / "loops.jsonl")
    assert "report.html" not in prov["artefacts"], "a report does not hash itself"
    assert prov["kernel_config_sha256"] == {"kernel.config": file_sha256(folder / "kernel.config")}
    assert prov["command_lines"]["harness"] == "cma-harness run --variant stock"
    assert prov["command_lines"]["qemu"] == {"qemu-cmdline.txt": "qemu-system-arm -M virt"}


def test_campaign_report_links_every_run(tmp_path):
    _run_folder(tmp_path / "runs" / "000-reintroduce-2012", state="reproduced")
    _run_folder(tmp_path / "runs" / "001-stock#B", state="pass", outcomes=("..", ".."))
    (tmp_path / "campaign.json").write_text("{}")
    rate = {"events": 1, "trials": 3, "low": 0.06, "high": 0.79, "rate": 1 / 3}
    zero = {"events": 0, "trials": 2, "low": 0.0, "high": 0.66, "rate": 0.0}
    summary = {"plan": {"alpha": 0.001}, "metric": "failed loops", "verdict": "inconclusive", "decision": None,
               "variants": {"baseline": {"variant": "reintroduce-2012", "loops": 3, "failed_loops": rate,
                                         "lru_caused_loops": rate, "failed_chunks_by_cause": {"L": 1}},
                            "patched": {"variant": "stock#B", "loops": 2, "failed_loops": zero,
                                        "lru_caused_loops": zero, "failed_chunks_by_cause": {},
                                        "between_boots": {"per_boot": [[50, 50], [0, 50]], "p_homogeneous": 1e-4}}},
               "runs": [{"run": "000-reintroduce-2012", "variant": "reintroduce-2012", "loops": 3, "state": "reproduced"},
                        {"run": "001-stock#B", "variant": "stock", "loops": 2, "state": "pass"}]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    page = report.write(tmp_path)
    html = page.read_text()
    assert "<b>INCONCLUSIVE</b>" in html and "runs/001-stock%23B/report.html" in html, "a # in a link is quoted"
    assert (tmp_path / "runs" / "001-stock#B" / "report.html").exists()
    assert "<b>warning</b>: patched stock#B: the boots disagree (failed loops per boot: 50/50, 0/50" in html
    assert (tmp_path / "failures.png").stat().st_size > 1000
    assert "<td>000-reintroduce-2012</td>" not in html and "<td>3</td><td>1</td><td>1</td><td>reproduced</td>" in html, \
        "each run's loops, failed loops and LRU-caused loops"
    junit_text = (tmp_path / "junit.xml").read_text()
    assert not list((tmp_path / "runs").rglob("junit.xml")), "boots are cases of the campaign's file only"
    assert 'name="verdict is fixed"' in junit_text and 'name="001-stock#B"' in junit_text


def test_an_interrupted_campaign_says_how_to_resume(tmp_path):
    (tmp_path / "campaign.json").write_text("{}")
    with pytest.raises(report.InputError, match="resume it with the same"):
        report.write(tmp_path)


def test_run_report_shows_the_cross_checks_and_a_failed_one_as_such(tmp_path):
    checks = [{"name": "placement", "status": "pass", "detail": "all 3 loops at the idle placement"},
              {"name": "variant_rule", "status": "fail", "detail": "stock: 1 LRU-caused chunk, none possible"}]
    folder = _run_folder(tmp_path / "run", state="reproduced", crosschecks=checks)
    html = report.write_run(folder).read_text()
    assert "Cross-checks against the reference model" in html
    assert "<td>variant_rule</td><td><b>fail</b></td><td>stock: 1 LRU-caused chunk, none possible</td>" in html
    assert "<b>REPRODUCED</b>" in html, "a failed cross-check does not change the run's state"
