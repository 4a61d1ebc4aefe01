"""A tiny stand-in for a kernel source tree (the files the source checks look at, and one C file), as a
folder, a tarball or a git repository, and patches against it. For the unit tests of --tree, refs and
the patch check before the build: no real kernel is read."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

# images/setup-host.sh does not install git (CI's debian:12 container has none): those tests are skipped there.
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

BUFFER_C = "".join(f"line {i}\n" for i in range(1, 41))
FILES = {
    "Makefile": "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 99\nEXTRAVERSION =\n",
    "Kconfig": "mainmenu \"Linux\"\n",
    "arch/arm/Kconfig": "config ARM\n\tbool\n",
    "mm/Makefile": "obj-y := swap.o\n",
    "fs/buffer.c": BUFFER_C,
}
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@invalid", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def tree(root: Path) -> Path:
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def tarball(root: Path) -> Path:
    src = tree(root / "linux-src")
    out = root / "linux-6.1.99.tar.xz"
    with tarfile.open(out, "w:xz") as tf:
        tf.add(src, arcname="linux-6.1.99")
    return out


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def repository(root: Path) -> Path:
    """A git tree: the fake kernel committed (tag `base`), then line 10 of fs/buffer.c changed (HEAD)."""
    repo = tree(root / "linux")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "base")
    git(repo, "tag", "base")
    (repo / "fs/buffer.c").write_text(BUFFER_C.replace("line 10\n", "line 10 changed\n"))
    git(repo, "commit", "-qam", "change line 10")
    return repo


def mail(subject: str, hunk: str, path: str = "fs/buffer.c") -> str:
    return (f"From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n"
            f"From: A Developer <dev@example.invalid>\nSubject: [PATCH] {subject}\n\nWhy.\n---\n"
            f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{hunk}-- \n2.39.5\n\n")


GOOD_HUNK = "@@ -4,3 +4,3 @@\n line 4\n-line 5\n+line 5 fixed\n line 6\n"
STALE_HUNK = "@@ -20,3 +20,3 @@\n line 20\n-line 21 in another version\n+line 21 fixed\n line 22\n"
