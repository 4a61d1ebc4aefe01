"""Commits of a developer's git tree as kernel sources: refs resolved or refused by name, each commit
exported from git's object store (the repository's checkout, index, HEAD and worktrees untouched), and a
cache key that follows the commit's content. On a fake tree: no kernel is read."""

import pytest

from harness.build import cache, git_tree, kernel, preflight
from harness.core.errors import InputError
from harness.spec.config import KernelSpec
from tests.unit import fake_kernel as fk

pytestmark = fk.needs_git


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    return fk.repository(tmp_path)


def _state(repo):
    return (fk.git(repo, "status", "--porcelain", "--ignored"), fk.git(repo, "rev-parse", "HEAD"),
            fk.git(repo, "worktree", "list", "--porcelain"), fk.git(repo, "for-each-ref"))


def test_refs_resolve_to_commits_and_unknown_ones_are_listed(repo):
    top = git_tree.repository(repo)
    head = git_tree.resolve(top, "HEAD", "--patched-ref")
    base = git_tree.resolve(top, "base", "--baseline-ref")
    assert head.commit == fk.git(repo, "rev-parse", "HEAD").strip() and base.commit != head.commit
    assert git_tree.resolve(top, "HEAD~1", "--baseline-ref") == base
    with pytest.raises(InputError, match=r"--baseline-ref 'v9.9': no such commit in .*main, base"):
        git_tree.resolve(top, "v9.9", "--baseline-ref")


def test_a_folder_that_is_not_a_repository_top_is_refused(repo, tmp_path):
    with pytest.raises(InputError, match="not the top folder of a git repository"):
        git_tree.repository(repo / "fs")
    plain = fk.tree(tmp_path / "plain")
    with pytest.raises(InputError, match="not the top folder of a git repository"):
        git_tree.repository(plain)


def test_export_writes_the_commit_and_leaves_the_repository_as_it_was(repo, tmp_path):
    (repo / "untracked.txt").write_text("the developer's own file\n")
    before = _state(repo)
    base = git_tree.resolve(repo, "base", "--baseline-ref")
    out = tmp_path / "export" / "tree"
    git_tree.export(base, out)
    assert (out / "fs/buffer.c").read_text() == fk.BUFFER_C, "the commit's content, not the checkout's"
    assert not (out / "untracked.txt").exists() and not (out / ".git").exists()
    assert list((tmp_path / "export").iterdir()) == [out], "the temporary index is removed"
    assert _state(repo) == before


def test_the_key_of_a_commit_follows_its_content(repo):
    top = git_tree.repository(repo)
    a, b = (git_tree.resolve(top, r, "--ref") for r in ("base", "HEAD"))
    key = lambda gs: cache.digest(kernel.inputs(KernelSpec(source=gs.source)))
    assert key(a) == key(a) and key(a) != key(b)
    assert kernel.inputs(KernelSpec(source=a.source))["source_identity"].startswith(f"git:{a.commit} tree ")
    missing = git_tree.GitSource(top, "f" * 40)
    with pytest.raises(InputError, match="no commit f{40}"):
        kernel.inputs(KernelSpec(source=missing.source))


def test_a_commit_without_a_kernel_source_is_refused(repo):
    fk.git(repo, "rm", "-q", "arch/arm/Kconfig")
    fk.git(repo, "commit", "-qm", "drop arm")
    head = git_tree.resolve(repo, "HEAD", "--patched-ref")
    with pytest.raises(InputError, match="--patched-ref: commit .* holds no Linux kernel source tree; it lacks: arch/arm"):
        preflight.check_commit(head, "--patched-ref")
    assert preflight.check_commit(git_tree.resolve(repo, "base", "--baseline-ref"), "--baseline-ref") == "6.1.99"


def test_a_git_source_string_is_parsed_or_refused():
    gs = git_tree.parse(f"git:/src/my linux@{'a' * 40}")
    assert (str(gs.repo), gs.commit) == ("/src/my linux", "a" * 40) and gs.source == f"git:/src/my linux@{'a' * 40}"
    with pytest.raises(InputError, match="40-hex commit id"):
        git_tree.parse("git:/src/linux@main")
