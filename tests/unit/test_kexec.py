"""The kexec deploy step against a scripted SSH client: the files copied, `kexec -l` and `kexec -e`, the
reconnect to a new boot, the running kernel checked against the build; and every way it fails (no
kexec binary, no CONFIG_KEXEC, a `kexec -e` that returns, a board that never answers, the wrong kernel)
is a named error, never a hang."""

import struct

import pytest

from harness.boards import kexec
from harness.boards.ssh import ExecResult, SshUnreachable
from harness.core.deadline import Deadline
from harness.parsers import kernel_identity as ki
from harness.spec import boards

BANNER = "Linux version 6.1.192 (cma-harness@cma-harness) (gcc) #1 SMP 1970-01-01"
STOCK = ki.KernelIdentity(BANNER, "aa" * 20)
VARIANT = ki.KernelIdentity(BANNER, "bb" * 20)


def identity_output(ident: ki.KernelIdentity, boot_id: str, uptime: float = 30.0) -> bytes:
    blob = struct.pack("<III", 4, 20, 3) + b"GNU\0" + bytes.fromhex(ident.build_id)
    return (f"{ident.banner}\n{ki.NOTES_TAG}{blob.hex()}\n{ki.BOOT_ID_TAG}{boot_id}\n"
            f"{ki.UPTIME_TAG}{uptime}\n").encode()


class FakeSsh:
    """Answers commands from the kernel it 'runs'; `kexec -e` switches it to the loaded one."""

    where = "root@board:22"

    def __init__(self, *, has_kexec=True, load=(0, b""), execute="switch", comes_back=True, boots=None,
                 old_answers_first=0):
        self.kernel, self.boot = STOCK, "boot-0"
        self.has_kexec, self.load, self.execute, self.comes_back = has_kexec, load, execute, comes_back
        self.boots = boots or VARIANT              # what the board really boots after kexec -e
        self.old_answers_first = old_answers_first
        self.connected, self.commands, self.files, self.connects, self.log = True, [], {}, 0, ""

    def exec(self, command, deadline, stdin=None):
        assert self.connected, f"{command!r} on a closed connection"
        self.commands.append(command)
        if command.startswith("command -v"):
            return ExecResult(command, 0 if self.has_kexec else 1, b"/usr/sbin/kexec\n" if self.has_kexec else b"", b"")
        if command.startswith("cat /proc/version"):
            return ExecResult(command, 0, identity_output(self.kernel, self.boot), b"")
        if " -l " in command:
            return ExecResult(command, self.load[0], b"", self.load[1])
        if " -e >" in command:                    # started detached: the command returns at once
            if self.execute == "returns":
                self.log = f"Nothing has been loaded!\n{kexec.RETURNED_TAG}1\n"
            elif self.old_answers_first == 0:
                self.kernel, self.boot = self.boots, "boot-1"
            return ExecResult(command, 0, b"", b"")
        if command.startswith("cat ") and command.endswith("kexec-e.log 2>/dev/null"):
            return ExecResult(command, 0, self.log.encode(), b"")
        return ExecResult(command, 0, b"", b"")

    def put(self, data, remote, deadline, mode="0644"):
        self.files[remote] = data

    def close(self, because=None):
        self.connected = False

    def connect_until(self, deadline, retry_s=1.0):
        self.connects += 1
        if not self.comes_back:
            raise SshUnreachable("cannot reach root@board:22: Connection refused; gave up after 3 s")
        if self.old_answers_first:
            self.old_answers_first -= 1
            if self.old_answers_first == 0:
                self.kernel, self.boot = self.boots, "boot-1"
        self.connected = True


ZIMAGE = b"\0" * 0x24 + kexec.ZIMAGE_MAGIC.to_bytes(4, "little") + b"rest of the zImage"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "zImage").write_bytes(ZIMAGE)
    (tmp_path / "board.dtb").write_bytes(kexec.DTB_MAGIC + b"tree")
    (tmp_path / "initramfs.cpio").write_bytes(b"070701")
    return kexec.BootFiles(tmp_path / "zImage", tmp_path / "board.dtb", tmp_path / "initramfs.cpio",
                           "console=ttyAMA0 rdinit=/init cma=0")


