"""Bad input and a broken host give one clear message each: what is wrong, and how to fix it."""

import errno
import os
import shutil

import pytest

from harness.spec import config
from harness.build import kernel
from harness.orchestrate import run
from harness.build import toolchain
from harness import cli
from harness.spec.config import KernelSpec
from harness.core.errors import InfraError, InputError, from_os_error

BROKEN_PATCH = """\
--- a/mm/foo.c
+++ b/mm/foo.c
@@ -1,3 +1,3 @@
 int a = 1;
-int b = 20;
+int b = 21;
 int c = 3;
--- a/mm/missing.c
+++ b/mm/missing.c
@@ -1,1 +1,1 @@
-x
+y
"""


@pytest.fixture
def tiny_tree(tmp_path):
    """A fake kernel tree: enough for the patch step, which runs before anything is configured or built."""
    tree = tmp_path / "tree"
    (tree / "mm").mkdir(parents=True)
    (tree / "Makefile").write_text("all:\n")
    (tree / "mm" / "foo.c").write_text("int a = 1;\nint b = 2;\nint c = 3;\n")
    return tree


@pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch is not installed")
def test_a_patch_that_does_not_apply_names_file_and_hunk(tiny_tree, tmp_path):
    patch = tmp_path / "0001-broken.patch"
    patch.write_text(BROKEN_PATCH)
    with pytest.raises(InputError) as e:
        kernel._apply(patch, tiny_tree, tmp_path / "build.log", progress=lambda s: None)
    msg = str(e.value)
    assert "0001-broken.patch does not apply" in msg
    assert "mm/foo.c: hunk #1 (patch line 3: @@ -1,3 +1,3 @@) does not match the source near line 1" in msg
    assert "mm/missing.c: no such file in the kernel source (patch line 10)" in msg
    assert "Rebase the patch" in msg


def test_an_already_applied_patch_says_so():
    out = ["patching file mm/foo.c", "Reversed (or previously applied) patch detected!  Skipping patch."]
    assert kernel.patch_failures(BROKEN_PATCH, out) == [
        "mm/foo.c: already applied (the patch's changes are in the source already)"]


def test_a_kernel_source_that_is_not_there(tmp_path):
    with pytest.raises(InputError, match="does not exist; set `kernel.source` to an existing kernel directory"):
        kernel.source_path(KernelSpec(source=str(tmp_path / "linux")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without a top-level Makefile"):
        kernel.source_path(KernelSpec(source=str(tmp_path / "empty")))


def test_a_missing_tool_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InfraError) as e:
        toolchain.require("qemu", "dtc")
    assert "missing host tools: qemu-system-arm, dtc" in str(e.value)
    assert "apt-get install -y device-tree-compiler qemu-system-arm" in str(e.value)


@pytest.mark.parametrize("code, kind, words", [
    (errno.ENOSPC, InfraError, "no space left on the device (/runs/x/disk.img): free some space"),
    (errno.EACCES, InputError, "cannot write (/runs/x/disk.img): Permission denied; pass --out a folder you can write"),
    (errno.ENOTDIR, InputError, "--out takes a folder"),
])
def test_host_errors_become_messages(code, kind, words):
    err = from_os_error(OSError(code, os.strerror(code), "/runs/x/disk.img"))
    assert isinstance(err, kind) and words in str(err)


def test_a_folder_without_room_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(InfraError, match=r"MiB free; a run needs about 10000000 MiB .* or lower workload.disk_mib"):
        run._check_space(tmp_path, 10_000_000)


@pytest.mark.parametrize("yaml_text, words", [
    ("board: {cpus: 2}\nmodule: {cpu: 3}\n", "`module.cpu` = 3 but the board has 2 CPUs (`board.cpus`); allowed: 0 to 1"),
    ("module: {loops: 4, fault: oops, fault_loop: 4}\n",
     "`module.fault_loop` = 4 is never reached with `module.loops` = 4; allowed: 0 to 3"),
])
def test_rules_between_fields(tmp_path, yaml_text, words):
    path = tmp_path / "s.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError) as e:
        config.load(path)
    assert words in str(e.value) and "s.yaml" in str(e.value)


def test_loops_override_out_of_range_on_the_command_line(capsys):
    assert cli.main(["run", "--loops", "0"]) == cli.EXIT_INPUT
    assert "`module.loops` = 0 is out of range; allowed: 1 to 1000000" in capsys.readouterr().err


def test_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("")
    assert cli.main(["run", "--variant", "stock", "--out", str(f)]) == cli.EXIT_INPUT
    assert "wrong kind of path" in capsys.readouterr().err


def test_parse_of_a_folder(tmp_path, capsys):
    assert cli.main(["parse", str(tmp_path)]) == cli.EXIT_INPUT
    assert "not a file" in capsys.readouterr().err


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == cli.EXIT_INPUT
    assert "has no summary.json: not a run folder" in capsys.readouterr().err


def test_a_scenario_that_is_not_utf8_text_is_named(tmp_path):
    bad = tmp_path / "scenario.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(InputError, match=r"scenario.yaml: not UTF-8 text \(byte 6\)"):
        config.load(bad)
