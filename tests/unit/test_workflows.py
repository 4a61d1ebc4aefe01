"""The GitHub Actions workflows (.github/workflows): valid against GitHub's workflow schema (check-jsonschema),
no zizmor finding, no actionlint finding, and the project's own rules (Debian 12 container, a timeout on every
job, actions pinned by commit, no expression in a shell script, the demo expects `fixed`, junit.xml uploaded).

Every check is also run on a broken copy, to show that it notices. The three linters are skipped when they are
not installed, except under CI (`CI` set), where a missing linter fails: the set-up installs them."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.build import cache
from harness.build import kernel
from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
VALIDATE = WORKFLOWS / "validate-patch.yml"
ACTIONLINT = ROOT / ".ci" / "actionlint" / "actionlint.cjs"
ACTIONLINT_WASM = ROOT / ".ci" / "actionlint" / "node_modules" / "@tktco" / "node-actionlint" / "main.wasm"
INJECTION = '"${{ github.event.issue.title }}"'
SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")


# ---- helpers --------------------------------------------------------------------------------------

def _tool(name: str, install: str) -> str:
    """The linter's path: the venv's bin dir first (the tests run from .venv/bin/pytest), then PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed, and CI must run it: {install}")
    pytest.skip(f"{name} is not installed ({install})")


def _check_jsonschema(*files: Path) -> subprocess.CompletedProcess:
    exe = _tool("check-jsonschema", "pip install -e '.[test]'")
    return subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, files)],
                          capture_output=True, text=True, timeout=60)


def _zizmor(*inputs: Path) -> tuple[int, list[dict], str]:
    """zizmor off the network, every persona-regular audit, no config file, no inline ignore: (rc, findings, stderr)."""
    exe = _tool("zizmor", "pip install -e '.[test]'")
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    p = subprocess.run([exe, "--offline", "--no-progress", "--strict-collection", "--no-config", "--no-ignores",
                        "--format", "json", *map(str, inputs)], capture_output=True, text=True, timeout=60, env=env)
    findings = json.loads(p.stdout) if p.stdout.strip() else []
    return p.returncode, findings, p.stderr


def _actionlint(*files: Path) -> tuple[int, list[dict], str]:
    node = shutil.which("node")
    if node is None or not ACTIONLINT_WASM.exists():
        install = "apt-get install nodejs npm; npm ci --no-audit --no-fund --ignore-scripts --prefix .ci/actionlint"
        if os.environ.get("CI"):
            pytest.fail(f"actionlint (Node.js and .ci/actionlint/node_modules) is not installed, and CI must run it: {install}")
        pytest.skip(f"actionlint is not installed ({install})")
    p = subprocess.run([node, str(ACTIONLINT), "--json", *map(str, files)], capture_output=True, text=True,
                       timeout=60, cwd=ROOT)
    findings = json.loads(p.stdout) if p.returncode in (0, 1) else []
    return p.returncode, findings, p.stderr


def _broken_copy(tmp_path: Path, source: Path, old: str, new: str, count: int = 1) -> Path:
    """source with `old` replaced by `new`, in tmp_path/.github/workflows/ (the replacement must happen)."""
    text = source.read_text()
    assert old in text, f"{old!r} is not in {source.name}: the negative test no longer breaks anything"
    dest = tmp_path / ".github" / "workflows" / source.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text.replace(old, new, count))
    return dest


def _load(text: str) -> dict:
    wf = yaml.safe_load(text)
    if True in wf:                       # YAML 1.1 reads the key `on` as a boolean
        wf["on"] = wf.pop(True)
    return wf


