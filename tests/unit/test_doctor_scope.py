"""`cma-harness doctor`: the demo's tools decide its answer; the test suite's only with --tests."""

import shutil

from harness.build import toolchain


def _without(monkeypatch, *commands):
    real = shutil.which
    monkeypatch.setattr(toolchain.shutil, "which", lambda c: None if c in commands else real(c))


def test_a_missing_test_only_tool_is_named_but_fails_only_the_tests_check(monkeypatch):
    _without(monkeypatch, "ser2net")
    ok, lines = toolchain.doctor()
    line = next(l for l in lines if " ser2net " in f" {l} ")
    assert line.startswith("absent") and "setup-host.sh --tests" in line
    ok_tests, lines_tests = toolchain.doctor(tests=True)
    assert not ok_tests
    assert any(l.startswith("MISSING ser2net") and "apt-get install -y ser2net" in l for l in lines_tests)
    assert lines_tests[-1].endswith("setup-host.sh --tests")


def test_a_missing_demo_tool_fails_both(monkeypatch):
    _without(monkeypatch, "qemu-system-arm")
    for tests in (False, True):
        ok, lines = toolchain.doctor(tests=tests)
        assert not ok
        assert any(l.startswith("MISSING qemu") and "apt-get install -y qemu-system-arm" in l for l in lines)
