"""The sentences the harness says: what `run`, `ab`, `check` print, and the texts of the JUnit file and
the report, all from the same summaries and counts. Pure: dicts in, strings out."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from harness.judging import stats
from harness.store.counts import per_boot_text


def causes_text(causes: Mapping) -> str:
    return ", ".join(f"{k}={n}" for k, n in sorted(causes.items())) or "none"


def run_line(summary: dict) -> str:
    """One line on a run, from its summary.json."""
    line = (f"state {summary['state']}; loops {summary.get('loops_done', 0)}/{summary.get('loops_requested', 0)}; "
            f"failed loops {summary.get('failed_loops', 0)}; failed chunks by cause: {causes_text(summary.get('causes') or {})}")
    return line + (f"; error: {summary['error']}" if summary.get("error") else "")


def run_lines(s: Mapping, folder: Path) -> list[str]:
    """What `cma-harness run` prints about a finished run, from its summary."""
    lines = [f"run folder: {folder}",
             f"state: {s['state']}; loops: {s['loops_done']}/{s['loops_requested']}; failed loops: {s['failed_loops']}; "
             f"failed chunks: {s['failed_chunks']} (causes: {causes_text(s['causes'])})"]
    if s.get("busy"):
        lines += busy_lines(s["busy"])
    lines += crosscheck_lines(s.get("crosschecks") or [])     # the accounting identities among them
    if s.get("error"):
        lines.append(f"error: {s['error']}")
    for r in s.get("kernel_reports") or []:
        lines.append(f"kernel {r['report']}{'' if r['fatal'] else ' (the loops went on)'}: {r['title'].strip()}")
    return lines


def busy_lines(summary: Mapping, frames: int = 8) -> list[str]:
    """Lines for a terminal: coverage, refusing functions and the top call chain of a run's busy traces."""
    lines = [f"busy traces: {summary['traced']} of {summary['failed_chunks']} failed chunks, "
             f"{summary['with_try_to_free_buffers']} through try_to_free_buffers; refused by: "
             + (", ".join(f"{f} {n}" for f, n in summary["refused_by"].items()) or "none")]
    if summary["chains"]:
        top = summary["chains"][0]
        chain = top["chain"][:frames] + (["..."] if len(top["chain"]) > frames else [])
        lines.append(f"top chain ({top['count']} of {summary['traced']}): " + " <- ".join(chain or ["(no refusal traced)"]))
    if summary["unjoined_loops"]:
        lines.append(f"loops without busy traces: {len(summary['unjoined_loops'])} (see summary.json busy.unjoined_loops)")
    if summary["trace_lost_marks"] or summary.get("ring_lost_events"):
        lines.append(f"the trace lost events ({summary['trace_lost_marks']} LOST marks, "
                     f"{summary.get('ring_lost_events', 0)} by the ring's counters): its counts are lower bounds")
    return lines


def crosscheck_lines(results: Sequence[Mapping]) -> list[str]:
    """One line per check for a terminal: name, status, detail."""
    return [f"cross-check {r['name']:12} {r['status']:7} {r['detail']}" for r in results]


def boot_warnings(result: dict) -> list[str]:
    """One sentence per arm whose boots disagree on the verdict's metric (stats.boot_spread), from a
    campaign summary; the CLI prints them and the report shows them."""
    out = []
    for arm in ("baseline", "patched"):
        v = result["variants"][arm]
        spread = v.get("between_boots") or {}
        p = spread.get("p_homogeneous")
        if p is not None and p < stats.SPREAD_WARN_P:
            out.append(f"{arm} {v['variant']}: the boots disagree ({result['metric']} per boot: "
                       f"{per_boot_text(spread['per_boot'])}; homogeneity p = {p:.2g}): loops of one boot are not "
                       f"independent trials, which is why the verdict takes whole boots as its units")
    return out


def campaign_text(result: dict, folder: Path) -> str:
    """What `cma-harness ab` prints at the end, from the campaign summary."""
    lines = [f"campaign folder: {folder}", f"metric: {result['metric']}"]
    for arm in ("baseline", "patched"):
        v = result["variants"][arm]
        f, l = v["failed_loops"], v["lru_caused_loops"]
        causes = ", ".join(f"{k}={n}" for k, n in sorted(v["failed_chunks_by_cause"].items())) or "none"
        lines.append(f"{arm:8} {v['variant']:18} failed loops {f['events']}/{f['trials']} "
                     f"({100 * f['rate']:.1f} %, 95 % CI {100 * f['low']:.1f}-{100 * f['high']:.1f}); "
                     f"LRU-caused {l['events']}/{l['trials']} ({100 * l['rate']:.1f} %, 95 % CI "
                     f"{100 * l['low']:.1f}-{100 * l['high']:.1f}); failed chunks by cause: {causes}")
    boots = {arm: (result["variants"][arm].get("between_boots") or {}).get("per_boot") for arm in ("baseline", "patched")}
    if all(boots.values()):
        lines.append(f"per boot ({result['metric']}): " + "; ".join(
            f"{arm} {per_boot_text(boots[arm])}" for arm in ("baseline", "patched")))
    lines += [f"warning: {w}" for w in boot_warnings(result)]
    # The pilot's advice is a forecast at its pessimistic rate; once a verdict is in, it is history.
    if result.get("feasibility") and result.get("verdict") not in ("fixed", "regression"):
        lines.append(f"feasibility: {result['feasibility']['advice']}")
    d = result["decision"]
    if d:
        lines.append(f"verdict: {result['verdict']} (p fixed = {d['p_fixed']:.3g}, p regression = "
                     f"{d['p_regression']:.3g}, both boot by boot; {d['reason']})")
    else:
        lines.append(f"verdict: {result['verdict']}")
    return "\n".join(lines)


def verdict_text(result: dict) -> str:
    lines = [f"metric: {result['metric']}"]
    for arm in ("baseline", "patched"):
        a = result["variants"][arm]
        f, l = a["failed_loops"], a["lru_caused_loops"]
        lines.append(f"{arm} {a['variant']}: failed loops {f['events']}/{f['trials']}, LRU-caused "
                     f"{l['events']}/{l['trials']}, failed chunks by cause: {causes_text(a['failed_chunks_by_cause'])}")
    d = result.get("decision")
    lines.append(f"verdict: {result['verdict']}" + (f" ({d['reason']})" if d else ""))
    return "\n".join(lines)



def board_check_text(board_name: str, findings: Sequence, ready: bool, folder: Path) -> str:
    """`board check`: one line per item (what was found, and for each missing one how to fix it)."""
    mark = {"ok": "ok  ", "missing": "MISS", "note": "    "}
    lines = [f"board {board_name}:"]
    for f in findings:
        lines.append(f"  {mark.get(f.status, f.status)} {f.item:22} {f.found}")
        if f.fix:
            lines.append(f"       {'':22} fix: {f.fix}")
    missing = [f.item for f in findings if f.status == "missing"]
    lines.append("ready for the scenario" if ready else f"not ready: {len(missing)} missing ({', '.join(missing)})")
    lines.append(f"console and kernel log: {folder}")
    return "\n".join(lines)
