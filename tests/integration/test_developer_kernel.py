"""A developer's own kernel end to end (real kernels, real guests, short campaigns): `ab --patch` names every
patch and each arm's kernel; `ab --tree --baseline-ref --patched-ref` on a git tree made from the Debian
tarball builds both commits, gets the right verdict, and leaves the developer's checkout as it was."""

import json
import os
import shutil
import subprocess

import pytest

from harness import cli
from harness.build import kernel
from harness.core.paths import cache_root
from harness.store import names
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
DEFENCES = ROOT / "kernel-configs/patches/defences"
FIX3 = next((ROOT / "kernel-configs/patches/fixes").glob("0003-*.patch"))
GIT_ENV = {"GIT_AUTHOR_NAME": "cma-harness", "GIT_AUTHOR_EMAIL": "cma-harness@invalid", "GIT_COMMITTER_NAME":
           "cma-harness", "GIT_COMMITTER_EMAIL": "cma-harness@invalid", "GIT_AUTHOR_DATE": "2026-12-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2026-12-01T00:00:00Z"}
# The git tree's commits, oldest first: Debian's 6.1, then the defences removed one by one, in an order
# that passes through remove-2-3 (the variant that fails most: a short campaign decides).
COMMITS = [("stock", None), ("remove-2", "0002"), ("remove-2-3", "0003"), ("reintroduce-2012", "0001")]


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


@pytest.fixture(scope="session")
def linux_git():
    """Debian's linux-source-6.1 as a git tree, one commit per defence removed (tags named after the
    variants); made once under the harness cache (a few minutes), then reused."""
    repo = cache_root() / "test-trees" / "linux-6.1-defences"
    if (repo / ".complete").is_file():
        return repo
    tmp = repo.with_name(repo.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run(["tar", "-xf", kernel.DEBIAN_KERNEL_TARBALL, "-C", tmp, "--strip-components=1"], check=True)
    git(tmp, "init", "-q", "-b", "main")
    git(tmp, "config", "core.compression", "1")
    git(tmp, "config", "gc.auto", "0")      # no gc detached by a commit, packing while the test compares states
    for tag, defence in COMMITS:
        if defence:
            [patch] = DEFENCES.glob(f"{defence}-*.patch")
            subprocess.run(["patch", "-p1", "--fuzz=0", "-s", "-i", patch], cwd=tmp, check=True)
        git(tmp, "add", "-A", "--force")        # Debian's top-level .gitignore ignores everything (`/*`)
        git(tmp, "commit", "-qm", f"{tag}: " + ("Debian linux-source-6.1" if not defence else f"remove defence {defence}"))
        git(tmp, "tag", tag)
    (tmp / ".git" / "info" / "exclude").write_text(".complete\n")
    (tmp / ".complete").write_text("")
    shutil.rmtree(repo, ignore_errors=True)
    tmp.rename(repo)
    return repo


def _state(repo):
    return (git(repo, "status", "--porcelain", "--ignored"), git(repo, "rev-parse", "HEAD"),
            git(repo, "worktree", "list", "--porcelain"))


def _records(folder):
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(folder.glob(f"runs/*/{names.KERNEL_RECORD}"))}


def test_refs_build_both_commits_and_the_checkout_is_untouched(linux_git, tmp_path, capsys):
    before = _state(linux_git)
    out = tmp_path / "ab"
    # remove-2-3 fails in about 29 % of loops (one boot of 7 failing none ended a 70-loop budget
    # `baseline-does-not-reproduce`); 150 reaches `fixed` in 99.97 % of campaigns even with boots that
    # differ (sequential.feasibility, rho 0.05), most of them at 50-60 loops per arm.
    code = cli.main(["ab", "--tree", str(linux_git), "--baseline-ref", "remove-2-3", "--patched-ref", "stock",
                     "--loops-per-run", "10", "--budget", "150", "--alpha", "0.01", "--out", str(out)])
    printed = capsys.readouterr().out
    summary = json.loads((out / names.SUMMARY).read_text())
    assert summary["verdict"] == "fixed" and code == cli.EXIT_OK, printed
    commits = {git(linux_git, "rev-parse", t).strip() for t in ("remove-2-3", "stock")}
    records = _records(out)
    assert {r["commit"] for r in records.values()} == commits, "each arm ran its own commit"
    assert len({r["key"] for r in records.values()}) == 2
    assert f"commit {git(linux_git, 'rev-parse', 'stock').strip()}" in printed
    assert _state(linux_git) == before, "the developer's checkout, HEAD and worktrees are as they were"


def test_patch_names_every_patch_and_each_arms_kernel(tmp_path, capsys):
    out = tmp_path / "ab"
    cli.main(["ab", "--baseline", "reintroduce-2012", "--patch", str(FIX3), "--loops-per-run", "10",
              "--budget", "10", "--expect", "inconclusive", "--out", str(out)])
    printed = capsys.readouterr().out
    records = _records(out)
    base = next(r for n, r in records.items() if n.endswith("-reintroduce-2012"))
    patched = next(r for n, r in records.items() if n.endswith("-reintroduce-2012+patches"))
    assert base["key"] != patched["key"] and base["source_identity"] == patched["source_identity"]
    [dev] = [p for p in patched["patches"] if p["from"] == "developer"]
    assert dev["subject"].startswith("block/fops: migrate block-device folios") and dev["sha256"] in \
        json.dumps(json.loads((out / names.REPORT_JSON).read_text())["provenance"]["kernels"])
    assert dev["sha256"][:16] in printed and "key " + patched["key"] in printed