def _steps(wf: dict):
    for job_id, job in (wf.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, job, step


def _uploads(job: dict) -> list[dict]:
    return [s for s in job.get("steps") or [] if str(s.get("uses", "")).startswith("actions/upload-artifact@")]


# ---- the project's own rules, as a list of problems (empty: fine) ---------------------------------

def rule_problems(text: str) -> list[str]:
    """What breaks the rules every workflow here keeps."""
    wf = _load(text)
    out = []
    if "pull_request_target" in (wf["on"] if isinstance(wf["on"], (dict, list)) else [wf["on"]]):
        out.append("pull_request_target trigger (runs untrusted code with a write token)")
    if wf.get("permissions") != {"contents": "read"}:
        out.append(f"workflow permissions are {wf.get('permissions')!r}, not {{contents: read}}")
    if (wf.get("defaults") or {}).get("run", {}).get("shell") != "bash":
        out.append("defaults.run.shell is not bash")
    for job_id, job in wf["jobs"].items():
        if "timeout-minutes" not in job:
            out.append(f"job {job_id}: no timeout-minutes")
        if job.get("runs-on") != "ubuntu-24.04":
            out.append(f"job {job_id}: runs-on {job.get('runs-on')!r}, not ubuntu-24.04")
        image = job.get("container")
        image = image.get("image") if isinstance(image, dict) else image
        if image != "debian:12":
            out.append(f"job {job_id}: container {image!r}, not debian:12")
        perms = job.get("permissions")
        if perms is not None and (perms == "write-all" or any(v == "write" for v in (perms or {}).values())):
            out.append(f"job {job_id}: write permissions {perms!r}")
        for step in job.get("steps") or []:
            if "${{" in str(step.get("run", "")):
                out.append(f"job {job_id}: step {step.get('name', step.get('run'))!r}: an expression in a run "
                           "script (pass it through env)")
            if step.get("with", {}).get("persist-credentials") is not False and \
                    str(step.get("uses", "")).startswith("actions/checkout@"):
                out.append(f"job {job_id}: checkout keeps its token (persist-credentials: false missing)")
        for step in _uploads(job):
            if step.get("if") != "always()":
                out.append(f"job {job_id}: artifact upload {step.get('name')!r} is not `if: always()`")
            if "junit.xml" not in str(step.get("with", {}).get("path", "")):
                out.append(f"job {job_id}: artifact upload {step.get('name')!r} has no junit.xml")
    # `uses:` pins are read from the text, to see the version comment YAML drops.
    for lineno, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(#.*)?$", line)
        if not m or m.group(1).startswith("./"):
            continue
        if not SHA_PIN.match(m.group(1)):
            out.append(f"line {lineno}: {m.group(1)} is not pinned to a full commit SHA")
        elif not (m.group(2) and re.match(r"#\s*v\d+(\.\d+)*", m.group(2))):
            out.append(f"line {lineno}: {m.group(1)} has no `# vX.Y.Z` version comment")
    pins: dict[str, set[str]] = {}
    for _, _, step in _steps(wf):
        if "@" in str(step.get("uses", "")):
            action, sha = step["uses"].split("@", 1)
            pins.setdefault("/".join(action.split("/")[:2]), set()).add(sha)
    out += [f"{repo} pinned at several commits: {sorted(shas)}" for repo, shas in pins.items() if len(shas) > 1]
    return out


def ci_problems(text: str) -> list[str]:
    """What ci.yml must do: the jobs of issue 13, caches keyed by the harness's own key, the demo expecting fixed."""
    wf = _load(text)
    jobs, out = wf["jobs"], []

    def runs(job_id):
        return "\n".join(str(s.get("run", "")) for s in (jobs.get(job_id) or {}).get("steps") or [])

    for job_id in ("workflow-lint", "unit", "kernels", "integration", "ab-demo"):
        if job_id not in jobs:
            out.append(f"no job {job_id}")
    if "node .ci/actionlint/actionlint.cjs .github/workflows/" not in runs("workflow-lint"):
        out.append("no actionlint step")
    if '.venv/bin/pytest -m "not integration"' not in runs("unit"):
        out.append("the unit job does not run the unit tests")
    for job_id in ("unit", "kernels", "integration", "ab-demo"):
        if "bash images/setup-host.sh" not in runs(job_id):
            out.append(f"job {job_id}: no set-up")
    for job_id in ("unit", "integration"):         # the suite needs LAVA, ser2net, 6.12: the set-up's --tests
        if "bash images/setup-host.sh --tests" not in runs(job_id):
            out.append(f"job {job_id}: set-up without --tests")
    keys = runs("kernels")
    for variant in ("reintroduce-2012", "stock"):
        if f"cma-harness build --variant {variant} --print-key" not in keys:
            out.append(f"the kernel job does not key its cache by {variant}'s --print-key")
    caches = [s for _, s in ((j, s) for j, _, s in _steps(wf) if j == "kernels")
              if str(s.get("uses", "")).startswith("actions/cache@")]
    paths = {str(s["with"]["path"]).split("\n")[0].strip(): str(s["with"]["key"]) for s in caches}
    for sub in ("kernel", "ccache"):
        key = paths.get(f"${{{{ env.CMA_HARNESS_CACHE }}}}/{sub}", "")
        if "steps.keys.outputs" not in key:
            out.append(f"no actions/cache of $CMA_HARNESS_CACHE/{sub} keyed by the --print-key step")
    for job_id in ("integration", "ab-demo"):
        job = jobs.get(job_id) or {}
        if job.get("needs") != "kernels" and "kernels" not in (job.get("needs") or []):
            out.append(f"job {job_id} does not need the kernel job")
        restores = [s for s in job.get("steps") or [] if str(s.get("uses", "")).startswith("actions/cache/restore@")]
        if not any("needs.kernels.outputs.kernel-key" in str(s["with"].get("key")) for s in restores):
            out.append(f"job {job_id} does not restore the kernel cache")
        if not _uploads(job):
            out.append(f"job {job_id} uploads no artifact")
    if ".venv/bin/pytest -m integration" not in runs("integration"):
        out.append("the integration job does not run the integration tests")
    demo = runs("ab-demo")
    if not re.search(r"cma-harness ab\b.*--expect fixed\b", demo):
        out.append("the demo does not run `cma-harness ab ... --expect fixed`")
    out_dir = re.search(r"--out (\S+)", demo)
    uploaded = "\n".join(str(s["with"]["path"]) for s in _uploads(jobs.get("ab-demo") or {}))
    if not out_dir or out_dir.group(1) not in uploaded.split():
        out.append("the demo's --out folder is not uploaded")
    return out


def validate_problems(text: str) -> list[str]:
    """What the reusable workflow takes and runs."""
    wf = _load(text)
    out = []
    call = (wf["on"] or {}).get("workflow_call") if isinstance(wf["on"], dict) else None
    if call is None:
        return ["not a reusable workflow (on: workflow_call)"]
    if set(wf["on"]) != {"workflow_call"}:
        out.append(f"triggers other than workflow_call: {sorted(set(wf['on']) - {'workflow_call'})}")
    inputs = call.get("inputs") or {}
    for name, required in (("patch", True), ("baseline", False), ("expect", False), ("scenario", False),
                           ("harness-repository", True), ("harness-ref", True)):
        if name not in inputs:
            out.append(f"no input {name}")
        elif bool(inputs[name].get("required")) != required:
            out.append(f"input {name}: required should be {required}")
    script = "\n".join(str(s.get("run", "")) for _, _, s in _steps(wf))
    if not re.search(r'cma-harness ab .*--baseline "\$BASELINE" --patch "\$\{patches\[@\]\}"', script) or \
            '--expect "$EXPECT"' not in script:
        out.append("does not run `cma-harness ab --baseline B --patch FILE... --expect V`")
    checkouts = [s for _, _, s in _steps(wf) if str(s.get("uses", "")).startswith("actions/checkout@")]
    if not any(s["with"].get("repository") == "${{ inputs.harness-repository }}" and
               s["with"].get("ref") == "${{ inputs.harness-ref }}" for s in checkouts):
        out.append("does not check out cma-harness at inputs.harness-repository/harness-ref")
    if not any("repository" not in s["with"] for s in checkouts):
        out.append("does not check out the calling repository")
    return out


# ---- the real workflows ---------------------------------------------------------------------------

def test_both_workflows_exist():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["ci.yml", "validate-patch.yml"]


def test_workflows_match_githubs_schema():
    p = _check_jsonschema(*sorted(WORKFLOWS.glob("*.yml")))
    assert p.returncode == 0, p.stdout + p.stderr


def test_zizmor_finds_nothing():
    rc, findings, err = _zizmor(WORKFLOWS)
    assert findings == [] and rc == 0, json.dumps(findings, indent=1) + err
    assert "completed .github/workflows/ci.yml" in err.replace(str(ROOT) + "/", "")
    assert "completed .github/workflows/validate-patch.yml" in err.replace(str(ROOT) + "/", "")


def test_actionlint_finds_nothing():
    rc, findings, err = _actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert rc == 0 and findings == [], json.dumps(findings, indent=1) + err


@pytest.mark.parametrize("path", [CI, VALIDATE], ids=lambda p: p.name)
def test_workflows_keep_the_rules(path):
    assert rule_problems(path.read_text()) == []


def test_ci_runs_every_job_of_the_issue():
    assert ci_problems(CI.read_text()) == []


def test_validate_patch_is_a_reusable_workflow_running_ab_with_the_patch():
    assert validate_problems(VALIDATE.read_text()) == []


def test_workflow_cache_paths_are_the_harness_cache_layout(monkeypatch, tmp_path):
    """The folders CI caches are the ones harness/build/cache.py and kernel.py really use."""
    env = _load(CI.read_text())["env"]["CMA_HARNESS_CACHE"]
    assert _load(VALIDATE.read_text())["jobs"]["validate"]["env"]["CMA_HARNESS_CACHE"] == env
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path))
    assert cache.cache_root() == tmp_path
    assert cache.Store("kernel").dir == tmp_path / "kernel"
    assert kernel.build_env(tmp_path / "kernel" / "k.partial" / "tree")["CCACHE_DIR"] == str(tmp_path / "ccache")


