"""Board files (images/boards/*.yaml) are validated like scenarios: errors name the file, the key and
what is allowed; templates are refused while a FILL-ME is left, naming every one."""

import re
from pathlib import Path

import pytest
import yaml

from harness.core.errors import InputError
from harness.spec import boards, config

TEMPLATES = ["beaglebone-black", "raspberrypi-2"]


def _write(tmp_path, text: str, name="board.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_boards_are_the_six_named():
    assert boards.shipped() == ["beaglebone-black", "qemu", "qemu-cma-pool", "qemu-ssh", "qemu-ssh-fresh",
                               "raspberrypi-2"]


def test_the_qemu_board_file_is_todays_board_and_changes_no_kernel():
    b = boards.load(None)
    assert b == boards.load("qemu") and b.kind == "qemu" and b.ssh is None
    spec = config.load(None).variant("reintroduce-2012")
    assert b.kernel_spec(spec) is spec, "the demo's kernels (and their cache keys) must stay as they are"
    assert boards.BoardFile().kernel_spec(spec) is spec


def test_the_ssh_test_bed_reaches_the_guest_on_loopback_only():
    b = boards.load("images/boards/qemu-ssh.yaml")
    assert b.kind == "qemu-ssh" and b.ssh.host == "127.0.0.1" and b.ssh.port == 0
    assert b.serial.url == "rfc2217://127.0.0.1:0"
    assert b.ssh.host_key_alias and b.ssh.known_hosts.endswith("testbed/known_hosts")
    assert "{cache}" not in b.ssh.key_file and Path(b.ssh.key_file).is_absolute()
    spec = config.load(None).variant("stock")
    assert b.kernel_spec(spec).fragments == (*spec.fragments, "net", "kexec")


@pytest.mark.parametrize("name", TEMPLATES)
def test_a_template_is_refused_naming_every_unfilled_field(name):
    with pytest.raises(InputError) as e:
        boards.load(name)
    msg = str(e.value)
    assert f"{name}.yaml is a template" in msg
    text = (boards.BOARDS_DIR / f"{name}.yaml").read_text()
    unfilled = re.findall(r"^\s+(\w+): FILL-ME", text, re.M)
    assert len(unfilled) >= 6
    for key in ("ssh.host", "ssh.key_file", "ssh.known_hosts", "serial.url", "kernel.tree", "disk.device"):
        assert f"`{key}`" in msg, key


@pytest.mark.parametrize("name", TEMPLATES)
def test_a_filled_template_loads(name, tmp_path):
    key, kh, tree, dtb = (tmp_path / "id_ed25519", tmp_path / "known_hosts", tmp_path / "linux", tmp_path / "b.dtb")
    key.write_text("k"), kh.write_text(""), dtb.write_bytes(b"")
    tree.mkdir(), (tree / ".config").write_text("CONFIG_CMA=y\n")
    values = {"host": "board.lab", "key_file": str(key), "known_hosts": str(kh), "url": "rfc2217://ser2net.lab:3001",
              "tree": str(tree), "device": "/dev/sda1", "board_dtb": str(dtb)}
    text = (boards.BOARDS_DIR / f"{name}.yaml").read_text()
    filled = re.sub(r"^(\s+)(\w+): FILL-ME", lambda m: f"{m.group(1)}{m.group(2)}: {values[m.group(2)]}", text, flags=re.M)
    b = boards.load(_write(tmp_path, filled))
    assert b.kind == "ssh" and b.ssh.host == "board.lab" and b.disk.provision == "write-image"
    assert b.kernel.tree == str(tree) and b.serial.baud == 115200


def test_an_unknown_board_lists_the_shipped_ones():
    with pytest.raises(InputError, match="shipped boards: beaglebone-black, qemu, qemu-cma-pool, qemu-ssh, qemu-ssh-fresh, raspberrypi-2"):
        boards.load("no-such-board")


def test_an_unknown_key_names_the_file_the_key_and_the_allowed_keys(tmp_path):
    path = _write(tmp_path, "kind: qemu\nboard: x\n")
    with pytest.raises(InputError, match=rf"{re.escape(str(path))}: unknown key `board`; allowed keys here: name, kind"):
        boards.load(path)
    path = _write(tmp_path, "kind: qemu-ssh\nssh: {host: 127.0.0.1, prot: 22}\n")
    with pytest.raises(InputError, match=r"unknown key `ssh.prot`; allowed keys here: host, port, user"):
        boards.load(path)


def test_a_wrong_kind_or_value_says_what_is_allowed(tmp_path):
    with pytest.raises(InputError, match=r"`kind` = 'telnet' is not allowed; allowed values: qemu, qemu-ssh, ssh"):
        boards.load(_write(tmp_path, "kind: telnet\n"))
    with pytest.raises(InputError, match=r"`ssh.port` = 70000 is out of range; allowed: 0 to 65535"):
        boards.load(_write(tmp_path, "kind: qemu-ssh\nssh: {host: 127.0.0.1, port: 70000}\n"))
    with pytest.raises(InputError, match=r"`serial.baud` = 1234 is not allowed; allowed values: 9600"):
        boards.load(_write(tmp_path, "kind: qemu-ssh\nssh: {host: 127.0.0.1, key_file: k, known_hosts: h}\n"
                                     "serial: {url: 'rfc2217://127.0.0.1:0', baud: 1234}\n"))


def test_the_test_bed_may_not_listen_beyond_loopback(tmp_path):
    base = yaml.safe_load((boards.BOARDS_DIR / "qemu-ssh.yaml").read_text())
    wide = {**base, "ssh": {**base["ssh"], "host": "0.0.0.0"}}
    with pytest.raises(InputError, match=r"`ssh.host` = '0.0.0.0'.*allowed: 127.0.0.1"):
        boards.from_dict(wide, "t.yaml")
    wide = {**base, "serial": {"url": "rfc2217://0.0.0.0:0"}}
    with pytest.raises(InputError, match=r"`serial.url` = 'rfc2217://0.0.0.0:0'.*127.0.0.1 only"):
        boards.from_dict(wide, "t.yaml")


def test_a_physical_board_needs_its_pinned_keys_file_and_a_real_port(tmp_path):
    key = tmp_path / "k"
    key.write_text("k")
    doc = {"kind": "ssh", "ssh": {"host": "b", "key_file": str(key), "known_hosts": str(tmp_path / "missing")}}
    with pytest.raises(InputError, match=r"`disk.provision` = 'attached'.*allowed: write-image"):
        boards.from_dict(doc, "b.yaml")
    doc["disk"] = {"device": "/dev/sda1", "provision": "write-image"}
    with pytest.raises(InputError, match=r"`ssh.known_hosts` = .*missing does not exist; pin the board's key first"):
        boards.from_dict(doc, "b.yaml")
    doc["ssh"]["port"] = 0
    with pytest.raises(InputError, match=r"`ssh.port` = 0 picks a port only on the qemu-ssh test bed"):
        boards.from_dict(doc, "b.yaml")
    (tmp_path / "missing").write_text("")
    doc["ssh"]["port"] = 22
    doc["serial"] = {"url": "telnet://x:1"}
    with pytest.raises(InputError, match=r"`serial.url` = 'telnet://x:1' is not a serial port; allowed: a tty"):
        boards.from_dict(doc, "b.yaml")


def test_a_qemu_board_takes_no_ssh_section(tmp_path):
    with pytest.raises(InputError, match=r"`ssh` is not used by a `kind: qemu` board"):
        boards.load(_write(tmp_path, "kind: qemu\nssh: {host: x}\n"))


def test_paths_are_relative_to_the_board_file_and_cache_is_the_harness_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "keys").mkdir()
    b = boards.from_dict({"kind": "qemu-ssh", "ssh": {"host": "127.0.0.1", "key_file": "keys/id",
                                                      "known_hosts": "{cache}/testbed/known_hosts"}},
                         "t.yaml", base=tmp_path)
    assert b.ssh.key_file == str(tmp_path / "keys" / "id")
    assert b.ssh.known_hosts == str(tmp_path / "cache" / "testbed" / "known_hosts")


