"""Reports: report.html, report.json and a failures.png plot for a run folder or a campaign folder.

The page is for a person (verdict first, then counts with intervals, kernel reports, busy traces, the
plot, provenance); report.json holds the same facts for machines. Everything is read from what the run
or campaign wrote to its folder, so a report can be made again at any time (`cma-harness report DIR`).
"""

from __future__ import annotations

import datetime
import functools
import html
import json
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

from harness.present import junit, kernels
from harness.core import proc
from harness.judging import stats
from harness import __version__
from harness.build.cache import file_sha256
from harness.present import text
from harness.store import names
from harness.store import counts
from harness.store.campaign_folder import CampaignFolder, arm_key_of
from harness.store.names import JUNIT_XML, KERNEL_CONFIG, OWN_OUTPUTS, PLOT_PNG, QEMU_CMDLINE, REPORT_HTML, REPORT_JSON
from harness.store.run_folder import RunFolder
from harness.core.errors import HarnessError, InputError

CAUSES = {"L": "LRU-caused", "T": "transient", "P": "persistent", "F": "failed (no attribution)"}
CAUSE_COLOURS = {"L": "#d62728", "T": "#ff7f0e", "P": "#7f7f7f", "F": "#1f77b4"}
TOP_TRACES = 10

STATE_SENTENCES = {
    "pass": "every loop ran and none failed",
    "reproduced": "every loop ran and at least one failed",
    "crash": "the kernel reported an oops, panic, BUG or WARNING",
    "hang": "the guest stopped making progress and was stopped",
    "infra": "the build, QEMU or the board failed: nothing was learnt about the kernel",
}


# ---- facts --------------------------------------------------------------------------------------

def run_facts(summary: dict, records: list[dict]) -> dict:
    """What a run's page shows, from its summary.json and loops.jsonl. Pure."""
    failed = counts.loop_counts(records, "failed")
    return {
        "kind": "run",
        "state": summary["state"],
        "meaning": STATE_SENTENCES.get(summary["state"], ""),
        "variant": summary.get("variant"),
        "loops_requested": summary.get("loops_requested"),
        "loops_done": len(records),
        "failed_loops": stats.rate(*failed).as_dict(),
        "lru_caused_loops": stats.rate(*counts.loop_counts(records, "lru")).as_dict(),
        "failed_chunks_by_cause": counts.cause_counts(records),
        "error": summary.get("error"),
        "kernel_reports": summary.get("kernel_reports", []),
        "busy_traces": top_traces([summary]),
        "refused_by": (summary.get("busy") or {}).get("refused_by", {}),
        "timings": summary.get("timings", {}),
        "counters_delta": summary.get("counters_delta"),
        "area": summary.get("area"),
        "crosschecks": summary.get("crosschecks") or [],
    }


def top_traces(summaries: Sequence[dict], n: int = TOP_TRACES) -> list[dict]:
    """The most frequent busy-trace call chains over runs that traced (summary `busy.chains`), summed."""
    counts: Counter = Counter()
    for summary in summaries:
        for c in ((summary.get("busy") or {}).get("chains") or []):
            counts[tuple(c["chain"])] += c["count"]
    return [{"chain": list(chain), "count": k} for chain, k in counts.most_common(n)]


