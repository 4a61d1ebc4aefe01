"""The guest-side tracing set-up: valid shell, one refusal filter per probe, switches honoured."""

import subprocess

import pytest

from harness.core.deadline import Deadline
from harness.core.errors import InfraError

from harness.guest import tracing


def test_setup_script_is_valid_shell():
    script = tracing.setup_script(2048, page_dumps=True)
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_errexit_stays_inside_a_subshell():
    # `set -e` in the command channel's own shell would make the next failing command kill the channel.
    script = tracing.setup_script(2048, page_dumps=False)
    assert script.startswith("(\nset -ex\n") and script.endswith("\n)")


def test_every_probe_records_only_the_loop_thread_and_refusals_only_when_they_refuse():
    script = tracing.setup_script(2048, page_dumps=False)
    for p in tracing.PROBES:
        assert f"{p.kind}:{tracing.GROUP}/{p.name} {p.symbol} " in script
        flt = f"{p.condition} && " if p.condition else ""
        assert f"echo '{flt}comm ~ \"cma_harness*\"' > {tracing.TRACEFS}/events/{tracing.GROUP}/{p.name}/filter" in script
        assert (f"{tracing.GROUP}/{p.name}/trigger" in script) == p.stack
        assert p.kind == "p" or p.condition, "a kretprobe without a condition would record every return"


def test_no_kretprobe_on_the_chain_the_stacks_must_show():
    """A kretprobe swaps its function's return address for __kretprobe_trampoline, where the ARM32
    unwinder stops: seen on a real run as `=> [unknown/kretprobe'd]` right above the probed function."""
    returns = {p.symbol for p in tracing.PROBES if p.kind == "r"}
    assert not returns & {"filemap_release_folio", "alloc_contig_range", "__alloc_contig_migrate_range",
                          "migrate_pages", "cma_alloc"}
    assert {p.symbol for p in tracing.PROBES if p.stack} == {"filemap_release_folio"}


def test_the_reader_starts_after_tracing_is_on_and_page_dumps_are_a_switch():
    on, off = tracing.setup_script(64, page_dumps=True), tracing.setup_script(64, page_dumps=False)
    assert on.index("tracing_on\n") < on.index("trace_pipe >")
    assert "alloc_contig_dump_pages +p" in on and "dynamic_debug" not in off
    assert "echo 64 > /sys/kernel/tracing/buffer_size_kb" in on


def test_stop_script_is_valid_shell_and_ends_a_stream_only_after_the_reader_is_gone():
    for sink in (tracing.TRACE_FILE, "/dev/vport0p2"):
        script = tracing.stop_script(sink)
        assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
        assert script.index("tracing_on") < script.index("kill $r")
    streamed = tracing.stop_script("/dev/vport0p2")
    assert streamed.index("kill -0 $r") < streamed.index("> /dev/vport0p2")
    assert tracing.STREAM_END not in tracing.stop_script(tracing.TRACE_FILE)
    # The reader is stopped once it is back in its read, not after a fixed sleep.
    assert f"/proc/$r/wchan 2>/dev/null)\" != {tracing.READER_IDLE}" in streamed and "usleep 200000" not in streamed
    assert "cat /sys/kernel/tracing/trace_pipe > /dev/vport0p2 2>/dev/null &" in tracing.setup_script(64, False, "/dev/vport0p2")


def test_a_stream_is_taken_only_once_its_end_line_has_arrived(tmp_path):
    stream = tmp_path / "trace.stream"
    body = b"  cma_harness/0-52 [000] ..... 12.5: cma_alloc_start: name=cma-harness-area\n" * 3
    stream.write_bytes(body)
    with pytest.raises(InfraError, match="did not end with"):
        tracing.wait_for_stream_end(stream, Deadline(0.3), poll_s=0.05)
    stream.write_bytes(body + (tracing.STREAM_END + "\n").encode())
    assert tracing.wait_for_stream_end(stream, Deadline(1)) == body
    # An empty trace (no event at all) is a whole trace too.
    stream.write_bytes((tracing.STREAM_END + "\n").encode())
    assert tracing.wait_for_stream_end(stream, Deadline(1)) == b""