# ---- each check notices a broken copy ------------------------------------------------------------

def test_schema_check_rejects_a_broken_workflow(tmp_path):
    broken = _broken_copy(tmp_path, CI, "    timeout-minutes: 10\n", "    timeout-minutes: soon\n")
    p = _check_jsonschema(broken)
    assert p.returncode != 0 and "timeout-minutes" in p.stdout, p.stdout + p.stderr
    broken = _broken_copy(tmp_path, VALIDATE, "        type: string\n        default: fixed\n",
                          "        type: text\n        default: fixed\n")
    p = _check_jsonschema(broken)
    assert p.returncode != 0, p.stdout + p.stderr


def test_zizmor_reports_injection_and_an_unpinned_action(tmp_path):
    broken = _broken_copy(tmp_path, CI, "run: bash images/setup-host.sh", f"run: echo {INJECTION}")
    rc, findings, _ = _zizmor(broken)
    assert rc != 0 and "template-injection" in {f["ident"] for f in findings}
    broken = _broken_copy(tmp_path, VALIDATE, "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
                          "actions/checkout@v4")
    rc, findings, _ = _zizmor(broken)
    assert rc != 0 and "unpinned-uses" in {f["ident"] for f in findings}


def test_zizmor_fails_on_a_workflow_it_cannot_parse(tmp_path):
    broken = _broken_copy(tmp_path, VALIDATE, 'description: "A scenario YAML', "description: A scenario: YAML")
    rc, _, err = _zizmor(broken)
    assert rc != 0, err