def provenance(folder: Path, argv: Sequence[str] | None = None) -> dict:
    """sha256 of every artefact in the folder, QEMU version, kernel config hashes, command lines."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in OWN_OUTPUTS)
    return {
        "generated_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "harness_version": __version__,
        "python": sys.version.split()[0],
        "host": platform.platform(),
        "qemu_version": _qemu_version(),
        "kernel_config_sha256": {str(p.relative_to(folder)): _sha256(p) for p in files if p.name == KERNEL_CONFIG},
        "kernels": kernels.arm_kernels(folder),         # each arm's cache key, exact source and patches
        "command_lines": {
            "harness": " ".join(argv) if argv else None,
            "qemu": {str(p.relative_to(folder)): p.read_text().strip() for p in files if p.name == QEMU_CMDLINE},
        },
        "artefacts": {str(p.relative_to(folder)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in files},
    }


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_of(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """A campaign report hashes each run's files for the run's page and again for its own: once is enough."""
    return file_sha256(Path(path))


def _qemu_version() -> str:
    try:
        return proc.capture(["qemu-system-arm", "--version"]).splitlines()[0]
    except HarnessError as e:
        return f"unknown ({e})"


# ---- plots --------------------------------------------------------------------------------------

def _pyplot():
    # Agg: renders to a file without a display (CI, SSH sessions); chosen before pyplot is imported.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_run(records: list[dict], title: str, out: Path) -> Path:
    """Failed chunks per loop, stacked by cause."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=100)
    _stacked_causes(ax, records)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_campaign(per_arm: dict[str, list[dict]], rates: dict[str, dict], out: Path) -> Path:
    """One row per arm: failed chunks per loop by cause; then the failed-loop rate per arm with its 95 % CI."""
    plt = _pyplot()
    arms = list(per_arm)
    fig, axes = plt.subplots(len(arms) + 1, 1, figsize=(9, 2.6 * (len(arms) + 1)), dpi=100)
    for ax, arm in zip(axes, arms):
        _stacked_causes(ax, per_arm[arm])
        ax.set_title(f"{arm}: failed chunks per loop")
    ax = axes[-1]
    for i, arm in enumerate(arms):
        for j, (metric, label) in enumerate((("failed_loops", "failed loops"), ("lru_caused_loops", "LRU-caused"))):
            r = rates[arm][metric]
            x = i + (j - 0.5) * 0.3
            ax.bar(x, 100 * r["rate"], width=0.28, color=("#1f77b4", "#d62728")[j], label=label if i == 0 else None)
            ax.errorbar(x, 100 * r["rate"], yerr=[[100 * (r["rate"] - r["low"])], [100 * (r["high"] - r["rate"])]],
                        color="black", capsize=4)
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("% of loops")
    ax.set_title("loops with a failure, per variant (95 % CI)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _stacked_causes(ax, records: list[dict]) -> None:
    from matplotlib.ticker import MaxNLocator

    xs = list(range(len(records)))
    bottom = [0] * len(records)
    for cause, colour in CAUSE_COLOURS.items():
        ys = [r["outcome"].count(cause) for r in records]
        if any(ys):
            ax.bar(xs, ys, bottom=bottom, color=colour, width=1.0, label=CAUSES[cause])
            bottom = [b + y for b, y in zip(bottom, ys)]
    if any(bottom):
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no failed chunk", transform=ax.transAxes, ha="center", va="center", color="#2ca02c")
    ax.set_xlim(-0.5, max(len(records), 1) - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("loop (in the order run)")
    ax.set_ylabel("failed chunks")


# ---- pages --------------------------------------------------------------------------------------

CSS = """body{font-family:sans-serif;max-width:70em;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
.verdict{font-size:1.25em;padding:.6em 1em;border-radius:4px;background:#eee}
.pass,.fixed{background:#dff0d8} .reproduced,.no-effect-shown,.regression,.baseline-does-not-reproduce{background:#fcf8e3}
.crash,.hang,.infra{background:#f2dede} pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
code{font-size:.9em} details{margin:.4em 0}"""


def _e(value) -> str:
    return html.escape(str(value))


def _rate(r: dict) -> str:
    return (f"{r['events']} / {r['trials']} ({100 * r['rate']:.1f} %, 95 % CI "
            f"{100 * r['low']:.1f} to {100 * r['high']:.1f} %)")


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _table(rows: list[tuple]) -> str:
    return "<table>" + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows) + "</table>"


def _causes(causes: dict) -> str:
    return ", ".join(f"{_e(CAUSES.get(k, k))}: {n}" for k, n in sorted(causes.items())) or "none"


def render_run(facts: dict, prov: dict) -> str:
    """The run's HTML page. Pure."""
    state = facts["state"]
    body = [f"<h1>cma-harness run: {_e(facts['variant'])}</h1>",
            f"<p class='verdict {_e(state)}'><b>{_e(state.upper())}</b>: {_e(facts['meaning'])}</p>"]
    if facts["error"]:
        body.append(f"<p>{_e(facts['error'])}</p>")
    body += ["<h2>Counts</h2>", _table([
        ("loops", f"{facts['loops_done']} of {facts['loops_requested']} asked"),
        ("loops with a failed chunk", _rate(facts["failed_loops"])),
        ("loops with an LRU-caused chunk", _rate(facts["lru_caused_loops"])),
        ("failed chunks by cause", _causes(facts["failed_chunks_by_cause"])),
        ("timings (s)", _e(", ".join(f"{k} {v}" for k, v in facts["timings"].items()))),
    ])]
    body += _reports_html(facts["kernel_reports"])
    body += _traces_html(facts["busy_traces"])
    body += _crosschecks_html(facts["crosschecks"])
    body += ["<h2>Failures per loop</h2>", f"<img src='{PLOT_PNG}' alt='failed chunks per loop, by cause'>"]
    body += _provenance_html(prov)
    return _page(f"cma-harness run {facts['variant']}: {state}", body)


def render_campaign(facts: dict, prov: dict) -> str:
    """The campaign's HTML page. Pure."""
    verdict = facts["verdict"]
    d = facts.get("decision") or {}
    body = ["<h1>cma-harness A/B campaign</h1>",
            f"<p class='verdict {_e(verdict)}'><b>{_e(verdict.upper())}</b>: {_e(d.get('reason', 'no look yet'))}</p>",
            f"<p>metric: {_e(facts['metric'])}; alpha {_e(facts['plan']['alpha'])}; "
            f"p fixed = {_e(_fmt(d.get('p_fixed')))}, p regression = {_e(_fmt(d.get('p_regression')))}, "
            f"this look's level {_e(_fmt(d.get('alpha_per_look')))} (exact boot-level tests; look {_e(d.get('look', ''))} of {_e(d.get('looks', ''))})</p>", "<h2>Counts</h2>"]
    rows = [("<b>arm</b>", "<b>variant</b>", "<b>loops</b>", "<b>failed loops</b>", "<b>LRU-caused loops</b>",
             "<b>failed chunks by cause</b>")]
    for arm, v in facts["variants"].items():
        rows.append((_e(arm), _e(v["variant"]), v["loops"], _rate(v["failed_loops"]), _rate(v["lru_caused_loops"]),
                     _causes(v["failed_chunks_by_cause"])))
    body.append(_table(rows))
    body += [f"<p><b>warning</b>: {_e(w)}.</p>" for w in text.boot_warnings(facts)]
    body += ["<h2>Runs</h2>", _table([("<b>run</b>", "<b>variant</b>", "<b>loops</b>", "<b>failed loops</b>",
                                       "<b>LRU-caused loops</b>", "<b>state</b>")] + [
        (f"<a href='runs/{_e(quote(r['run']))}/{REPORT_HTML}'>{_e(r['run'])}</a>", _e(r["variant"]), r["loops"],
         r.get("failed_loops", ""), r.get("lru_caused_loops", ""), _e(r["state"]))
        for r in facts["runs"]])]
    reports = [dict(rep, run=r["run"]) for r in facts["runs"] for rep in r.get("kernel_reports", [])]
    body += _reports_html(reports)
    body += _traces_html(facts.get("busy_traces", []))
    body += ["<h2>Failures per loop and per variant</h2>",
             f"<img src='{PLOT_PNG}' alt='failed chunks per loop for each variant, and failure rates'>"]
    body += _provenance_html(prov)
    return _page(f"cma-harness campaign: {verdict}", body)


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _reports_html(reports: list[dict]) -> list[str]:
    if not reports:
        return []
    out = ["<h2>Kernel reports</h2>"]
    for r in reports:
        where = f"{r['run']}: " if "run" in r else ""
        cut = "" if r.get("complete", True) else " (cut short: no end marker)"
        out.append(f"<details open><summary>{_e(where)}<b>{_e(r['report'])}</b>: {_e(r.get('title', ''))}{_e(cut)}"
                   f"</summary><pre>{_e(r['text'])}</pre></details>")
    return out


def _traces_html(traces: list[dict]) -> list[str]:
    if not traces:
        return []
    rows = [("<b>failed chunks</b>", "<b>call chain (the function that refused first)</b>")]
    rows += [(t["count"], "<code>" + " &larr; ".join(_e(f) for f in t["chain"]) + "</code>" if t["chain"]
              else "(nothing refused in the trace)") for t in traces]
    return ["<h2>Top busy traces</h2>", _table(rows)]


def _crosschecks_html(checks: list[dict]) -> list[str]:
    """The reference model's verdict on the measurement: a `fail` is a finding, not a run state."""
    if not checks:
        return []
    rows = [("<b>check</b>", "<b>status</b>", "<b>detail</b>")]
    rows += [(_e(c["name"]), f"<b>{_e(c['status'])}</b>", _e(c.get("detail", ""))) for c in checks]
    return ["<h2>Cross-checks against the reference model</h2>", _table(rows)]


def _provenance_html(prov: dict) -> list[str]:
    cmd = prov["command_lines"]
    rows = [("generated (UTC)", _e(prov["generated_utc"])), ("cma-harness", _e(prov["harness_version"])),
            ("QEMU", _e(prov["qemu_version"])), ("host", _e(f"{prov['host']}, Python {prov['python']}")),
            ("harness command", f"<code>{_e(cmd['harness'] or 'n/a')}</code>")]
    rows += [(_e(k), f"<code>{_e(v)}</code>") for k, v in kernels.html_rows(prov.get("kernels") or {})]
    rows += [(f"kernel config sha256 ({_e(k)})", f"<code>{_e(v)}</code>") for k, v in prov["kernel_config_sha256"].items()]
    rows += [(f"QEMU command ({_e(k)})", f"<code>{_e(v)}</code>") for k, v in cmd["qemu"].items()]
    arts = "".join(f"<tr><td><code>{_e(k)}</code></td><td>{v['bytes']}</td><td><code>{_e(v['sha256'])}</code></td></tr>"
                   for k, v in prov["artefacts"].items())
    return ["<h2>Provenance</h2>", _table(rows),
            f"<details><summary>sha256 of every artefact ({len(prov['artefacts'])} files)</summary>"
            f"<table><tr><th>file</th><th>bytes</th><th>sha256</th></tr>{arts}</table></details>"]


# ---- writing ------------------------------------------------------------------------------------

def write_run(folder: Path, argv: Sequence[str] | None = None, *, junit_file: bool = True) -> Path:
    """report.html, report.json and failures.png in a run folder; returns the page's path."""
    run = RunFolder(folder)
    summary = run.summary()
    if summary is None:
        raise InputError(f"{folder} has no {run.file(names.SUMMARY).name}: not a run folder (or the run never started)")
    records = run.records()
    facts = run_facts(summary, records)
    plot_run(records, f"{facts['variant']}: {facts['state']}", run.file(PLOT_PNG))
    prov = provenance(folder, argv)
    run.file(REPORT_JSON).write_text(json.dumps({**facts, "provenance": prov}, indent=2, sort_keys=True))
    run.file(REPORT_HTML).write_text(render_run(facts, prov))
    # A campaign's boots get no JUnit file of their own: a CI job collecting **/junit.xml would count a
    # baseline boot that reproduced the failure (the expected result) as a failed test.
    if junit_file:
        run.file(JUNIT_XML).write_text(junit.for_run(summary, folder.name))
    return run.file(REPORT_HTML)


def write_campaign(folder: Path, argv: Sequence[str] | None = None) -> Path:
    """The campaign's report (and each run's, for the links); returns the campaign page's path."""
    camp = CampaignFolder(folder)
    result = camp.summary()
    runs, summaries, with_summary = [], [], []
    per_key: dict[str, list[dict]] = {}
    for r in result["runs"]:
        run = camp.run(r["run"])
        if (summary := run.summary()) is not None:
            write_run(run.path, argv, junit_file=False)
            summaries.append(summary)
            with_summary.append(r)
            r = {**r, "kernel_reports": summary.get("kernel_reports", [])}
        records = run.records()
        per_key.setdefault(arm_key_of(run.name), []).extend(records)
        r = {**r, "failed_loops": counts.loop_counts(records, "failed")[0],
             "lru_caused_loops": counts.loop_counts(records, "lru")[0]}
        runs.append(r)
    labels = {arm: f"{arm}: {v['variant']}" for arm, v in result["variants"].items()}
    per_arm = {labels[arm]: per_key.get(v["variant"], []) for arm, v in result["variants"].items()}
    rates = {labels[arm]: v for arm, v in result["variants"].items()}
    plot_campaign(per_arm, rates, folder / PLOT_PNG)
    facts = {"kind": "campaign", **result, "runs": runs, "busy_traces": top_traces(summaries)}
    prov = provenance(folder, argv)
    (folder / REPORT_JSON).write_text(json.dumps({**facts, "provenance": prov}, indent=2, sort_keys=True))
    (folder / REPORT_HTML).write_text(render_campaign(facts, prov))
    (folder / JUNIT_XML).write_text(junit.for_campaign(result, {r["run"]: s for r, s in zip(with_summary, summaries)}))
    return folder / REPORT_HTML


def write(folder: Path, argv: Sequence[str] | None = None) -> Path:
    """The report of a run or a campaign folder, whichever it is."""
    if (folder / names.BISECT).is_file():
        from harness.present import bisect_page

        return bisect_page.write(folder, lambda f: write_campaign(f, argv))
    return write_campaign(folder, argv) if CampaignFolder.holds_campaign(folder) else write_run(folder, argv)
