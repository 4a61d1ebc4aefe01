"""What `cma-harness bisect` prints and its folder's report.html: the patches, each step (prefix, verdict,
counts, outcome) with a link to its campaign's report, and the patch the search names."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Callable

from harness.store import names


def _counts(step: dict) -> str:
    c = step.get("lru_caused_loops") or {}
    return ", ".join(f"{arm} {e}/{t}" for arm, (e, t) in c.items()) or "no loops"


def result_text(summary: dict) -> str:
    r = summary.get("result")
    if r is None:
        return "result: not finished (run the same command again to resume)"
    n = len(summary["patches"])
    if r["first"]:
        p = r["patch"]
        return (f"result: patch {r['first']} of {n} is the first after which the verdict is {summary['looking_for']}: "
                f"{p['subject']} (sha256 {p['sha256']}); {r['reason']}")
    if r["candidates"]:
        return f"result: the first patch is one of {', '.join(map(str, r['candidates']))} of {n}; {r['reason']}"
    return f"result: no patch named; {r['reason']}"


def lines(summary: dict, folder: Path) -> list[str]:
    n = len(summary["patches"])
    out = [f"bisect folder: {folder}",
           f"baseline {summary['baseline']}; looking for the first patch after which the verdict is "
           f"{summary['looking_for']} (each step: the baseline against the baseline + the first k patches)"]
    out += [f"patch {i}: {p['sha256'][:16]} {p['subject']}" for i, p in enumerate(summary["patches"], 1)]
    for s in summary["steps"]:
        out.append(f"step {s['step']}: first {s['prefix']} of {n} patches (last: {s['last_patch']}): {s['verdict']} "
                   f"(LRU-caused loops: {_counts(s)}) -> {s['outcome']}   [{s['folder']}]")
    out += [f"campaigns: {summary['campaigns']}", result_text(summary)]
    return out


def write(folder: Path, write_campaign: Callable[[Path], Path]) -> Path:
    """Each step's campaign report, then the bisect's report.html; returns the page's path."""
    summary = json.loads((folder / names.SUMMARY).read_text())
    rows = []
    for s in summary["steps"]:
        sub = folder / s["folder"]
        link = html.escape(s["folder"])
        if (sub / names.SUMMARY).is_file():
            write_campaign(sub)
            link = f'<a href="{html.escape(s["folder"])}/{names.REPORT_HTML}">{link}</a>'
        rows.append(f"<tr><td>{s['step']}</td><td>{s['prefix']}</td><td>{html.escape(s['last_patch'])}</td>"
                    f"<td><b>{html.escape(s['verdict'])}</b></td><td>{html.escape(_counts(s))}</td>"
                    f"<td>{s['outcome']}</td><td>{link}</td></tr>")
    patches = "".join(f"<tr><td>{i}</td><td><code>{p['sha256']}</code></td><td>{html.escape(p['subject'])}</td>"
                      f"<td>{html.escape(p['source'])}</td></tr>" for i, p in enumerate(summary["patches"], 1))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>cma-harness bisect</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:1.5em auto}} td,th{{border:1px solid #ccc;padding:.2em .5em}}
table{{border-collapse:collapse}}</style></head><body>
<h1>bisect: {html.escape(summary['baseline'])}, looking for {html.escape(summary['looking_for'])}</h1>
<p><b>{html.escape(result_text(summary))}</b></p>
<h2>Patches</h2><table><tr><th>#</th><th>sha256</th><th>subject</th><th>file</th></tr>{patches}</table>
<h2>Steps ({summary['campaigns']} campaigns)</h2>
<table><tr><th>step</th><th>first k patches</th><th>last patch</th><th>verdict</th><th>LRU-caused loops</th>
<th>outcome</th><th>campaign</th></tr>{''.join(rows)}</table></body></html>
"""
    (folder / names.REPORT_HTML).write_text(page)
    return folder / names.REPORT_HTML
