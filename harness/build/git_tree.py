"""One commit of a developer's git tree as a kernel source (`kernel.source: git:<repository>@<commit id>`).

Everything is read from git's object store: a commit is exported into the build's own folder through a
temporary index file, so the repository's checkout, index, HEAD, refs and worktree list are never written
(`git status` and `git worktree list` are the same afterwards)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.core import proc
from harness.core.errors import InputError

PREFIX = "git:"
SOURCE = re.compile(r"^git:(?P<repo>.+)@(?P<commit>[0-9a-f]{40})$")


@dataclass(frozen=True)
class GitSource:
    repo: Path
    commit: str

    @property
    def source(self) -> str:
        """The `kernel.source` string that names this commit."""
        return f"{PREFIX}{self.repo}@{self.commit}"


def is_git(source: str) -> bool:
    return source.startswith(PREFIX)


def parse(source: str) -> GitSource:
    m = SOURCE.match(source)
    if not m:
        raise InputError(f"kernel source {source!r}: a git source is git:<repository>@<40-hex commit id>")
    return GitSource(Path(m["repo"]), m["commit"])


def _git(repo: Path, *args: str) -> str:
    return proc.capture(["git", "-C", str(repo), *args])


def _require_git(option: str) -> None:
    if shutil.which("git") is None:
        raise InputError(f"{option} needs git, which is not installed: apt-get install -y git")


def repository(tree: Path, option: str = "--tree") -> Path:
    """The top of the git repository at `tree` (the folder itself, not one it sits in)."""
    _require_git(option)
    tree = tree.expanduser().resolve()
    try:
        top = Path(_git(tree, "rev-parse", "--show-toplevel").strip()).resolve()
    except proc.CommandError:
        top = None
    if top != tree:
        raise InputError(f"{option} {tree} is not the top folder of a git repository, so "
                         f"--baseline-ref/--patched-ref cannot name commits in it; pass the repository's top "
                         f"folder, or drop the refs to build the tree as it is")
    return tree


def resolve(repo: Path, ref: str, option: str) -> GitSource:
    """The commit `ref` names in repo; an unknown ref is an error that lists some that exist."""
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
    except proc.CommandError:
        known = _git(repo, "for-each-ref", "--count=12", "--sort=-committerdate", "--format=%(refname:short)",
                     "refs/heads", "refs/tags").split()
        raise InputError(f"{option} {ref!r}: no such commit in {repo}; branches and tags there (newest first): "
                         f"{', '.join(known) or '(none)'}; or give a commit id, or HEAD~N") from None
    return GitSource(repo, commit)


def exists(gs: GitSource) -> bool:
    try:
        _git(gs.repo, "cat-file", "-e", f"{gs.commit}^{{commit}}")
        return True
    except proc.CommandError:
        return False


def identity(gs: GitSource) -> str:
    """The commit id and its tree id: the exact content that is built."""
    tree = _git(gs.repo, "rev-parse", f"{gs.commit}^{{tree}}").strip()
    return f"git:{gs.commit} tree {tree}"


def read_file(gs: GitSource, path: str) -> bytes | None:
    """One file of the commit, or None when the commit has no such file."""
    try:
        return proc.capture_bytes(["git", "-C", str(gs.repo), "show", f"{gs.commit}:{path}"])
    except proc.CommandError:
        return None


def has_path(gs: GitSource, path: str) -> bool:
    try:
        _git(gs.repo, "cat-file", "-e", f"{gs.commit}:{path}")
        return True
    except proc.CommandError:
        return False


def list_dir(gs: GitSource, path: str) -> list[str]:
    """The names in one folder of the commit; [] when the commit has no such folder."""
    try:
        return _git(gs.repo, "ls-tree", "--name-only", f"{gs.commit}:{path}").split()
    except proc.CommandError:
        return []


def export(gs: GitSource, dest: Path, log_path: Path | None = None) -> None:
    """Write every file of the commit into dest (created), with git's own file modes; the repository is
    only read (the index is a temporary file beside dest)."""
    gitdir = _git(gs.repo, "rev-parse", "--absolute-git-dir").strip()
    dest.mkdir(parents=True, exist_ok=True)
    index = dest.parent / f".{dest.name}.git-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    base = ["git", f"--git-dir={gitdir}", f"--work-tree={dest}"]
    try:
        proc.run([*base, "read-tree", gs.commit], env=env, log_path=log_path)
        proc.run([*base, "checkout-index", "--all", "--force"], env=env, log_path=log_path)
    finally:
        index.unlink(missing_ok=True)
