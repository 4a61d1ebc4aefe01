"""What a run folder says about the kernel that ran (its kernel.json): the cache key, the exact source
(tarball sha256, directory digest, or commit id and tree id), the release, and every patch applied, in
order, by sha256 and subject line."""

from __future__ import annotations

from harness.build import git_tree, kernel
from harness.build.kernel import KernelBuild
from harness.spec import patch_files
from harness.spec.config import KernelSpec
from harness.spec.variants import series_name


def describe(spec: KernelSpec, kb: KernelBuild) -> dict:
    """The record of a kernel the harness built from spec (kb is that build)."""
    meta = kernel.inputs(spec)
    series = kernel.series_patches(spec.patches, spec.source) if spec.patches else []
    patches = [{"from": "series", "file": str(p.relative_to(kernel.CONFIGS_DIR)) if p.is_relative_to(kernel.CONFIGS_DIR)
                else str(p), **_subject_sha(p.read_text(), p.name)} for p in series]
    patches += [{"from": "developer", **p.provenance()} for p in kernel.extra_patches(spec)]
    return {
        "key": kb.key,
        "release": _release(kb),
        "source": meta["source"],
        "source_identity": meta["source_identity"],
        "commit": git_tree.parse(spec.source).commit if git_tree.is_git(spec.source) else None,
        "fragments": list(spec.fragments),
        # The config base when it is not allnoconfig (absent: allnoconfig, as in every record made before).
        **({"base": spec.base} if "base" in meta else {}),
        "series": series_name(spec.patches) if spec.patches else None,
        "patches": patches,
    }


def describe_external(kb: KernelBuild) -> dict:
    """The record of a kernel tree a board file names (built by the user, not the harness)."""
    return {"key": kb.key, "release": _release(kb), "source": str(kb.tree), "source_identity": "external build tree",
            "commit": None, "fragments": [], "series": None, "patches": []}


def _subject_sha(text: str, name: str) -> dict:
    [p] = patch_files.split(text, name)[:1]
    return {"subject": p.subject, "sha256": p.sha256}


def _release(kb: KernelBuild) -> str | None:
    try:
        return kb.release
    except OSError:
        return None
