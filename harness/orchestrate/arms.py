"""A developer's A/B arms as variants of the scenario made in code: `--patch FILE…` on the baseline,
`--tree DIR` instead of the scenario's kernel source, `--baseline-ref A --patched-ref B` on a git tree.
Every input is checked here, and every patch tried against its source, before anything is built."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from harness.build import git_tree, preflight
from harness.core.errors import InputError
from harness.core.paths import cache_root
from harness.spec import config, patch_files
from harness.spec.config import KernelSpec, Scenario
from harness.spec.variants import series_name

DEFAULT_BASELINE, DEFAULT_PATCHED = "reintroduce-2012", "stock"   # the demo: the bug, and stock 6.1


@dataclass(frozen=True)
class Request:
    """What the command line asked for (no argparse object below the CLI)."""
    baseline: str | None = None         # a variant of the scenario (default: see baseline_of)
    patched: str | None = None          # a variant of the scenario; not with --patch or refs
    patches: tuple[Path, ...] = ()      # applied in order on the baseline: the patched arm
    tree: Path | None = None            # a kernel source tree instead of the scenario's source
    baseline_ref: str | None = None     # commits of the git tree at `tree`
    patched_ref: str | None = None

    @property
    def refs(self) -> bool:
        return bool(self.baseline_ref or self.patched_ref)


@dataclass(frozen=True)
class Arms:
    scenario: Scenario                  # with both arms among its variants
    baseline: str
    patched: str
    patches: tuple[patch_files.Patch, ...] = ()     # the developer's, one per mail, in order


def check_request(req: Request) -> None:
    if req.refs and not req.tree:
        raise InputError("--baseline-ref/--patched-ref name commits of a git tree: pass the tree with --tree DIR")
    if req.refs and not (req.baseline_ref and req.patched_ref):
        raise InputError("give both --baseline-ref and --patched-ref (the commit with the bug, and the one to test)")
    if req.patched and (req.patches or req.refs):
        raise InputError(f"--patched {req.patched}: with --patch or --patched-ref the patched arm is the baseline plus "
                         f"the patches, or the patched commit; drop --patched")


def baseline_of(scn: Scenario, req: Request) -> tuple[str, KernelSpec]:
    """The baseline's name and kernel: --baseline's variant; else, with --patch or refs, the scenario's own
    kernel (named after its series); else the demo's reintroduce-2012."""
    if req.baseline:
        return req.baseline, scn.variant(req.baseline)
    if not (req.patches or req.refs):
        return DEFAULT_BASELINE, scn.variant(DEFAULT_BASELINE)
    name = series_name(scn.kernel.patches)
    if name in scn.variants and scn.variants[name] != scn.kernel:
        name = "kernel"
    return name, scn.kernel


def _safe(name: str) -> str:
    """A name fit for a run folder's: letters, digits and ._+- only."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-") or "tree"


def ref_name(ref: str, commit: str) -> str:
    """A variant name for a commit: the ref as written (folder-safe) and the commit id's first 12 digits."""
    if commit.startswith(ref.lower()):
        return commit[:12]
    return f"{_safe(ref)}@{commit[:12]}"


def store_patches(patches: Sequence[patch_files.Patch]) -> list[Path]:
    """Each patch's text in the harness cache, under its sha256 (content-addressed, never changed): a variant
    names these copies, so a campaign resumed after the developer edited a file refuses to mix the two."""
    out = []
    for p in patches:
        path = cache_root() / "patches" / p.sha256 / (Path(p.source).name if p.index == 1 else p.file_name(p.index))
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".partial")
            tmp.write_text(p.text)
            tmp.replace(path)
        out.append(path)
    return out


def with_variants(scn: Scenario, variants: dict[str, KernelSpec], origin: str) -> Scenario:
    """scn with more variants (each through the YAML input's checks)."""
    made = {name: config.revalidated(spec) for name, spec in variants.items()}
    return config.check(dataclasses.replace(scn, variants={**scn.variants, **made}), origin)


def on_tree(spec: KernelSpec, tree: Path | None) -> KernelSpec:
    return dataclasses.replace(spec, source=str(tree.expanduser().resolve())) if tree else spec


def resolve(scn: Scenario, req: Request) -> Arms:
    """The scenario with both arms as variants, and their names; no build, no patch tried yet."""
    check_request(req)
    if req.tree and not req.refs:
        preflight.check_tree(req.tree)
    base_name, base_spec = baseline_of(scn, req)
    if req.refs:
        repo = git_tree.repository(req.tree)
        a = git_tree.resolve(repo, req.baseline_ref, "--baseline-ref")
        b = git_tree.resolve(repo, req.patched_ref, "--patched-ref")
        preflight.check_commit(a, "--baseline-ref")
        preflight.check_commit(b, "--patched-ref")
        patched_name, patched_spec = ref_name(req.patched_ref, b.commit), dataclasses.replace(base_spec, source=b.source)
        base_name, base_spec = ref_name(req.baseline_ref, a.commit), dataclasses.replace(base_spec, source=a.source)
    elif req.patches:
        if req.tree and not req.baseline:       # the developer's tree as it is: named after its folder
            base_name = _safe(req.tree.expanduser().resolve().name) + (f"+{base_name}" if base_spec.patches else "")
        base_spec = on_tree(base_spec, req.tree)
        patched_name, patched_spec = f"{base_name}+patches", base_spec
    else:
        patched_name = req.patched or DEFAULT_PATCHED
        base_spec, patched_spec = on_tree(base_spec, req.tree), on_tree(scn.variant(patched_name), req.tree)
    patches = tuple(patch_files.read(req.patches)) if req.patches else ()
    if patches:
        if req.refs:
            patched_name += "+patches"
        patched_spec = dataclasses.replace(patched_spec, extra_patches=patched_spec.extra_patches +
                                           tuple(map(str, store_patches(patches))))
    if patched_name == base_name and patched_spec != base_spec:
        raise InputError(f"both arms would be called {base_name!r}: name another --baseline")
    return Arms(with_variants(scn, {base_name: base_spec, patched_name: patched_spec}, "--patch/--tree"),
                base_name, patched_name, patches)


def prepare(scn: Scenario, req: Request, progress: Callable[[str], None] = lambda s: None) -> Arms:
    """resolve(), then every patch of both arms tried on its source's files: a patch that does not apply is
    an error now, not after the baseline's build."""
    arms = resolve(scn, req)
    preflight.check([arms.scenario.variant(arms.baseline), arms.scenario.variant(arms.patched)], progress)
    return arms


def patch_lines(arms: Arms) -> list[str]:
    """The developer's patches as the `ab` and `bisect` output lists them: sha256 and subject line."""
    return [f"patch {i}: {p.sha256[:16]} {p.subject} ({p.source}{f', mail {p.index}' if p.index > 1 else ''})"
            for i, p in enumerate(arms.patches, 1)]
