"""The guest-side tracing set-up: valid shell, one refusal filter per probe, switches honoured."""

import subprocess

from harness import tracing


def test_setup_script_is_valid_shell():
    script = tracing.setup_script(2048, page_dumps=True)
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_errexit_stays_inside_a_subshell():
    # `set -e` in the command channel's own shell would make the next failing command kill the channel.
    script = tracing.setup_script(2048, page_dumps=False)
    assert script.startswith("(\nset -ex\n") and script.endswith("\n)")


def test_every_probe_is_a_kretprobe_filtered_to_refusals_of_the_loop_thread():
    script = tracing.setup_script(2048, page_dumps=False)
    for p in tracing.PROBES:
        assert f"r:{tracing.GROUP}/{p.name} {p.symbol} ret=$retval:" in script
        assert f"echo '{p.refused} && comm ~ \"cma_harness*\"' > {tracing.TRACEFS}/events/{tracing.GROUP}/{p.name}/filter" in script
        assert (f"{tracing.GROUP}/{p.name}/trigger" in script) == p.stack


def test_the_reader_starts_after_tracing_is_on_and_page_dumps_are_a_switch():
    on, off = tracing.setup_script(64, page_dumps=True), tracing.setup_script(64, page_dumps=False)
    assert on.index("tracing_on\n") < on.index("trace_pipe >")
    assert "alloc_contig_dump_pages +p" in on and "dynamic_debug" not in off
    assert "echo 64 > /sys/kernel/tracing/buffer_size_kb" in on