def test_actionlint_reports_injection(tmp_path):
    broken = _broken_copy(tmp_path, CI, "run: bash images/setup-host.sh", f"run: echo {INJECTION}")
    rc, findings, err = _actionlint(broken)
    assert rc == 1 and any("github.event.issue.title" in f["message"] for f in findings), err


def test_actionlint_reports_an_unknown_job_output(tmp_path):
    broken = _broken_copy(tmp_path, CI, "key: ${{ needs.kernels.outputs.kernel-key }}",
                          "key: ${{ needs.kernels.outputs.no-such-key }}")
    rc, findings, err = _actionlint(broken)
    assert rc == 1 and any("no-such-key" in f["message"] for f in findings), err


RULE_BREAKS = [
    # (what, old, new, the problem it must give)
    ("a job without a timeout", "    timeout-minutes: 60\n    outputs:", "    outputs:", "job kernels: no timeout-minutes"),
    ("another container", "    container: debian:12\n    timeout-minutes: 30", "    container: ubuntu:24.04\n    timeout-minutes: 30",
     "job unit: container 'ubuntu:24.04', not debian:12"),
    ("another runner", "runs-on: ubuntu-24.04\n    container: debian:12\n    timeout-minutes: 30",
     "runs-on: ubuntu-latest\n    container: debian:12\n    timeout-minutes: 30", "job unit: runs-on 'ubuntu-latest'"),
    ("a tag, not a commit", "actions/cache@5a3ec84eff668545956fd18022155c47e93e2684 # v4.2.3", "actions/cache@v4",
     "actions/cache@v4 is not pinned to a full commit SHA"),
    ("a pin without its version", "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02 # v4.6.2",
     "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02", "has no `# vX.Y.Z` version comment"),
    ("an expression in a script", "run: bash images/setup-host.sh", f"run: echo {INJECTION}", "an expression in a run script"),
    ("pull_request_target", "  pull_request:\n", "  pull_request_target:\n", "pull_request_target trigger"),
    ("write permissions", "permissions:\n  contents: read", "permissions:\n  contents: write", "workflow permissions are"),
    ("another shell", "    shell: bash", "    shell: sh", "defaults.run.shell is not bash"),
    ("an upload only on success", "        if: always()\n        uses: actions/upload-artifact", "        uses: actions/upload-artifact",
     "is not `if: always()`"),
    ("an upload without junit.xml", "          path: runs/pytest-unit/junit.xml", "          path: runs/pytest-unit",
     "job unit: artifact upload 'Upload junit.xml' has no junit.xml"),
    ("a checkout that keeps its token", "        with:\n          persist-credentials: false\n      - name: Install",
     "        with:\n          fetch-depth: 1\n      - name: Install", "persist-credentials: false missing"),
]


