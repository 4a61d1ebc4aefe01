"""Several guest snippets in one round trip over the command channel: a boot's set-up (mount, workload,
counters, trace, insmod) costs one exchange instead of five. Each step runs in a subshell of its own, in
turn, its output after a marker line; the first that fails ends the script with its status, named.
Pure: scripts out, output in."""

from __future__ import annotations

from dataclasses import dataclass

STEP = "@@cma-harness step "
FAILED = "@@cma-harness failed "


@dataclass(frozen=True)
class StepResult:
    name: str
    script: str
    output: str
    status: int = 0


def script(steps: list[tuple[str, str]]) -> str:
    """(name, snippet) pairs as one script. A step's `exit` ends only its own subshell; the failure's
    `exit` only the script's (a board's command channel may be one long-lived shell)."""
    parts = []
    for name, snippet in steps:
        parts.append(f"echo '{STEP}{name}'\n( {snippet.strip()}\n) || {{ s=$?; echo \"{FAILED}{name} $s\"; exit $s; }}")
    return "(\n" + "\n".join(parts) + "\n)\n"


def split(steps: list[tuple[str, str]], output: str) -> list[StepResult]:
    """Each step's output and status, for the steps that ran (a failed one last). A marker is found
    anywhere in its line: a job an earlier step left in the background (the trace reader, under `set -x`)
    writes to the same channel, and its text can come before the marker on the marker's line. Pure."""
    results: list[StepResult] = []
    known = dict(steps)
    name, lines = None, []

    def close(status: int = 0) -> None:
        if name is not None:
            results.append(StepResult(name, known[name], "\n".join(lines) + ("\n" if lines else ""), status))

    for line in output.splitlines():
        step, failed = line.find(STEP), line.find(FAILED)
        if step >= 0 and line[step + len(STEP):] in known:
            if line[:step]:
                lines.append(line[:step])
            close()
            name, lines = line[step + len(STEP):], []
        elif failed >= 0 and name is not None and line[failed + len(FAILED):].split(" ")[0] == name:
            if line[:failed]:
                lines.append(line[:failed])
            close(int(line.rsplit(" ", 1)[1]))
            name = None
        else:
            lines.append(line)
    close()
    return results
