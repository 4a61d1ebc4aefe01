"""The SSH test bed's pieces that need no QEMU: its keys (dropbear's format, the pin), its initramfs
additions, QEMU's and ser2net's arguments (nothing beyond 127.0.0.1), and the vermagic check."""

import base64
import struct
from pathlib import Path

import paramiko
import pytest

from harness.boards.base import GuestPaths
from harness.boards.qemu import QemuBoardConfig
from harness.boards.shell import CommandResult
from harness.boards.testbed import ser2net_config, ssh_bed_argv
from harness.build import testbed
from harness.build.image import GuestImages
from harness.build.module import ModuleBuild
from harness.guest import install
from harness.parsers.modinfo import modinfo, vermagic_mismatch
from harness.spec.qemu_hardware import QemuHardware


def test_the_keys_are_made_once_and_the_pin_names_the_host_key(tmp_path):
    keys = testbed.ensure_keys(tmp_path / "tb")
    first = keys.host_key.read_bytes()
    assert testbed.ensure_keys(tmp_path / "tb").host_key.read_bytes() == first
    assert oct(keys.host_key.stat().st_mode & 0o777) == "0o600" and oct(keys.client_key.stat().st_mode & 0o777) == "0o600"
    alias, kind, blob = keys.known_hosts.read_text().split()
    assert alias == testbed.HOST_KEY_ALIAS and kind == "ssh-ed25519" and blob == keys.host_pub.read_text().split()[1]
    paramiko.Ed25519Key.from_private_key_file(str(keys.client_key))      # paramiko can use the client key


def test_the_host_key_is_in_dropbears_format_with_the_pinned_public_half(tmp_path):
    keys = testbed.ensure_keys(tmp_path / "tb")
    data = keys.host_key.read_bytes()
    (n,) = struct.unpack(">I", data[:4])
    assert data[4:4 + n] == b"ssh-ed25519"
    (m,) = struct.unpack(">I", data[4 + n:8 + n])
    assert m == 64 and len(data) == 8 + n + 64
    public = data[8 + n + 32:]
    blob = base64.b64decode(keys.host_pub.read_text().split()[1])
    assert blob.endswith(public) and testbed.host_key_blob(keys) == blob


def test_a_known_hosts_file_the_user_changed_is_left_alone(tmp_path):
    keys = testbed.ensure_keys(tmp_path / "tb")
    keys.known_hosts.write_text("cma-harness-testbed ssh-ed25519 AAAAother\n")
    testbed.ensure_keys(tmp_path / "tb")
    assert "AAAAother" in keys.known_hosts.read_text()


def test_the_initramfs_gets_dropbear_its_libraries_and_the_keys(tmp_path, monkeypatch):
    bundle = tmp_path / "dropbear-armhf"
    for rel in ["bin/dropbear", "lib/ld-linux-armhf.so.3", *(f"lib/{l}" for l in testbed.DROPBEAR_LIBS)]:
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_bytes(b"x")
    kx = tmp_path / "kexec-armhf"
    for rel in ["bin/kexec", *(f"lib/{l}" for l in testbed.KEXEC_LIBS)]:
        (kx / rel).parent.mkdir(parents=True, exist_ok=True)
        (kx / rel).write_bytes(b"x")
    monkeypatch.setattr(testbed, "dropbear_bundle", lambda: bundle)
    monkeypatch.setattr(testbed, "kexec_bundle", lambda: kx)
    keys = testbed.ensure_keys(tmp_path / "tb")
    lines = testbed.initramfs_entries(keys, tmp_path / "img")
    text = "\n".join(lines)
    assert f"file /usr/sbin/dropbear {bundle}/bin/dropbear 0755 0 0" in text
    assert f"file {testbed.GUEST_KEXEC} {kx}/bin/kexec 0755 0 0" in text
    assert all(f"file {testbed.GUEST_LIBDIR}/{lib} {kx}/lib/{lib} 0755 0 0" in text for lib in testbed.KEXEC_LIBS)
    paths = [l.split()[1] for l in lines]
    assert len(paths) == len(set(paths)), "an initramfs path listed twice"
    assert f"file {testbed.GUEST_HOST_KEY} {keys.host_key} 0600 0 0" in text
    assert f"file /root/.ssh/authorized_keys {keys.client_pub} 0600 0 0" in text and "dir /root/.ssh 0700 0 0" in text
    assert all(f"{testbed.GUEST_LIBDIR}/{lib}" in text for lib in testbed.DROPBEAR_LIBS)
    assert (tmp_path / "img" / "testbed-etc" / "passwd").read_text().startswith("root:x:0:0:root:/root:/bin/sh")


def test_a_missing_dropbear_bundle_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setattr(testbed, "dropbear_bundle", lambda: tmp_path / "none")
    assert "bash images/setup-host.sh" in testbed.dropbear_missing()


