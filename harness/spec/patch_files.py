"""A developer's patch files as the harness takes them: `git format-patch` output, an mbox of several, or a
plain diff; each split into single patches with their subject line and sha256, checked before any build."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path
from typing import Iterable

from harness.core.errors import InputError

# git format-patch's mbox separator: "From <40-hex commit> Mon Sep 17 00:00:00 2001".
MBOX_FROM = re.compile(r"^From ([0-9a-f]{40}) Mon Sep 17 00:00:00 2001$", re.M)
# A patch has at least one file header pair and one hunk.
DIFF_START = re.compile(r"^(?:diff --git |--- \S)", re.M)
HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", re.M)
SUBJECT_PREFIX = re.compile(r"^\[[^\]]*PATCH[^\]]*\]\s*")


@dataclass(frozen=True)
class Patch:
    """One patch: where it came from, its subject line, its text and that text's sha256."""
    source: str            # the file it was read from
    index: int             # 1-based position within that file (an mbox holds several)
    subject: str
    commit: str | None     # the commit id of a format-patch mail, when it has one
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def file_name(self, position: int) -> str:
        """NNNN-<subject slug>.patch, as git format-patch names it."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.subject).strip("-")[:52] or "patch"
        return f"{position:04d}-{slug}.patch"

    def provenance(self) -> dict:
        return {"source": self.source, "index": self.index, "subject": self.subject, "commit": self.commit,
                "sha256": self.sha256}


def read(paths: Iterable[str | Path]) -> list[Patch]:
    """Every patch of every file, in order; each error names the file and what is wrong with it."""
    patches = []
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(f"--patch {path}: no such file; pass a file written by `git format-patch`, an mbox or a diff")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"--patch {path}: not UTF-8 text (byte {e.start}); is it a patch?") from None
        patches += split(text, str(path))
    return patches


def split(text: str, source: str) -> list[Patch]:
    """The patches of one file: each mail of an mbox, or the file itself when it is a single patch or diff."""
    starts = [m.start() for m in MBOX_FROM.finditer(text)]
    parts = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])] if starts else [text]
    out = []
    for index, part in enumerate(parts, 1):
        if not DIFF_START.search(part) or not HUNK.search(part):
            where = f"mail {index} of {source}" if starts else source
            raise InputError(f"--patch: {where} holds no patch (no `diff --git`/`---` file header with a hunk); "
                             f"pass the output of `git format-patch` or `diff -u`")
        commit = MBOX_FROM.match(part)
        out.append(Patch(source, index, _subject(part) or Path(source).name, commit.group(1) if commit else None, part))
    if not out:
        raise InputError(f"--patch {source}: empty file")
    return out


def _subject(mail: str) -> str | None:
    """The Subject header of a mail (unfolded, MIME-decoded, without the [PATCH n/m] prefix)."""
    head = mail.split("\n\n", 1)[0]
    m = re.search(r"^Subject: (.*(?:\n[ \t].*)*)", head, re.M)
    if not m:
        return None
    subject = " ".join(line.strip() for line in m.group(1).splitlines())
    subject = str(make_header(decode_header(subject)))
    return SUBJECT_PREFIX.sub("", subject).strip()


def files_touched(patch: Patch) -> list[str]:
    """The files a patch changes (its +++ side, without the a/ b/ prefix)."""
    return [re.sub(r"^[ab]/", "", m.group(1)) for m in re.finditer(r"^\+\+\+ (\S+)", patch.text, re.M)
            if m.group(1) != "/dev/null"]
