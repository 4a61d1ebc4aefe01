"""`cma-harness build --print-key`: the key the kernel build itself uses, printed without building (CI keys its
kernel cache with it)."""

import contextlib
import re
from pathlib import Path

import pytest

from harness import cli
from harness.build import kernel


class NoBuildStore:
    """A store that has every kernel: build() then returns its key and builds nothing; building is an error."""

    def lock(self, key):
        return contextlib.nullcontext()

    def has(self, key):
        return True

    def path(self, key):
        return Path("/nonexistent") / key

    def building(self, key, meta):
        raise AssertionError("--print-key must not build")


@pytest.fixture
def fake_debian_source(tmp_path, monkeypatch):
    tarball = tmp_path / "linux-source-6.1.tar.xz"
    tarball.write_bytes(b"not really a kernel")
    monkeypatch.setattr(kernel, "DEBIAN_KERNEL_TARBALL", tarball)
    monkeypatch.setattr(kernel, "toolchain_identity", lambda: "arm-linux-gnueabihf-gcc 12.2.0 / GNU Make 4.3")
    monkeypatch.setattr(kernel, "require", lambda *tools: None)
    return tarball


def _print_key(capsys, *argv) -> str:
    assert cli.main(["build", *argv, "--print-key"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert re.fullmatch(r"[0-9a-f]{24}\n", out), out
    return out.strip()


def _build_key(variant: str | None) -> str:
    from harness.spec import config

    scn = config.load(None)
    spec = scn.variant(variant) if variant else scn.kernel
    return kernel.build(spec, store=NoBuildStore()).key


@pytest.mark.parametrize("variant", ["reintroduce-2012", "stock", None])
def test_print_key_is_the_key_build_uses(fake_debian_source, capsys, monkeypatch, variant):
    def no_build(*a, **k):
        raise AssertionError("--print-key must not build")

    real_build = kernel.build
    monkeypatch.setattr(kernel, "build", no_build)
    printed = _print_key(capsys, *(["--variant", variant] if variant else []))
    monkeypatch.setattr(kernel, "build", real_build)
    assert printed == _build_key(variant)


def test_the_two_demo_kernels_have_different_keys_and_inputs_change_them(fake_debian_source, capsys):
    r = _print_key(capsys, "--variant", "reintroduce-2012")
    s = _print_key(capsys, "--variant", "stock")
    assert r != s
    fake_debian_source.write_bytes(b"another kernel")
    assert _print_key(capsys, "--variant", "stock") != s, "a changed source tarball changes the key"


def test_print_key_of_an_unknown_variant_is_an_input_error(fake_debian_source, capsys):
    assert cli.main(["build", "--variant", "no-such-variant", "--print-key"]) == cli.EXIT_INPUT
    assert "no-such-variant" in capsys.readouterr().err


def test_without_print_key_build_still_builds(monkeypatch):
    args = cli.build_parser().parse_args(["build", "--variant", "stock"])
    assert args.func is cli.cmd_build
    args = cli.build_parser().parse_args(["build", "--print-key", "--variant", "stock"])
    assert args.func is cli.cmd_build_key
