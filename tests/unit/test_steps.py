"""The set-up in one round trip, run by a real shell: each step's output apart, the first failure named
with its status, nothing after it run."""

import subprocess

from harness.guest import steps


def _sh(text: str) -> tuple[str, int]:
    """As a board's command channel runs a snippet: stdout and stderr merged."""
    r = subprocess.run(["sh", "-c", f"{{ {text}\n}} 2>&1"], capture_output=True, text=True, timeout=30)
    return r.stdout, r.returncode


def test_each_step_s_output_comes_back_apart():
    plan = [("one", "echo a; echo b"), ("two", "x=1; exit 0"), ("three", "echo c")]
    out, status = _sh(steps.script(plan))
    got = steps.split(plan, out)
    assert status == 0 and [(r.name, r.output, r.status) for r in got] == [("one", "a\nb\n", 0), ("two", "", 0),
                                                                           ("three", "c\n", 0)]


def test_the_first_failure_ends_the_script_with_its_status_named():
    plan = [("mount", "echo mounted"), ("workload", "echo 'no such worker' >&2; exit 7"), ("insmod", "echo loaded")]
    out, status = _sh(steps.script(plan))
    got = steps.split(plan, out)
    assert status == 7 and [r.name for r in got] == ["mount", "workload"]
    assert got[-1].status == 7 and "no such worker" in got[-1].output and "loaded" not in out


def test_a_step_s_variables_and_exit_stay_in_its_subshell():
    plan = [("set", "v=1; exit 0"), ("read", "echo \"v=${v:-unset}\"")]
    out, _ = _sh(steps.script(plan))
    assert steps.split(plan, out)[1].output == "v=unset\n"


def test_a_failure_ends_the_script_not_the_shell_that_runs_it():
    """The QEMU board's command channel is one long-lived shell: the script's `exit` must not end it."""
    plan = [("bad", "exit 3")]
    out, status = _sh(steps.script(plan) + "echo \"shell still here after $?\"")
    assert "shell still here after 3" in out and status == 0


def test_a_marker_behind_a_background_job_s_text_on_its_line_is_still_found():
    """Seen on the test bed: the trace reader, left in the background under `set -x`, wrote `+ ` and the
    marker came right after it on the same line."""
    plan = [("trace", "echo set"), ("insmod", "echo loaded")]
    out = "@@cma-harness step trace\nset\n+ @@cma-harness step insmod\ncat /sys/kernel/tracing/trace_pipe\nloaded\n"
    got = steps.split(plan, out)
    assert [(r.name, r.status) for r in got] == [("trace", 0), ("insmod", 0)]
    assert got[0].output == "set\n+ \n" and got[1].output == "cat /sys/kernel/tracing/trace_pipe\nloaded\n"
    failed = steps.split(plan, out + "x@@cma-harness failed insmod 4\n")
    assert failed[-1].status == 4 and failed[-1].output.endswith("loaded\nx\n")
