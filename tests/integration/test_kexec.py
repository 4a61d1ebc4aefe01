"""kexec on the test bed for real: the QEMU guest boots the stock variant's kernel (QemuSshBoard, as a
run does), then boards/kexec.py switches it over SSH to the reintroduce-2012 variant's kernel inside the
same QEMU process (its zImage, the test-bed initramfs built for it, QEMU's DTB with the test area), checks
that the running kernel is that build (and that the check tells it from the stock build, whose banner is
the same), and that the module loads and runs loops there. The switch is timed against fresh QEMU
boots of the same kernels, side by side."""

import dataclasses
import shlex
import statistics
import time
from pathlib import Path

import pytest

from harness.boards import factory, kexec
from harness.boards.qemu import kernel_cmdline
from harness.boards.ssh import SshClient
from harness.build import build_identity, image, kernel, module, testbed
from harness.core.deadline import Deadline
from harness.guest import snippets
from harness.spec import boards, config
from harness.spec.qemu_hardware import QemuHardware
from harness.store import names
from harness.store.run_folder import RunFolder

pytestmark = pytest.mark.integration
BOARD = boards.load("qemu-ssh-fresh")
SWITCHES = 3            # stock -> variant -> stock -> variant
FRESH = 3               # fresh QEMU boots to SSH, timed the same way


class Built:
    def __init__(self, scn, variant: str):
        self.variant = variant
        self.kb = kernel.build(BOARD.kernel_spec(scn.variant(variant)))
        self.mb = module.build(scn.module, self.kb)
        self.identity = build_identity.of_build(self.kb)


def _fresh_boot(scn, built: Built, folder: Path) -> tuple[float, object]:
    """Seconds from QEMU's start to the guest answering over SSH; the board, still on."""
    board = factory.make_board(BOARD, scn, built.kb, built.mb, RunFolder(folder).create())
    t0 = time.monotonic()
    board.power_on(Deadline(scn.board.boot_timeout_s, "boot"))
    return time.monotonic() - t0, board


def _client(board) -> SshClient:
    c = SshClient(BOARD.ssh, board._ssh_port)
    c.connect_until(Deadline(60))
    return c


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    scn = config.load(None)
    stock, variant = Built(scn, "stock"), Built(scn, "reintroduce-2012")
    assert stock.identity.banner == variant.identity.banner, "reproducible builds: one banner for both variants"
    assert stock.identity.build_id != variant.identity.build_id
    root = tmp_path_factory.mktemp("kexec")
    fresh = []
    # Fresh boots for the side-by-side (the variant twice), then the stock boot the switches start from.
    for i in range(FRESH - 1):
        seconds, b = _fresh_boot(scn, variant, root / f"fresh-{i}")
        fresh.append(("reintroduce-2012", seconds))
        b.power_off()
    seconds, board = _fresh_boot(scn, stock, root / "bed")
    fresh.append(("stock", seconds))
    # What each switch passes: the kernel's zImage, its own test-bed initramfs, QEMU's DTB with the area.
    machine = QemuHardware.for_board(scn.board)
    dtb = image.make_dtb(machine, scn.area, root / "board.dtb")
    keys = testbed.ensure_keys()
    cmdline = kernel_cmdline(machine)
    boot = {}
    for built in (stock, variant):
        folder = root / f"images-{built.variant}"
        folder.mkdir()
        initramfs = image.make_initramfs(built.kb, built.mb.ko, folder / "initramfs.cpio",
                                         testbed.initramfs_entries(keys, folder))
        boot[built.variant] = (kexec.BootFiles(built.kb.zimage, dtb, initramfs, cmdline), built)
    ssh = _client(board)
    try:
        yield scn, board, ssh, boot, fresh, root
    finally:
        ssh.close()
        board.power_off()


@pytest.fixture(scope="module")
def switches(bed):
    scn, board, ssh, boot, fresh, root = bed
    before = kexec.running_kernel(ssh, Deadline(30))
    assert kexec.verify(before.identity, boot["stock"][1].identity, ssh.where) == ["/proc/version", "build ID"]
    done = []
    for i in range(SWITCHES):
        target = "reintroduce-2012" if i % 2 == 0 else "stock"
        files, built = boot[target]
        r = kexec.kexec_into(ssh, files, built.identity, Deadline(400, "kexec"), kexec.KexecOptions.of(BOARD),
                             progress=print)
        done.append((target, r))
        assert board._qemu.isalive(), "the switch must happen inside the same QEMU process"
    report = (f"\nkexec switch (kexec -e to SSH back): {[round(r.seconds['switch_s'], 1) for _, r in done]} s, "
              f"median {statistics.median(r.seconds['switch_s'] for _, r in done):.1f} s; "
              f"copy {[r.seconds['copy_s'] for _, r in done]} s, load {[r.seconds['load_s'] for _, r in done]} s\n"
              f"fresh QEMU boot (start to SSH): " + ", ".join(f"{k} {v:.1f} s" for k, v in fresh) + "; median "
              f"{statistics.median(v for _, v in fresh):.1f} s\n")
    print(report)
    (root / "timings.txt").write_text(report)
    return done


