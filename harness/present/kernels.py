"""Which kernel each arm ran, from its runs' kernel.json: the cache key, the exact source (tarball sha256,
directory digest, or commit id) and every patch by sha256 and subject line. For the report's provenance
and the lines `ab` prints, so two arms can always be told apart."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from harness.store.campaign_folder import CampaignFolder, arm_key_of
from harness.store.run_folder import RunFolder


def arm_kernels(folder: Path) -> dict[str, dict]:
    """{arm key: kernel record} of a campaign folder's runs ({"kernel": record} for a run folder); an arm
    whose runs ran more than one kernel (it should not happen) lists each under `<arm> (run NNN)`."""
    if not CampaignFolder.holds_campaign(folder):
        record = RunFolder(folder).kernel_record()
        return {"kernel": record} if record else {}
    out: dict[str, dict] = {}
    for run in CampaignFolder(folder).runs():
        if (record := run.kernel_record()) is None:
            continue
        arm = arm_key_of(run.name)
        if arm in out and out[arm]["key"] != record["key"]:
            arm = f"{arm} (run {run.name})"
        out.setdefault(arm, record)
    return out


def source_text(record: Mapping) -> str:
    """The exact source in words: the tarball and its sha256, the commit id, or the directory and its digest."""
    ident = record.get("source_identity", "")
    if ident.startswith("tar:"):
        return f"tarball {record['source']} sha256 {ident[4:]}"
    if ident.startswith("git:"):
        commit, _, tree = ident[4:].partition(" tree ")
        repo = record["source"][4:].rsplit("@", 1)[0]
        return f"commit {commit} of {repo} (tree {tree})"
    if ident.startswith("dir:"):
        return f"directory {record['source']} (content digest {ident[4:]})"
    return f"{record.get('source')} ({ident})"


def patch_text(p: Mapping) -> str:
    return f"{p['sha256'][:16]} {p['subject']}" + (f" [{p['from']}]" if p.get("from") == "developer" else "")


def kernel_lines(kernels: Mapping[str, Mapping]) -> list[str]:
    """One line per arm: key, release, source; then one per patch."""
    lines = []
    for arm, r in kernels.items():
        lines.append(f"kernel {arm}: key {r['key']}, Linux {r.get('release') or '?'}, {source_text(r)}"
                     + (f", series {r['series']}" if r.get("series") else ""))
        lines += [f"  patch {i}: {patch_text(p)}" for i, p in enumerate(r.get("patches") or [], 1)]
    return lines


def html_rows(kernels: Mapping[str, Mapping]) -> list[tuple[str, str]]:
    """(label, value) rows for the report's provenance table (values are plain text: the caller escapes)."""
    rows = []
    for arm, r in kernels.items():
        rows.append((f"kernel of {arm}: cache key", r["key"]))
        rows.append((f"kernel of {arm}: source", f"Linux {r.get('release') or '?'}, {source_text(r)}"))
        rows += [(f"kernel of {arm}: patch {i}", patch_text(p)) for i, p in enumerate(r.get("patches") or [], 1)]
    return rows