def _ssh_board(tmp_path, **kernel_keys) -> dict:
    key, kh = tmp_path / "k", tmp_path / "kh"
    key.write_text("k"), kh.write_text("")
    return {"kind": "ssh", "ssh": {"host": "b", "key_file": str(key), "known_hosts": str(kh)},
            "disk": {"device": "/dev/sda1", "provision": "write-image"}, "kernel": kernel_keys}


def test_a_board_defconfig_is_the_base_of_every_variant_without_the_guest_fragment(tmp_path):
    b = boards.from_dict(_ssh_board(tmp_path, defconfig="omap2plus_defconfig", fragments=["cma", "trace", "kexec"]),
                         "b.yaml")
    scn = config.load(None)
    for spec in (scn.kernel, scn.variant("reintroduce-2012")):
        assert spec.base == "allnoconfig" and spec.fragments == ("virt-arm", "cma", "trace")
        built = b.kernel_spec(spec)
        assert built.base == "omap2plus_defconfig" and built.fragments == ("cma", "trace", "kexec")
        assert built.patches == spec.patches and built.source == spec.source


def test_a_board_config_file_is_relative_to_the_board_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CMA_HARNESS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "bbb.config").write_text("CONFIG_ARCH_OMAP2PLUS=y\n")
    b = boards.from_dict(_ssh_board(tmp_path, config="bbb.config"), "b.yaml", base=tmp_path)
    assert b.kernel.config == str(tmp_path / "bbb.config")
    assert b.kernel_spec(config.load(None).kernel).base == str(tmp_path / "bbb.config")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "board.config").write_text("")
    assert boards.from_dict(_ssh_board(tmp_path, config="{cache}/board.config"), "b.yaml").kernel.config == \
        str(tmp_path / "cache" / "board.config")
    with pytest.raises(InputError, match=r"b.yaml: `kernel.config` = .*missing.config is not a file: name the board"):
        boards.from_dict(_ssh_board(tmp_path, config="missing.config"), "b.yaml", base=tmp_path)