OPTS = kexec.KexecOptions(workdir="/tmp/w", boot_timeout_s=3)


def test_the_switch_copies_loads_starts_and_checks_the_new_kernel(files):
    ssh = FakeSsh()
    r = kexec.kexec_into(ssh, files, VARIANT, Deadline(30), OPTS)
    assert r.kernel == VARIANT and r.previous == STOCK and r.checked_by == ["/proc/version", "build ID"]
    assert set(ssh.files) == {"/tmp/w/kexec/zImage", "/tmp/w/kexec/board.dtb", "/tmp/w/kexec/initramfs.cpio"}
    load = next(c for c in ssh.commands if " -l " in c)
    assert load == ("/usr/sbin/kexec -l /tmp/w/kexec/zImage --dtb=/tmp/w/kexec/board.dtb "
                    "--initrd=/tmp/w/kexec/initramfs.cpio '--command-line=console=ttyAMA0 rdinit=/init cma=0'")
    started = next(i for i, c in enumerate(ssh.commands) if " -e >" in c)
    assert ssh.commands.index("sync") < started and ssh.connected
    assert "trap '' HUP" in ssh.commands[started] and ssh.commands[started].endswith("&")
    assert set(r.seconds) == {"copy_s", "load_s", "switch_s", "verify_s"}
    assert r.as_dict()["kernel"]["build_id"] == VARIANT.build_id and r.as_dict()["method"] == "kexec"


def test_no_initramfs_means_no_initrd_argument():
    cmd = kexec.load_command("kexec", {"zimage": "/w/zImage", "dtb": "/w/b.dtb"}, "console=ttyS0,115200 root=/dev/mmcblk0p2")
    assert "--initrd" not in cmd and "'--command-line=console=ttyS0,115200 root=/dev/mmcblk0p2'" in cmd


def test_a_board_without_a_kexec_binary_says_how_to_get_one(files):
    with pytest.raises(kexec.KexecError, match="no kexec binary.*apt-get install kexec-tools.*deploy.kexec"):
        kexec.kexec_into(FakeSsh(has_kexec=False), files, VARIANT, Deadline(30), OPTS)


def test_a_running_kernel_without_kexec_is_named_and_nothing_is_started(files):
    ssh = FakeSsh(load=(255, b"kexec_load failed: Function not implemented\n"))
    with pytest.raises(kexec.KexecError) as e:
        kexec.kexec_into(ssh, files, VARIANT, Deadline(30), OPTS)
    assert "CONFIG_KEXEC" in str(e.value) and "kexec.config" in str(e.value) and "Function not implemented" in str(e.value)
    assert not any(c.endswith(" -e") for c in ssh.commands)


@pytest.mark.parametrize("said, meaning", [
    ("kexec_load failed: Operation not permitted", "kexec_load_disabled"),
    ("kexec_load failed: Invalid argument", "CONFIG_HOTPLUG_CPU"),
    ("Could not find a free area of memory of 0x3000 bytes...", "no room"),
    ("Cannot open `/w/zImage': No such file", "status 1"),
])
def test_each_load_failure_is_explained(said, meaning):
    assert meaning in kexec.load_failure(1, said)


def test_a_kexec_e_that_returns_is_an_error_not_a_wait(files):
    with pytest.raises(kexec.KexecError, match=r"returned \(status 1: Nothing has been loaded!\) instead of starting"):
        kexec.kexec_into(FakeSsh(execute="returns"), files, VARIANT, Deadline(30), OPTS)


def test_a_board_that_never_answers_again_points_at_the_console_and_power_cycle(files):
    with pytest.raises(kexec.BoardDidNotReturn) as e:
        kexec.kexec_into(FakeSsh(comes_back=False), files, VARIANT, Deadline(30), OPTS)
    assert "deploy.boot_timeout_s" in str(e.value) and "power.cycle" in str(e.value) and "serial console" in str(e.value)


def test_an_answer_from_the_old_boot_is_not_taken_for_the_new_one(files):
    ssh = FakeSsh(old_answers_first=2)
    r = kexec.kexec_into(ssh, files, VARIANT, Deadline(30), OPTS)
    assert r.kernel == VARIANT and ssh.connects == 2