def test_a_missing_kexec_bundle_says_how_to_fetch_it(tmp_path, monkeypatch):
    bundle = tmp_path / "dropbear-armhf"
    for rel in ["bin/dropbear", "lib/ld-linux-armhf.so.3", *(f"lib/{l}" for l in testbed.DROPBEAR_LIBS)]:
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        (bundle / rel).write_bytes(b"x")
    monkeypatch.setattr(testbed, "dropbear_bundle", lambda: bundle)
    monkeypatch.setattr(testbed, "kexec_bundle", lambda: tmp_path / "none")
    problem = testbed.dropbear_missing()
    assert "kexec for armhf is missing" in problem and "kexec-tools:armhf" in problem and "setup-host.sh" in problem


def test_qemu_forwards_ssh_on_loopback_only_and_ser2net_listens_on_loopback_only():
    cfg = QemuBoardConfig(QemuHardware(2, 128), Path("/z"), GuestImages(Path("/i"), Path("/d"), Path("/t")), Path("/f"))
    argv = ssh_bed_argv(cfg, "qemu-system-arm", 40022)
    net = argv[argv.index("-netdev") + 1]
    assert net == "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22"
    assert argv[argv.index("-serial") + 1] == "pty" and "virtio-net-device,netdev=net0" in argv
    assert "0.0.0.0" not in " ".join(argv) and "virtserialport" not in " ".join(argv)
    conf = ser2net_config("/dev/pts/7", 40023, rfc2217=True, baud=115200)
    assert "accepter: telnet(rfc2217),tcp,127.0.0.1,40023" in conf and "serialdev,/dev/pts/7,115200n81,local" in conf
    assert "accepter: tcp,127.0.0.1,40024" in ser2net_config("/dev/pts/7", 40024, rfc2217=False, baud=9600)


def test_vermagic_names_both_releases():
    data = b"\0name=cma_harness\0vermagic=6.1.192 SMP mod_unload ARMv7 p2v8 \0license=GPL\0"
    info = modinfo(b"...area name=%s\n" + data)
    assert info["vermagic"].startswith("6.1.192 ") and info["name"] == "cma_harness"
    assert vermagic_mismatch(info["vermagic"], "6.1.192\n") is None
    msg = vermagic_mismatch(info["vermagic"], "6.1.0-28-armmp")
    assert "built for kernel 6.1.192" in msg and "runs 6.1.0-28-armmp (uname -r)" in msg


class _Board:
    paths = GuestPaths(module="/tmp/w/cma_harness.ko", workload="/tmp/w/workload.sh")

    def __init__(self, release):
        self.release, self.installed, self.commands = release, {}, []

    def install(self, files, deadline):
        self.installed.update(files)

    def run(self, argv, deadline):
        self.commands.append(argv)
        return CommandResult(" ".join(argv), self.release + "\n", 0)


def test_a_vermagic_mismatch_stops_before_insmod(tmp_path):
    ko = tmp_path / "cma_harness.ko"
    ko.write_bytes(b"\0vermagic=6.1.192 SMP mod_unload ARMv7 p2v8 \0")
    mb = ModuleBuild("k", ko, tmp_path / "cma_harness.c")
    board = _Board("6.1.0-28-armmp")
    with pytest.raises(install.VermagicMismatch, match="was not loaded.*kernel.tree"):
        install.prepare(board, mb, deadline=None)
    assert board.commands == [["uname", "-r"]], "nothing but uname may run before the check"
    assert board.installed[board.paths.module] == ko and board.installed[board.paths.workload] == install.WORKLOAD_SCRIPT
    assert install.prepare(_Board("6.1.192"), mb, deadline=None) == "6.1.192"


def test_the_area_node_takes_the_board_s_own_cell_sizes():
    """Linux ignores a reserved-memory node whose cells differ from the root's; a board's own node
    (a Raspberry Pi's holds its linux,cma pool) keeps its children's format."""
    from harness.build.image import render_dt_fragment, root_cells
    from harness.spec.config import AreaSpec

    am335x = "/dts-v1/;\n\n/ {\n\t#address-cells = <0x01>;\n\t#size-cells = <0x01>;\n\tcpus {\n\t\t#address-cells = <0x01>;\n\t\t#size-cells = <0x00>;\n"
    assert root_cells(am335x) == (1, 1) and root_cells("/ {\n\tmodel = \"x\";\n") == (2, 1)
    one = render_dt_fragment(AreaSpec(), 1, 1)
    assert "#address-cells = <1>;" in one and "size = <0x3800000>;" in one and "alignment = <0x400000>;" in one
    two = render_dt_fragment(AreaSpec())          # QEMU virt: the fragment as it always was
    assert "#size-cells = <2>;" in two and "size = <0x0 0x3800000>;" in two and "alignment = <0x0 0x400000>;" in two
