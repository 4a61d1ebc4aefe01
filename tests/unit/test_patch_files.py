"""Patch files as a developer hands them over: format-patch mails, an mbox of several, a plain diff."""

import pytest

from harness.core.errors import InputError
from harness.spec import patch_files
from tests.conftest import ROOT

DEFENCES = ROOT / "kernel-configs" / "patches" / "defences"

MAIL = """From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001
From: A Developer <dev@example.invalid>
Date: Tue, 1 Dec 2026 10:00:00 +0000
Subject: [PATCH {n}/2] mm: a fix whose subject is long enough to be
 folded onto a second line

Why.
---
 fs/buffer.c | 2 +-

diff --git a/fs/buffer.c b/fs/buffer.c
--- a/fs/buffer.c
+++ b/fs/buffer.c
@@ -1,3 +1,3 @@
 a
-b
+c
 d
--
2.39.5

"""


def test_an_mbox_of_two_mails_is_two_patches_with_their_subjects_and_commits(tmp_path):
    mbox = tmp_path / "series.mbox"
    mbox.write_text(MAIL.format(n=1) + MAIL.format(n=2).replace("0123456789abcdef0123", "fedcba98765432100123"))
    first, second = patch_files.read([mbox])
    assert first.subject == "mm: a fix whose subject is long enough to be folded onto a second line"
    assert (first.index, second.index) == (1, 2) and first.commit.startswith("0123") and second.commit.startswith("fedc")
    assert first.sha256 != second.sha256 and len(first.sha256) == 64
    assert patch_files.files_touched(first) == ["fs/buffer.c"]
    name = first.file_name(1)
    assert name.startswith("0001-mm-a-fix-whose-subject") and name.endswith(".patch") and len(name) <= 64


def test_the_projects_own_patches_read_as_one_patch_each():
    for path in sorted(DEFENCES.glob("*.patch")):
        [p] = patch_files.read([path])
        assert p.subject and p.text == path.read_text()


def test_a_plain_diff_is_named_after_its_file(tmp_path):
    diff = tmp_path / "fix.diff"
    diff.write_text("--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n")
    [p] = patch_files.read([diff])
    assert (p.subject, p.commit) == ("fix.diff", None)


@pytest.mark.parametrize("content, message", [
    ("From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\nSubject: cover letter\n\nhello\n",
     "mail 1 of .* holds no patch"),
    ("just some notes\n", "holds no patch"),
])
def test_a_file_without_a_patch_is_refused_by_name(tmp_path, content, message):
    f = tmp_path / "notes.mbox"
    f.write_text(content)
    with pytest.raises(InputError, match=message):
        patch_files.read([f])


def test_a_binary_or_missing_file_is_refused_by_name(tmp_path):
    binary = tmp_path / "fix.patch"
    binary.write_bytes(b"\xff\xfe\x00diff")
    with pytest.raises(InputError, match="not UTF-8 text"):
        patch_files.read([binary])
    with pytest.raises(InputError, match="no such file"):
        patch_files.read([tmp_path / "missing.patch"])
