"""`board check`'s pure parts: the probe's output parsed (a real one, from the QEMU board), the findings
judged for a scenario, and the default CMA pool read from debugfs or the boot log."""

import dataclasses

import pytest

from harness.core.errors import InfraError
from harness.guest import pool, probe
from harness.judging import readiness
from harness.spec.boards import BoardArea, BoardFile
from harness.spec.config import Scenario
from tests.conftest import FIXTURES

REAL = (FIXTURES / "board-probe-qemu.txt").read_text()
VERMAGIC = "6.1.192 SMP mod_unload ARMv7 p2v8 "


def _findings(facts, board=BoardFile(), scn=Scenario(), vermagic=VERMAGIC):
    return {f.item: f for f in readiness.judge(facts, scn, board, vermagic)}


def test_the_qemu_board_as_it_answered_is_ready():
    facts = probe.parse(REAL)
    assert facts["release"] == "6.1.192" and facts["cpus"] == "2" and facts["CmaTotal"] == "57344"
    assert facts["cma_area"] == ["cma-harness-area"] and facts["config"] is None and not facts["noise"]
    assert facts["symbol"] == {s: True for s in ("__buffer_migrate_folio", "buffer_migrate_folio_norefs",
                                                 "filemap_release_folio", "folio_migrate_mapping", "try_to_free_buffers")}
    found = readiness.judge(facts, Scenario(), BoardFile(), VERMAGIC)
    assert readiness.ready(found), [f for f in found if f.status == readiness.MISSING]
    assert {f.item for f in found} >= {"kernel", "CPUs", "CMA", "dedicated test area", "tracefs", "kprobes",
                                       "probed functions", "module loading", "module vermagic", "disk /dev/vda"}


def _without(text: str, *prefixes: str, add: str = "") -> dict:
    return probe.parse("\n".join(l for l in text.splitlines() if not l.startswith(prefixes)) + "\n" + add)


@pytest.mark.parametrize("lines, add, item, fix", [
    (("dt_test_device", "dt_reserved"), "dt_test_device=no", "dedicated test area", "is this the harness's kernel"),
    (("tracefs",), "tracefs=no", "tracefs", "CONFIG_FTRACE"),
    (("kprobe_events",), "kprobe_events=no", "kprobes", "CONFIG_KPROBE_EVENTS"),
    (("symbol=try_to_free_buffers",), "symbol=try_to_free_buffers no", "probed functions", "need porting"),
    (("modules_disabled",), "modules_disabled=1", "module loading", "modules_disabled=0"),
    (("disk_mib",), "disk_mib=none", "disk /dev/vda", "spare block device"),
    (("disk_mib",), "disk_mib=100", "disk /dev/vda", "workload.disk_mib"),
    (("CmaTotal",), "CmaTotal=", "CMA", "CONFIG_DMA_CMA"),
])
def test_each_missing_feature_is_named_with_its_fix(lines, add, item, fix):
    found = _findings(_without(REAL, *lines, add=add))
    assert found[item].status == readiness.MISSING and fix in found[item].fix, found[item]
    missing = [f.item for f in found.values() if f.status == readiness.MISSING]
    assert missing == [item], "one missing feature must not hide or invent another"


def test_the_loop_threads_cpu_must_exist():
    scn = Scenario(module=dataclasses.replace(Scenario().module, cpu=1))
    one = _findings(probe.parse(REAL.replace("cpus=2", "cpus=1")), scn=scn)["CPUs"]
    assert one.status == readiness.MISSING and "below 1" in one.fix
    assert _findings(probe.parse(REAL), scn=scn)["CPUs"].status == readiness.OK


def test_a_module_for_another_kernel_is_missing_before_anything_is_loaded():
    found = _findings(probe.parse(REAL), vermagic="6.12.57 SMP mod_unload ARMv7 p2v8 ")
    assert found["module vermagic"].status == readiness.MISSING
    assert "6.12.57" in found["module vermagic"].found and "6.1.192" in found["module vermagic"].found


def test_a_board_on_its_default_pool_needs_room_for_the_loop_there():
    board = BoardFile(area=BoardArea(method="default"))
    found = _findings(probe.parse(REAL.replace("CmaTotal=57344", "CmaTotal=16384")), board=board)
    assert found["default CMA pool"].status == readiness.MISSING and "cma=72M" in found["default CMA pool"].fix
    assert "dedicated test area" not in found
    assert _findings(probe.parse(REAL.replace("CmaTotal=57344", "CmaTotal=65536")), board=board)[
        "default CMA pool"].status == readiness.OK


def test_an_ssh_board_needs_dev_kmsg_and_a_writable_work_folder():
    from harness.spec.boards import SshSpec
    board = dataclasses.replace(BoardFile(), kind="ssh", ssh=SshSpec(host="10.0.0.2"))
    facts = probe.parse(REAL.replace("kmsg=yes", "kmsg=no"))
    found = _findings(facts, board=board)
    assert found["/dev/kmsg"].status == readiness.MISSING
    assert found["work folder /tmp/cma-harness"].status == readiness.MISSING   # the fixture's is not writable
    facts = probe.parse(REAL.replace("workdir_free_mib=none", "workdir_free_mib=900"))
    assert _findings(facts, board=board)["work folder /tmp/cma-harness"].found == "writable, 900 MiB free"


def test_a_shell_complaint_in_the_output_is_kept_as_noise_not_a_fact():
    facts = probe.parse(REAL + "\nsh: zcat: not found\n")
    assert facts["noise"] == ["sh: zcat: not found"]


# The default CMA pool ----------------------------------------------------------------------------

# From the QEMU guest booted with cma=60M (images/boards/qemu-cma-pool.yaml): debugfs, then the boot log.
POOL_OUTPUT = """debugfs reserved 279552 15360
[    0.000000] cma: Reserved 60 MiB at 0x44400000
"""


def test_the_default_pool_is_read_from_debugfs_first():
    pools = pool.parse(POOL_OUTPUT)
    assert pools == [pool.Pool("reserved", 0x44400000, 60 << 20, "debugfs")]
    assert pool.insmod_params(pool.choose(pools, None)) == ["pool_name=reserved", "pool_base=0x44400000",
                                                           "pool_size=0x3c00000"]


def test_without_debugfs_the_boot_log_places_the_pool():
    pools = pool.parse("[    0.000000] cma: Reserved 60 MiB at 0x44400000\n")
    assert pool.choose(pools, None) == pool.Pool("reserved", 0x44400000, 60 << 20, "boot log")
    dt = pool.parse("[    0.000000] Reserved memory: created CMA memory pool at 0x5c000000, size 64 MiB\n")
    assert pool.choose(dt, None).base == 0x5c000000


def test_no_pool_or_an_ambiguous_one_is_an_error_that_says_what_to_set():
    with pytest.raises(InfraError, match=r"found: none\); boot the board with cma=64M"):
        pool.choose(pool.parse(""), None)
    two = pool.parse("debugfs linux,cma 100 1024\ndebugfs camera 5000 2048\n")
    with pytest.raises(InfraError, match=r"set `area.pool_name`"):
        pool.choose(two, None)
    assert pool.choose(two, "camera").base == 5000 * 4096
    only_dedicated = pool.parse("debugfs cma-harness-area 100 14336\n")
    with pytest.raises(InfraError, match="no default CMA pool"):
        pool.choose(only_dedicated, None)
