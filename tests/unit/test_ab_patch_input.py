"""`cma-harness ab --patch/--tree/refs` from the command line: each bad input is an exit-2 error that names
it, before any kernel is built or any guest booted; with --git-bisect it aborts the bisect (128)."""

import pytest

from harness import cli
from harness.build import kernel
from tests.unit import fake_kernel as fk


@pytest.fixture(autouse=True)
def nothing_is_built(monkeypatch, tmp_path):
    def no_build(*a, **k):
        raise AssertionError("an input error must come before any build")
    monkeypatch.setattr(kernel, "build", no_build)
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "gcc 12")
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path / "cache"))


def _ab(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["ab", *argv])
    return code, capsys.readouterr().err


def test_an_mbox_without_a_patch(tmp_path, capsys):
    cover = tmp_path / "cover.mbox"
    cover.write_text("From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 0/2] "
                     "cover\n\nhello\n")
    code, err = _ab(capsys, "--patch", str(cover))
    assert code == cli.EXIT_INPUT and "mail 1 of" in err and "holds no patch" in err


def test_a_patch_that_does_not_apply_to_the_tree(tmp_path, capsys):
    tree = fk.tree(tmp_path / "linux")
    stale = tmp_path / "0001-stale.patch"
    stale.write_text(fk.mail("mm: stale", fk.STALE_HUNK))
    code, err = _ab(capsys, "--tree", str(tree), "--patch", str(stale))
    assert code == cli.EXIT_INPUT and "0001-stale.patch 'mm: stale' does not apply" in err
    assert "fs/buffer.c: hunk #1" in err and "Linux 6.1.99" in err


@fk.needs_git
def test_a_tree_that_is_not_a_kernel_and_a_ref_that_does_not_exist(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    code, err = _ab(capsys, "--tree", str(tmp_path / "notes"), "--patch", str(tmp_path / "x.patch"))
    assert code == cli.EXIT_INPUT and "is not a Linux kernel source tree" in err
    repo = fk.repository(tmp_path)
    code, err = _ab(capsys, "--tree", str(repo), "--baseline-ref", "v6.1", "--patched-ref", "HEAD")
    assert code == cli.EXIT_INPUT and "--baseline-ref 'v6.1': no such commit" in err
    code, _ = _ab(capsys, "--tree", str(repo), "--baseline-ref", "v6.1", "--patched-ref", "HEAD", "--git-bisect", "fixed")
    assert code == 128, "bad input aborts `git bisect run` instead of marking the commit bad"
