"""`cma-harness bisect`: the first patch of a series after which the A/B verdict changes, by binary search
over the series' prefixes. Step k is one sequential campaign, the baseline against the baseline plus the
first k patches; prefix 0 is the baseline itself, whose verdict against itself is "no change" by definition.

The search (outcome, step) is pure: it sees only each measured prefix's outcome, so it is tested with a
fake campaign; run_bisect feeds it real campaigns. The verdict is an opaque string from the campaign's
summary; outcome() maps it to old / new / skip (see its docstring)."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from harness.core.errors import InfraError, InputError
from harness.orchestrate.arms import with_variants
from harness.spec import patch_files
from harness.spec.config import Scenario
from harness.store import names

LOOKING_FOR = ("fixed", "regression")


class Outcome(enum.Enum):
    OLD = "old"       # the prefix does not show the verdict looked for (the baseline's state)
    NEW = "new"       # it does
    SKIP = "skip"     # no usable verdict: the step neither confirms nor rules out anything


def outcome(verdict: str, looking_for: str = "fixed") -> Outcome:
    """A campaign verdict as a bisect outcome.

    Looking for `fixed`: fixed is new; not-fixed, no-effect-shown and regression (the prefix is not a fix:
    it fails as often or more) are old. baseline-does-not-reproduce, inconclusive, incomplete and infra
    are skips: that campaign could not have shown a fix, whatever the prefix does.
    Looking for `regression`: regression is new; fixed, not-fixed, no-effect-shown and
    baseline-does-not-reproduce (nothing failed in either arm: no regression shown) are old;
    inconclusive, incomplete and infra are skips."""
    if looking_for not in LOOKING_FOR:
        raise InputError(f"--looking-for {looking_for!r}: allowed {', '.join(LOOKING_FOR)}")
    if verdict == looking_for:
        return Outcome.NEW
    old = {"not-fixed", "no-effect-shown", "regression"} if looking_for == "fixed" else \
        {"not-fixed", "no-effect-shown", "fixed", "baseline-does-not-reproduce"}
    return Outcome.OLD if verdict in old else Outcome.SKIP


@dataclass(frozen=True)
class Step:
    """Where the search stands: the prefix to measure next, or its conclusion."""
    next: int | None                    # the number of patches of the prefix to measure next; None: done
    first: int | None = None            # the first patch after which the verdict is the one looked for
    candidates: tuple[int, ...] = ()    # when skipped steps leave several patches, each could be the first
    reason: str = ""


def step(n: int, results: Mapping[int, Outcome]) -> Step:
    """The next prefix to measure, given the outcomes so far (prefix length -> outcome). Pure.

    The whole series first (does it change the verdict at all?), then halving the range between the longest
    prefix known old and the shortest known new. A skipped prefix is stepped around, nearest the middle
    first, as `git bisect skip` does."""
    if n < 1:
        raise InputError("bisect needs at least one patch")
    if n not in results:
        return Step(n, reason="the whole series first: does it change the verdict at all?")
    if results[n] is Outcome.OLD:
        return Step(None, reason=f"the whole series ({n} patches) does not change the verdict: no patch to name")
    if results[n] is Outcome.SKIP:
        return Step(None, reason="the whole series' campaign gave no usable verdict: nothing to bisect (a larger "
                                 "--budget, or a baseline that fails more often)")
    new = min(k for k, o in results.items() if o is Outcome.NEW)
    old = max([0] + [k for k, o in results.items() if o is Outcome.OLD and k < new])
    odd = sorted(k for k, o in results.items() if o is Outcome.OLD and k > new)
    note = f"; not monotone: prefix {', '.join(map(str, odd))} measured old after {new} measured new" if odd else ""
    if new == old + 1:
        return Step(None, first=new, reason=f"prefix {old} is old and prefix {new} is new{note}")
    untested = [k for k in range(old + 1, new) if k not in results]
    if not untested:
        return Step(None, candidates=tuple(range(old + 1, new + 1)),
                    reason=f"prefixes {old + 1} to {new - 1} gave no usable verdict: the first patch is one of "
                           f"{', '.join(map(str, range(old + 1, new + 1)))}{note}")
    middle = (old + new) / 2
    return Step(min(untested, key=lambda k: (abs(k - middle), k)),
                reason=f"between prefix {old} (old) and {new} (new){note}")


# ---- the campaigns ------------------------------------------------------------------------------

Campaign = Callable[..., dict]      # run_ab's signature: (scn, plan, folder, *, progress, expect, board) -> summary


def step_variant(baseline: str, k: int, n: int) -> str:
    return f"{baseline}+{k}of{n}"


def with_prefixes(scn: Scenario, baseline: str, stored: Sequence[Path]) -> Scenario:
    """The scenario with one variant per prefix: the baseline plus the first k patches, k = 1..n."""
    base = scn.variant(baseline)
    n = len(stored)
    return with_variants(scn, {step_variant(baseline, k, n): dataclasses.replace(
        base, extra_patches=base.extra_patches + tuple(map(str, stored[:k]))) for k in range(1, n + 1)}, "bisect")


def run_bisect(scn: Scenario, baseline: str, patches: Sequence[patch_files.Patch], stored: Sequence[Path],
               plan: dict, folder: Path, campaign: Campaign, *, looking_for: str = "fixed",
               progress: Callable[[str], None] = lambda s: None, **campaign_kwargs) -> dict:
    """Run (or resume) the search in folder; return its summary (also written to summary.json). `plan` holds
    the campaign Plan's fields other than baseline and patched; `campaign` is run_ab (or a fake)."""
    from harness.orchestrate.campaign import Plan       # here: `cma-harness` starts without the campaign's stack

    outcome("fixed", looking_for)        # an unknown --looking-for fails before any campaign
    n = len(patches)
    scn = with_prefixes(scn, baseline, stored)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"baseline": baseline, "looking_for": looking_for, "plan": plan,
           "patches": [p.provenance() for p in patches]}
    _pin(folder, doc)
    results: dict[int, Outcome] = {}
    steps: list[dict] = []
    while (s := step(n, results)).next is not None:
        k = s.next
        variant = step_variant(baseline, k, n)
        sub = folder / names.STEPS / f"{len(steps) + 1:02d}-{variant}"
        progress(f"bisect step {len(steps) + 1}: the first {k} of {n} patches ({s.reason})")
        try:
            result = campaign(scn, Plan(baseline, variant, **plan), sub, progress=progress, expect=looking_for,
                              **campaign_kwargs)
            verdict, error = result["verdict"], None
        except InfraError as e:
            result, verdict, error = None, "infra", str(e)
        results[k] = outcome(verdict, looking_for)
        steps.append(_step_record(len(steps) + 1, k, variant, sub, folder, verdict, results[k], result, error, patches))
        progress(f"bisect step {len(steps)}: {verdict} -> {results[k].value}")
        _write(folder, doc, steps, None)
    summary = _write(folder, doc, steps, s)
    return summary