def test_each_switch_runs_the_build_it_was_given_in_the_same_qemu(bed, switches):
    scn, board, ssh, boot, fresh, _ = bed
    for target, r in switches:
        assert r.kernel == boot[target][1].identity and r.checked_by == ["/proc/version", "build ID"]
        assert r.previous != r.kernel
        assert r.seconds["switch_s"] < scn.board.boot_timeout_s


def test_the_check_tells_the_variant_from_the_stock_kernel_with_the_same_banner(bed, switches):
    _, board, ssh, boot, _, _ = bed
    # After an odd number of switches the variant runs.
    now = kexec.running_kernel(ssh, Deadline(30)).identity
    assert now == boot["reintroduce-2012"][1].identity
    (bed[5] / "identity.txt").write_bytes(ssh.exec(kexec.IDENTITY_SCRIPT, Deadline(30)).stdout)
    with pytest.raises(kexec.KernelMismatch, match="another variant of the same release"):
        kexec.verify(now, boot["stock"][1].identity, ssh.where)


def test_the_module_loads_on_the_new_kernel_and_runs_loops_in_the_area(bed, switches):
    scn, board, ssh, boot, _, _ = bed
    r = ssh.exec("ls /sys/kernel/mm/cma/; uname -r", Deadline(30))
    assert b"cma-harness-area" in r.stdout and b"6.1.192" in r.stdout
    argv = snippets.insmod(scn.module, 3, 0, image.GUEST_MODULE_PATH)
    assert ssh.exec(shlex.join(argv), Deadline(60)).status == 0
    deadline = Deadline(180, "3 loops")
    while not deadline.expired:
        log = ssh.exec("dmesg | grep cma_harness:", Deadline(30)).stdout.decode(errors="replace")
        if "cma_harness: done loops=3" in log:
            break
        time.sleep(2)
    assert "cma_harness: done loops=3" in log, log[-2000:]
    assert "cma_harness: area name=cma-harness-area" in log
    assert sum("cma_harness: loop=" in l for l in log.splitlines()) == 3
    ssh.exec("rmmod cma_harness", Deadline(60))


def test_the_serial_console_saw_both_kernels_start(bed, switches):
    _, board, _, _, _, root = bed
    console = RunFolder(root / "bed").file(names.CONSOLE).read_text(errors="replace")
    # (The first boot's opening lines are gone before ser2net has the pty open.)
    assert console.count("kexec_core: Starting new kernel") == SWITCHES
    assert console.count("Booting Linux on physical CPU") >= SWITCHES


def test_a_wrong_file_or_a_missing_binary_is_named_and_the_board_keeps_its_kernel(bed, switches):
    _, board, ssh, boot, _, root = bed
    files, built = boot["stock"]
    junk = root / "not-a-zimage"
    junk.write_bytes(b"\0" * 4096)
    # kexec-tools would take it as a zImage and jump into it: refused on the host, nothing copied.
    with pytest.raises(kexec.KexecError, match="is not an ARM zImage"):
        kexec.kexec_into(ssh, kexec.BootFiles(junk, files.dtb, None, files.cmdline), built.identity, Deadline(120))
    with pytest.raises(kexec.KexecError, match="no kexec binary"):
        kexec.kexec_into(ssh, files, built.identity, Deadline(120), kexec.KexecOptions(kexec="kexec-not-here"))
    assert kexec.running_kernel(ssh, Deadline(30)).identity == boot["reintroduce-2012"][1].identity


def test_a_running_kernel_without_kexec_is_named(bed, tmp_path):
    """The test bed's kernel before kexec.config: `kexec -l` gets ENOSYS, and the error says what to do."""
    scn, _, _, boot, _, _ = bed
    spec = config.load(None).variant("stock")
    kb = kernel.build(dataclasses.replace(spec, fragments=(*spec.fragments, "net")))
    board = factory.make_board(BOARD, scn, kb, module.build(scn.module, kb), RunFolder(tmp_path / "nokexec").create())
    board.power_on(Deadline(scn.board.boot_timeout_s, "boot"))
    try:
        ssh = _client(board)
        files, built = boot["reintroduce-2012"]
        with pytest.raises(kexec.KexecError) as e:
            kexec.kexec_into(ssh, files, built.identity, Deadline(120))
        assert "CONFIG_KEXEC" in str(e.value) and "| kexec_load failed: Function not implemented" in str(e.value), str(e.value)
        assert kexec.running_kernel(ssh, Deadline(30)).identity == build_identity.of_build(kb)
        print(f"\n{e.value}")
        ssh.close()
    finally:
        board.power_off()