@pytest.mark.parametrize("keys, named", [
    ({"defconfig": "omap2plus_defconfig", "tree": "linux"}, "`kernel.tree` and `kernel.defconfig` exclude each other"),
    ({"config": "bbb.config", "tree": "linux"}, "`kernel.tree` and `kernel.config` exclude each other"),
    ({"defconfig": "omap2plus_defconfig", "config": "bbb.config"},
     "`kernel.defconfig` and `kernel.config` exclude each other"),
])
def test_a_board_names_one_kernel_at_most(tmp_path, keys, named):
    (tmp_path / "bbb.config").write_text("")
    (tmp_path / "linux").mkdir()
    (tmp_path / "linux" / ".config").write_text("")
    with pytest.raises(InputError, match=rf"b.yaml: {re.escape(named)}: `kernel.tree` is the board's own prebuilt"):
        boards.from_dict(_ssh_board(tmp_path, **keys), "b.yaml", base=tmp_path)


def test_a_defconfig_must_be_a_defconfig_target(tmp_path):
    for bad in ("omap2plus", "arch/arm/configs/omap2plus_defconfig"):
        with pytest.raises(InputError, match=rf"`kernel.defconfig` = {re.escape(repr(bad))} is not a defconfig "
                                             r"target; allowed: a NAME_defconfig of the kernel source's arch/arm"):
            boards.from_dict(_ssh_board(tmp_path, defconfig=bad), "b.yaml")


@pytest.mark.parametrize("name", ["qemu", "qemu-ssh"])
def test_the_qemu_boards_take_no_config_base(name):
    doc = yaml.safe_load((boards.BOARDS_DIR / f"{name}.yaml").read_text())
    doc["kernel"] = {**(doc.get("kernel") or {}), "defconfig": "vexpress_defconfig"}
    with pytest.raises(InputError, match=rf"`kernel.defconfig` is for a `kind: ssh` board; a `kind: {name}` board "
                                         r"boots the harness's minimal QEMU `virt` kernel"):
        boards.from_dict(doc, f"{name}.yaml")


@pytest.mark.parametrize("name, defconfig", [("beaglebone-black", "omap2plus_defconfig"),
                                             ("raspberrypi-2", "bcm2835_defconfig")])
def test_a_template_documents_its_defconfig_and_loads_with_it(name, defconfig, tmp_path):
    """The template's commented-out alternative to `kernel.tree`, put in its place, loads."""
    text = (boards.BOARDS_DIR / f"{name}.yaml").read_text()
    assert f"#   defconfig: {defconfig}\n" in text
    doc = yaml.safe_load(text)
    del doc["kernel"]["tree"]
    doc["kernel"].update(defconfig=defconfig, fragments=["cma", "trace"])
    key, kh, dtb = tmp_path / "k", tmp_path / "kh", tmp_path / "b.dtb"
    key.write_text("k"), kh.write_text(""), dtb.write_bytes(b"")
    doc["ssh"].update(host="board.lab", key_file=str(key), known_hosts=str(kh))
    doc["serial"]["url"], doc["disk"]["device"], doc["area"]["board_dtb"] = "/dev/ttyUSB0", "/dev/sda1", str(dtb)
    b = boards.from_dict(doc, f"{name}.yaml")
    assert b.kernel.defconfig == defconfig and b.kernel_spec(config.load(None).kernel).base == defconfig