def _step_record(index, k, variant, sub, folder, verdict, out, result, error, patches) -> dict:
    rec = {"step": index, "prefix": k, "variant": variant, "last_patch": patches[k - 1].subject,
           "folder": str(sub.relative_to(folder)), "verdict": verdict, "outcome": out.value, "error": error}
    if result:
        v = result.get("variants", {})
        rec["lru_caused_loops"] = {arm: [v[arm]["lru_caused_loops"]["events"], v[arm]["lru_caused_loops"]["trials"]]
                                   for arm in ("baseline", "patched") if arm in v and "lru_caused_loops" in v[arm]}
        rec["reason"] = (result.get("decision") or {}).get("reason")
    return rec


def _pin(folder: Path, doc: dict) -> None:
    path = folder / names.BISECT
    if path.is_file() and json.loads(path.read_text()) != json.loads(json.dumps(doc)):
        raise InputError(f"{folder} holds a bisect with other patches, baseline or plan; resume it with the same "
                         f"arguments, or use a new --out folder")
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))


def _write(folder: Path, doc: dict, steps: list[dict], final: Step | None) -> dict:
    result = None
    if final is not None:
        first = final.first
        result = {"first": first, "candidates": list(final.candidates), "reason": final.reason,
                  "patch": doc["patches"][first - 1] if first else None}
    summary = {**doc, "kind": "bisect", "steps": steps, "campaigns": len(steps), "result": result}
    (folder / names.SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary
