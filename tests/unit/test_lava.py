"""LAVA: the job and device file `cma-harness lava-job` writes (the harness's QEMU arguments, the monitor
pattern over recorded real consoles), the guest's autorun script, and `cma-harness import` of recorded real
lava-run output (tests/fixtures/lava-*/, see their SOURCE.md)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pexpect
import pytest
import yaml

from harness import cli
from harness.boards.qemu import QemuBoardConfig, kernel_cmdline, qemu_argv
from harness.build.image import GuestImages
from harness.core.errors import InputError
from harness.guest import autorun
from harness.judging import crosscheck
from harness.orchestrate import lava_import
from harness.parsers import kmsg, lava_log
from harness.present import lava_job
from harness.spec import config
from harness.spec.qemu_hardware import QemuHardware
from harness.store import names
from harness.store.lava_folder import LavaJobFolder, find_job_folder
from tests.conftest import FIXTURES, fixture_lines

MACHINE = QemuHardware(cpus=2, memory_mib=128)
TRACE = Path("/jobs/j1/trace.stream")
FAILING = FIXTURES / "lava-reintroduce-2012-20loops"     # 20 loops, 2 failed (one L, one P)
QEMU_FAILS = FIXTURES / "lava-stock-qemu-fails"           # QEMU could not start: no console
HANG = FIXTURES / "lava-stock-hang"                       # the module's injected hang after loop 0
CONSOLES = sorted(p.name for p in FIXTURES.glob("console-*.log"))


def _groups(argv):
    return [tuple(g) for g in lava_job._groups(argv[1:])]


# -- the QEMU command line --------------------------------------------------------------------------

def test_the_lava_boot_runs_the_harness_qemu_command_line_without_its_command_channel():
    split = lava_job.split_qemu(MACHINE, TRACE, "/usr/bin/qemu-system-arm")
    files = {label: f"/dl/{label}" for label in lava_job.IMAGE_LABELS}
    harness = qemu_argv(QemuBoardConfig(MACHINE, Path(files["kernel"]),
                                        GuestImages(Path(files["ramdisk"]), Path(files["disk"]), Path(files["dtb"])),
                                        Path(".")), "/usr/bin/qemu-system-arm", Path("/nonexistent/cmd.sock"), TRACE)
    ours, theirs = _groups(split.argv(files)), _groups(harness)
    channel = [g for g in theirs if any("cmd" in a for a in g)]
    assert len(channel) == 2 and split.dropped == tuple(" ".join(g) for g in channel)
    assert sorted(ours) == sorted(g for g in theirs if g not in channel)
    # QEMU creates devices in command-line order, and the guest numbers them by slot: same order, same
    # /dev/vda and /dev/vport0p2.
    assert [g for g in ours if g[0] == "-device"] == [g for g in theirs if g[0] == "-device" and g not in channel]
    assert ("-cpu", "cortex-a15") in ours and ("-m", "128M") in ours and ("-smp", "2") in ours
    assert not any(g[0] in ("-net", "-netdev", "-nic") for g in ours)
    assert ("-append", kernel_cmdline(MACHINE)) in ours


def test_every_image_is_an_image_arg_with_its_placeholder():
    split = lava_job.split_qemu(MACHINE, TRACE)
    assert split.image_args["kernel"].startswith("-kernel {kernel} -append ")
    assert split.image_args["ramdisk"] == "-initrd {ramdisk}" and split.image_args["dtb"] == "-dtb {dtb}"
    assert split.image_args["disk"] == "-drive file={disk},if=none,format=raw,id=disk0"
    # A farm's stock qemu template sets cpu, memory and machine from the context; the trace file would be on
    # its worker, so the farm's options leave it out.
    farm = lava_job.farm_extra_options(split)
    assert "-device virtio-blk-device,drive=disk0" in farm and not any("trace" in o for o in farm)
    assert not any(o.split()[0] in ("-M", "-cpu", "-m") for o in farm)


def _render_qemu_job():
    split = lava_job.split_qemu(MACHINE, TRACE, "/usr/bin/qemu-system-arm")
    images = {label: lava_job.Image(f"file:///jobs/j1/images/{label}", "0" * 64, split.image_args[label])
              for label in lava_job.IMAGE_LABELS}
    times = lava_job.JobTimes.for_run(10, boot_timeout_s=180, hang_timeout_s=120)
    job = lava_job.render_qemu_job(job_name="t", machine=MACHINE, split=split, images=images, times=times,
                                   metadata={"cma-harness.variant": "stock"}, run_command="lava-run ...",
                                   output_dir="/jobs/j1/output", device_file="/jobs/j1/device.yaml", written_by="test")
    device = lava_job.render_qemu_device(split, boot_timeout_s=times.boot_s, trace_stream=TRACE, written_by="test")
    return split, yaml.safe_load(job), yaml.safe_load(device), job, device


def test_job_and_device_files_say_what_lava_run_needs():
    split, job, device, _, _ = _render_qemu_job()
    deploy, boot, test = (a[k] for a, k in zip(job["actions"], ("deploy", "boot", "test")))
    assert deploy["to"] == "tmpfs" and list(deploy["images"]) == list(lava_job.IMAGE_LABELS)
    assert all(i["url"].startswith("file:///") and i["image_arg"] == split.image_args[label]
               for label, i in deploy["images"].items())
    assert boot == {"method": "qemu", "media": "tmpfs", "timeout": {"seconds": 120}}
    [monitor] = test["monitors"]
    assert monitor["pattern"] == lava_job.MONITOR_PATTERN and monitor["end"] == autorun.END
    assert job["context"]["cpu"] == "cortex-a15" and job["context"]["memory"] == 128
    qemu = device["actions"]["boot"]["methods"]["qemu"]["parameters"]
    assert qemu["command"] == "/usr/bin/qemu-system-arm" and qemu["options"] == list(split.options)
    assert device["constants"]["spawn_maxread"] == "2000"


LAVA_PYTHON = "/usr/bin/python3"


def _lava_schema_errors(job_text: str) -> str | None:
    code = ("import sys, yaml; from lava_common.schemas import validate; "
            "validate(yaml.safe_load(sys.stdin.read()), strict=True)")
    res = subprocess.run([LAVA_PYTHON, "-c", code], input=job_text, capture_output=True, text=True)
    return None if res.returncode == 0 else res.stderr.strip().splitlines()[-1]


def _have_lava_common() -> bool:
    return Path(LAVA_PYTHON).exists() and subprocess.run(
        [LAVA_PYTHON, "-c", "import lava_common.schemas"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _have_lava_common(), reason="lava-dispatcher (lava_common) is not installed")
def test_both_jobs_pass_lavas_own_job_schema():
    _, _, _, qemu_job, _ = _render_qemu_job()
    assert _lava_schema_errors(qemu_job) is None
    images = {label: lava_job.Image(f"file:///jobs/j1/images/{label}", "0" * 64) for label in ("kernel", "ramdisk", "dtb")}
    uboot = lava_job.render_uboot_job(job_name="t", device_type="beaglebone-black", images=images,
                                      times=lava_job.JobTimes.for_run(10, 180, 120), metadata={}, kernel_args="rdinit=/init",
                                      written_by="test", board="beaglebone-black", disk_device="/dev/mmcblk0p3")
    assert _lava_schema_errors(uboot) is None
    actions = yaml.safe_load(uboot)["actions"]
    assert actions[0]["deploy"]["to"] == "tftp" and actions[0]["deploy"]["kernel"]["type"] == "zimage"
    assert actions[1]["boot"] == {"method": "u-boot", "commands": "ramdisk", "timeout": {"seconds": 120}}
    assert _lava_schema_errors(uboot.replace("method: u-boot", "method: u-boot-typo")) is not None


# -- the monitor pattern over real consoles ---------------------------------------------------------

@pytest.mark.parametrize("name", CONSOLES)
def test_the_monitor_pattern_makes_one_case_per_record_the_harness_parses(name):
    lines = fixture_lines(name)
    text = "".join(line + "\r\n" for line in lines)
    cases = [lava_job.case_of(m) for m in re.finditer(lava_job.MONITOR_PATTERN, text)]
    events = [e for e in kmsg.parse_lines(lines) if isinstance(e, (kmsg.LoopRecord, kmsg.ModuleDone))]
    want = [{"case": f"loop_{e.loop}", "result": "fail" if e.failed else "pass", "measurement": str(e.failed)}
            if isinstance(e, kmsg.LoopRecord) else
            {"case": "failed_loops", "result": "fail" if e.failed_loops else "pass", "measurement": str(e.failed_loops)}
            for e in events]
    assert cases == want


def test_lavas_read_window_never_lets_a_record_go_unmatched():
    """The monitor's own loop (lava_dispatcher/actions/test/monitor.py) over the recorded console, through
    pexpect as LAVA sets it up: reads of spawn_maxread (2000) bytes, a 4000-byte search window."""
    log = lava_log.parse(fixture_lines(f"{FAILING.name}/output/{names.LAVA_OUTPUT_LOG}"))
    console = "".join(line + "\r\n" for line in log.console)
    child = pexpect.spawn("printf", ["%s", console], maxread=2000, searchwindowsize=4000, encoding="utf-8",
                          timeout=10)
    found = []
    while (i := child.expect([pexpect.EOF, pexpect.TIMEOUT, autorun.END, lava_job.MONITOR_PATTERN])) == 3:
        found.append(lava_job.case_of(child.match)["case"])
    assert i == 2 and found == [f"loop_{n}" for n in range(20)] + ["failed_loops"]


# -- the guest's autorun ----------------------------------------------------------------------------

def test_autorun_runs_the_harness_steps_in_the_harness_order_and_is_valid_sh():
    scn = config.load(None)
    script = autorun.script(scn, loops=7)
    order = ["mount -t ext4 /dev/vda", "workload.sh start", "counters before", "/sys/kernel/tracing/tracing_on",
             "insmod /lib/modules/cma_harness.ko loops=7", "cma_harness: done loops=", "counters after",
             "cma-harness: end of trace", "workload.sh stop", "rmmod cma_harness", "end status=ok"]
    at = [script.index(s) for s in order]
    assert at == sorted(at)
    sh = shutil.which("sh")
    assert subprocess.run([sh, "-n"], input=script, text=True).returncode == 0
    off = autorun.script(scn, loops=7, trace_sink=None)
    assert "tracing_on" not in off and "trace off" in off


def test_autorun_lines_give_the_counters_and_trace_stats():
    log = lava_log.parse(fixture_lines(f"{FAILING.name}/output/{names.LAVA_OUTPUT_LOG}"))
    r = autorun.parse(log.console)
    assert r.ended and r.failed is None and r.workload.startswith("workload running: 2 of 2")
    area = "cma/cma-harness-area/alloc_pages_success"
    assert r.counters_before[area] == 0 and r.counters_after[area] > 20 * 56 * 256 - 256 * 8
    assert "overrun" in r.trace_stats and "overrun: 0" in r.trace_stats_text()


# -- LAVA's log ----------------------------------------------------------------------------------

def test_a_real_lava_run_log_parses_into_console_cases_and_the_job_result():
    log = lava_log.parse(fixture_lines(f"{FAILING.name}/output/{names.LAVA_OUTPUT_LOG}"))
    assert log.unreadable == 0 and log.job["result"] == "pass"
    loops = [c for c in log.test_cases if c["case"].startswith("loop_")]
    assert len(loops) == 20 and sum(c["result"] == "fail" for c in loops) == 2
    assert [c for c in log.test_cases if c["case"] == "failed_loops"][0]["measurement"] == "2"
    assert "-cpu cortex-a15" in log.boot_command and "-net" not in log.boot_command
    records = [e for e in kmsg.parse_lines(log.console) if isinstance(e, kmsg.LoopRecord)]
    assert len(records) == 20 and sum(bool(r.failed) for r in records) == 2


def test_log_entries_as_a_server_stores_them_and_escaped_quotes():
    # ShellLogger wrote `say \"hi\"`; the YAML dump escaped both the backslash and the quote.
    e = lava_log.parse_entry(r'- {"dt": "x", "lvl": "target", "msg": "say \\\"hi\\\""}')
    assert e.lvl == "target" and lava_log.console_line(e.msg) == 'say "hi"'
    assert lava_log.parse_entry("$ lava-run --job-id 1") is None
    assert lava_log.parse_entry('{"dt": "x", "lvl": "targ') is None     # a torn last line


# -- import -------------------------------------------------------------------------------------------

def _import(fixture: Path, out: Path) -> dict:
    output = lava_import.read_output(fixture / names.LAVA_OUTPUT)
    return lava_import.import_output(output, out, find_job_folder(output.path, None))


def test_import_of_a_real_lava_run_makes_a_run_folder_the_checks_pass(tmp_path):
    s = _import(FAILING, tmp_path / "run")
    assert s["state"] == "reproduced" and s["loops_done"] == 20 and s["failed_loops"] == 2
    assert s["causes"] == {"L": 1, "P": 1}
    assert s["lava"]["agree"] and s["lava"]["loop_cases"] == 20 and s["lava"]["failed_loop_cases"] == 2
    assert s["accounting"]["ok"] is True                    # records against the autorun's sysfs counters
    assert "no trace stream" in s["trace_error"]            # the fixture keeps the log, not the 1.5 MB trace
    results = [r.as_dict() for r in crosscheck.check_folder(tmp_path / "run")]
    assert [r["status"] for r in results if r["name"] != "busy_pages"] == ["pass"] * 3
    assert all(r["status"] != "fail" for r in results)
    assert len(list((tmp_path / "run" / names.LAVA_CASES).read_text().splitlines())) == 21


def test_import_on_the_command_line_then_check(tmp_path, capsys):
    assert cli.main(["import", str(FAILING / names.LAVA_OUTPUT), "--out", str(tmp_path / "r")]) == cli.EXIT_FOUND
    out = capsys.readouterr().out
    assert "state: reproduced; loops: 20/20; failed loops: 2" in out and "(agree)" in out
    assert cli.main(["check", str(tmp_path / "r")]) == cli.EXIT_OK


def test_a_monitor_timeout_after_the_module_started_is_a_hang(tmp_path):
    s = _import(HANG, tmp_path / "run")
    assert s["state"] == "hang" and s["loops_done"] == 1 and "LAVA monitor" in s["error"]


@pytest.mark.parametrize("where, expect", [
    ("missing", "no such folder"),
    ("empty", f"no {names.LAVA_OUTPUT_LOG} in it"),
    ("not-a-log", "not a LAVA job log"),
])
def test_a_folder_that_is_not_lava_output_says_what_is_missing(tmp_path, where, expect):
    path = tmp_path / where
    if where != "missing":
        path.mkdir()
    if where == "not-a-log":
        (path / names.LAVA_OUTPUT_LOG).write_text("hello\n[    0.000000] Booting Linux\n")
    with pytest.raises(InputError, match=re.escape(expect)):
        lava_import.read_output(path)


def test_a_log_with_no_module_records_names_lavas_error_and_the_last_console_line(tmp_path):
    with pytest.raises(InputError) as e:
        _import(QEMU_FAILS, tmp_path / "run")
    text = str(e.value)
    assert "no `cma_harness: start` line" in text and "Infrastructure: Connection closed" in text
    assert "cannot set up guest memory" in text and not (tmp_path / "run").exists()


def test_output_without_its_job_folder_asks_for_job(tmp_path):
    out = tmp_path / "output"
    shutil.copytree(FAILING / names.LAVA_OUTPUT, out)
    with pytest.raises(InputError, match="--job FOLDER"):
        find_job_folder(out, None)
    with pytest.raises(InputError, match=names.LAVA_MANIFEST):
        find_job_folder(out, tmp_path)
    assert find_job_folder(out, FAILING) == LavaJobFolder(FAILING)


def test_import_never_overwrites_a_run(tmp_path):
    _import(FAILING, tmp_path / "run")
    with pytest.raises(InputError, match="already holds a run"):
        _import(FAILING, tmp_path / "run")


def test_the_fixture_manifest_is_what_lava_job_writes():
    manifest = json.loads((FAILING / names.LAVA_MANIFEST).read_text())
    assert {"scenario", "variant", "loops", "kind", "kernel_key", "module_key", "qemu_argv", "trace"} <= set(manifest)


# -- ab --executor ------------------------------------------------------------------------------------

def test_a_campaign_judges_boots_another_executor_ran_by_the_imported_run_folders(tmp_path):
    """Each boot 'executed by LAVA' is the recorded real lava-run output imported into the boot's run folder;
    the campaign reads those folders like its own: its verdict comes from their loops.jsonl."""
    from harness.orchestrate import campaign

    boots = []

    def imported(scn, variant, folder, *, loops, progress, board, **_):
        assert loops == 20
        boots.append(variant)
        return _import(FAILING, folder)

    plan = campaign.Plan("reintroduce-2012", "stock", loops_per_run=20, budget=40, alpha=0.05)
    result = campaign.run_ab(config.load(None), plan, tmp_path / "ab", executor=imported)
    assert boots == ["reintroduce-2012", "stock", "reintroduce-2012", "stock"]
    assert result["variants"]["baseline"]["loops"] == 40 and result["variants"]["patched"]["loops"] == 40
    assert result["variants"]["baseline"]["failed_loops"]["events"] == 4    # 2 per imported boot
    assert result["variants"]["patched"]["failed_loops"]["events"] == 4     # the same fixture: both arms alike
    assert result["verdict"] == "inconclusive"


def test_ab_takes_the_executor_option():
    from harness.orchestrate import campaign, lava_executor
    from harness import cli_lava

    args = cli.build_parser().parse_args(["ab", "--executor", "lava-run"])
    assert cli_lava.executor(args) is lava_executor.lava_run_executor
    assert cli_lava.executor(cli.build_parser().parse_args(["ab"])) is campaign.harness_executor