def test_the_wrong_kernel_is_caught_though_its_banner_is_the_same(files):
    """The board boots the stock build again (the same banner): only the build ID shows it."""
    with pytest.raises(kexec.KernelMismatch) as e:
        kexec.kexec_into(FakeSsh(boots=STOCK), files, VARIANT, Deadline(30), OPTS)
    assert STOCK.build_id in str(e.value) and VARIANT.build_id in str(e.value)


@pytest.mark.parametrize("name, data, says", [
    ("zImage", b"\0" * 4096, "is not an ARM zImage"),
    ("zImage", b"short", "is not an ARM zImage"),
    ("board.dtb", b"<dts source, not a blob>", "is not a device tree blob"),
])
def test_a_file_that_cannot_be_what_it_is_given_as_is_refused_before_copying(files, name, data, says):
    """kexec-tools takes any file as an ARM zImage and jumps into it: the board would never come back."""
    (files.zimage.parent / name).write_bytes(data)
    ssh = FakeSsh()
    with pytest.raises(kexec.KexecError, match=f"{name} {says} .*: nothing was copied"):
        kexec.kexec_into(ssh, files, VARIANT, Deadline(30), OPTS)
    assert ssh.files == {} and not any(" -e >" in c for c in ssh.commands)


def test_the_lines_that_say_what_failed_come_first_not_the_segment_list():
    said = "\n".join(["kexec_load failed: Function not implemented", "entry       = 0x40008000 flags = 0x280000",
                      *(f"segment[{i}].buf = 0x{i:x}" for i in range(12))])
    assert kexec.telling_lines(said) == ["kexec_load failed: Function not implemented"]
    assert kexec.telling_lines("a\nb") == ["a", "b"] and kexec.telling_lines("") == ["(nothing)"]


def test_what_a_returned_kexec_e_said_is_read_from_its_log():
    assert kexec.returned("") is None and kexec.returned("partial output, still running") is None
    assert kexec.returned(f"kexec: no image\n{kexec.RETURNED_TAG}255\n") == "status 255: kexec: no image"


def test_a_new_boot_is_a_new_boot_id_or_else_a_short_uptime():
    old = ki.RunningKernel(STOCK, "a", 100.0)
    assert kexec.is_new_boot(old, ki.RunningKernel(VARIANT, "b", 200.0), 10)
    assert not kexec.is_new_boot(old, ki.RunningKernel(STOCK, "a", 5.0), 10)
    no_id = ki.RunningKernel(STOCK, None, 100.0)
    assert kexec.is_new_boot(no_id, ki.RunningKernel(VARIANT, None, 8.0), 10)
    assert not kexec.is_new_boot(no_id, ki.RunningKernel(STOCK, None, 110.0), 10)


def test_the_options_come_from_the_board_file(tmp_path):
    b = boards.from_dict({"name": "tb", "kind": "qemu-ssh", "ssh": {"host": "127.0.0.1", "port": 0, "key_file": "k",
                                                                    "known_hosts": "kh", "workdir": "/tmp/x"},
                          "deploy": {"method": "kexec", "kexec": "/sbin/kexec", "boot_timeout_s": 90},
                          "power": {"on": "true", "off": "true"}, "disk": {"provision": "write-image"}}, base=tmp_path)
    assert kexec.KexecOptions.of(b) == kexec.KexecOptions("/tmp/x", "/sbin/kexec", 90)


def test_any_board_s_command_channel_can_say_which_kernel_runs():
    """A fresh QEMU boot is checked the same way, over the guest's own shell."""
    from harness.boards.shell import CommandResult

    class Shell:
        def run_script(self, script, deadline):
            assert script == kexec.IDENTITY_SCRIPT
            return CommandResult(script, identity_output(STOCK, "b0").decode(), 0)

    r = kexec.running_kernel_on(Shell(), Deadline(5))
    assert r.identity == STOCK and kexec.verify(r.identity, STOCK, "qemu") == ["/proc/version", "build ID"]
    with pytest.raises(kexec.KernelMismatch, match="qemu: the board runs a kernel with build ID"):
        kexec.verify(r.identity, VARIANT, "qemu")