@pytest.mark.parametrize("what,old,new,problem", RULE_BREAKS, ids=[b[0] for b in RULE_BREAKS])
def test_rules_notice(tmp_path, what, old, new, problem):
    broken = _broken_copy(tmp_path, CI, old, new)
    found = rule_problems(broken.read_text())
    assert any(problem in p for p in found), found


def test_rules_notice_two_pins_of_one_action(tmp_path):
    other = "actions/cache/restore@0c45773b623bea8c8e75f6c82b208c3cf94ea4f9 # v4.0.2"
    broken = _broken_copy(tmp_path, CI, "actions/cache/restore@5a3ec84eff668545956fd18022155c47e93e2684 # v4.2.3", other)
    assert any("actions/cache pinned at several commits" in p for p in rule_problems(broken.read_text()))


CI_BREAKS = [
    ("the demo without --expect fixed", "--patched stock --expect fixed --out", "--patched stock --out",
     "the demo does not run `cma-harness ab ... --expect fixed`"),
    ("the demo expecting something else", "--expect fixed --out", "--expect inconclusive --out",
     "--expect fixed"),
    ("the demo folder not uploaded", "            runs/ab-demo\n", "",
     "the demo's --out folder is not uploaded"),
    ("a cache not keyed by --print-key", "          key: ${{ steps.keys.outputs.ccache }}",
     "          key: ccache-${{ github.sha }}",
     "no actions/cache of $CMA_HARNESS_CACHE/ccache keyed by the --print-key step"),
    ("one variant's key missing", "patched=$(.venv/bin/cma-harness build --variant stock --print-key)", "patched=stock",
     "does not key its cache by stock's --print-key"),
    ("integration not after the kernels", "    needs: kernels\n    runs-on: ubuntu-24.04\n    container: debian:12\n    timeout-minutes: 90",
     "    runs-on: ubuntu-24.04\n    container: debian:12\n    timeout-minutes: 90", "job integration does not need the kernel job"),
    ("no actionlint", "node .ci/actionlint/actionlint.cjs .github/workflows/*.yml", "true", "no actionlint step"),
]


VALIDATE_BREAKS = [
    ("no --patch", '--patch "${patches[@]}"', "", "does not run `cma-harness ab --baseline B --patch FILE... --expect V`"),
    ("the harness at a fixed ref", "ref: ${{ inputs.harness-ref }}", "ref: main",
     "does not check out cma-harness at inputs.harness-repository/harness-ref"),
    ("an optional patch", "          Patch file(s) in the calling repository, relative to its root, separated by spaces, "
     "applied in order:\n          `git format-patch` output, an mbox of several, or a plain diff.\n        required: true",
     "          Patch file(s).\n        required: false", "input patch: required should be True"),
    ("a push trigger", "on:\n  workflow_call:", "on:\n  push:\n  workflow_call:", "triggers other than workflow_call"),
]


# Each rule of each workflow's checker, broken on a copy: the checker must name the problem.
BREAKS = [("ci", CI, ci_problems, *b) for b in CI_BREAKS] + \
         [("validate", VALIDATE, validate_problems, *b) for b in VALIDATE_BREAKS]


@pytest.mark.parametrize("workflow,path,problems,what,old,new,problem", BREAKS,
                         ids=[f"{b[0]}: {b[3]}" for b in BREAKS])
def test_workflow_checks_notice(tmp_path, workflow, path, problems, what, old, new, problem):
    broken = _broken_copy(tmp_path, path, old, new)
    found = problems(broken.read_text())
    assert any(problem in p for p in found), found


def test_rule_checker_reads_both_forms_of_container():
    wf = copy.deepcopy(_load(CI.read_text()))
    wf["jobs"]["unit"]["container"] = {"image": "debian:12", "options": "--init"}
    wf["jobs"]["kernels"]["container"] = {"image": "debian:13"}
    found = [p for p in rule_problems(yaml.safe_dump(wf)) if "container" in p]
    assert found == ["job kernels: container 'debian:13', not debian:12"]


# ---- the README's caller example ------------------------------------------------------------------

README_SECTION = "## CI: validating your patch from your own repository"


def caller_problems(text: str) -> list[str]:
    """A caller workflow's job that uses validate-patch.yml gives every required input and only declared ones."""
    declared = _load(VALIDATE.read_text())["on"]["workflow_call"]["inputs"]
    calls = [(job_id, job) for job_id, job in _load(text)["jobs"].items()
             if str(job.get("uses", "")).split("@")[0].endswith("/.github/workflows/validate-patch.yml")]
    if not calls:
        return ["no job uses validate-patch.yml"]
    out = []
    for job_id, job in calls:
        given = set(job.get("with") or {})
        out += [f"job {job_id}: unknown input {k}" for k in sorted(given - set(declared))]
        out += [f"job {job_id}: required input {k} missing" for k, v in declared.items()
                if v.get("required") and k not in given]
    return out


def _readme_caller() -> str:
    readme = (ROOT / "README.md").read_text()
    if README_SECTION not in readme:
        pytest.skip(f"README has no section {README_SECTION!r} yet")
    block = re.search(r"```yaml\n(.*?)```", readme.split(README_SECTION, 1)[1], re.S)
    assert block, f"no yaml block in the README section {README_SECTION!r}"
    return block.group(1)


def test_readme_caller_example_is_a_valid_call(tmp_path):
    text = _readme_caller()
    assert caller_problems(text) == []
    example = tmp_path / "caller.yml"
    example.write_text(text)
    p = _check_jsonschema(example)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(text.splitlines()) <= 20


def test_caller_check_notices_a_missing_and_an_unknown_input():
    text = """\
on: pull_request
jobs:
  cma:
    uses: o/cma-harness/.github/workflows/validate-patch.yml@0123456789012345678901234567890123456789
    with:
      harness-repository: o/cma-harness
      harness-ref: 0123456789012345678901234567890123456789
      patches: fix.patch
"""
    assert caller_problems(text) == ["job cma: unknown input patches", "job cma: required input patch missing"]
