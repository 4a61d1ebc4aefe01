"""Board files (images/boards/*.yaml): which board a run goes to and how it is reached, as validated data.

A board file is validated like a scenario: an unknown key, a wrong type or an out-of-range value is an
error that names the file, the key and what is allowed; an unknown board lists the shipped ones; a
template whose fields still say FILL-ME is refused with every such field named.

Kinds (`kind`):
- `qemu`: today's QEMU guest (console on QEMU's stdio, commands over a virtio serial port).
- `qemu-ssh`: the same QEMU guest reached only as a lab's board is: commands, files and /dev/kmsg over
  SSH (a 127.0.0.1 host forward), the kernel console through ser2net (rfc2217 on 127.0.0.1).
- `ssh`: a physical board over SSH, with an optional serial console (a tty, rfc2217:// or socket://).

Over SSH, `deploy.method: kexec` starts each variant's kernel with kexec (boards/kexec.py), and `power`
names the host commands that switch the board on, off and cycle it (boards/power.py).
"""

from __future__ import annotations

import dataclasses
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import InputError
from harness.spec.config import (
    DEFCONFIG_NAME,
    PROJECT_ROOT,
    KernelSpec,
    _build,
    _choice,
    _range,
)

BOARDS_DIR = PROJECT_ROOT / "images" / "boards"
DEFAULT_BOARD = BOARDS_DIR / "qemu.yaml"
FILL_ME = "FILL-ME"
KINDS = ("qemu", "qemu-ssh", "ssh")
LOOPBACK = "127.0.0.1"
# The QEMU guest's own fragments: written for allnoconfig on QEMU's `virt` machine, so a board that names
# its own config base (kernel.defconfig, kernel.config) builds without them.
GUEST_FRAGMENTS = ("virt-arm",)


@dataclass(frozen=True)
class SshSpec:
    host: str = ""
    # 0: a free port picked at run time (the qemu-ssh test bed's host forward); a board's sshd port else.
    port: int = field(default=22, metadata=_range(0, 65535))
    user: str = "root"
    key_file: str = ""              # the client's private key (OpenSSH format)
    known_hosts: str = ""           # the pinned host keys: the board's key must be in it
    # Look the host key up under this name instead of `host`/`[host]:port` (OpenSSH's HostKeyAlias): for
    # a board whose address or port changes, such as the test bed's forward on a port picked per run.
    host_key_alias: str | None = None
    connect_timeout_s: int = field(default=10, metadata=_range(1, 600))
    banner_timeout_s: int = field(default=15, metadata=_range(1, 600))
    auth_timeout_s: int = field(default=15, metadata=_range(1, 600))
    # An SSH keepalive this often; the connection is given up after `keepalive_count_max` unanswered.
    keepalive_s: int = field(default=5, metadata=_range(1, 600))
    keepalive_count_max: int = field(default=3, metadata=_range(1, 100))
    workdir: str = "/tmp/cma-harness"   # where the module and the workload script are copied


@dataclass(frozen=True)
class SerialSpec:
    # A local tty (/dev/ttyUSB0), or a TCP port as ser2net serves it: rfc2217://host:port, socket://host:port.
    # Port 0 on the qemu-ssh test bed: picked at run time for the ser2net it starts.
    url: str = ""
    baud: int = field(default=115200, metadata={"choices_int": (9600, 19200, 38400, 57600, 115200, 230400,
                                                                460800, 921600, 1500000, 3000000)})


@dataclass(frozen=True)
class BoardKernel:
    # Config fragments (kernel-configs/<name>.config) added after the scenario's own, for every variant.
    fragments: tuple[str, ...] = ()
    # The build tree of the kernel the board runs (its .config, Module.symvers, `make modules_prepare`
    # done): the module is built against it instead of a kernel the harness builds.
    tree: str | None = None
    # Or the harness builds the board's kernel, each variant's, from the board's own config base instead
    # of allnoconfig: a defconfig of the source's arch/arm/configs/ (omap2plus_defconfig), or a .config
    # file (the board's /boot/config-*); the fragments are merged into it (KernelSpec.base).
    defconfig: str | None = None
    config: str | None = None


@dataclass(frozen=True)
class BoardDisk:
    device: str = "/dev/vda"        # the block device that holds the workload's ext4
    # attached: the test bed's QEMU attaches the harness's fresh image as the device; write-image: the
    # harness writes its fresh image onto the device over SSH before each run (its contents are lost).
    provision: str = field(default="attached", metadata=_choice("attached", "write-image"))


@dataclass(frozen=True)
class BoardArea:
    # The dedicated area: the harness's reserved-memory node and test device (images/dt/cma-area.dtsi.j2)
    # in the board's device tree. A CMA area cannot be added at run time: the board must boot with it.
    # default: the board's default CMA pool (cma= or a `linux,cma-default` node), shared with every other
    # driver; the module allocates for a device of its own with no memory-region (guest/pool.py).
    method: str = field(default="dedicated", metadata=_choice("dedicated", "default"))
    # The board's own DTB: `cma-harness build --board FILE` writes a copy with the area added, to boot with.
    board_dtb: str | None = None
    # method default: the pool's name in /sys/kernel/debug/cma (default: cma='s "reserved", or the only one).
    pool_name: str | None = None
    # method default on the QEMU boards: the pool the guest boots with (cma=N M on its command line).
    pool_mib: int = field(default=64, metadata=_range(16, 1024))


@dataclass(frozen=True)
class BoardDeploy:
    # none: the board runs whatever it booted (the vermagic check says when that is not the build).
    # kexec: each boot starts the variant's kernel over SSH with kexec (harness/boards/kexec.py): the
    # harness's zImage, the board's DTB with the test area, the scenario's command line.
    # command: for a board where kexec is not wanted, `command` puts the kernel in place and reboots the
    # board (copies zImage and DTB to its boot partition, a flasher, a lab's own tool); the harness then
    # waits for a new boot and verifies its kernel, as after kexec.
    method: str = field(default="none", metadata=_choice("none", "kexec", "command"))
    kexec: str = "kexec"            # the kexec binary on the board: a name on root's PATH, or a path
    # Run on this host like a power command, placeholders DEPLOY_PLACEHOLDERS filled in; it must return
    # once the board reboots (or has), within boot_timeout_s.
    command: str | None = None
    # The board's own kernel command line (console=, root=), the scenario's options after it. Unset: the
    # QEMU guest's (console=ttyAMA0 rdinit=/init ...); a `kind: ssh` board must give its own.
    cmdline: str | None = None
    # From `kexec -e` (or the deploy command) until the new kernel answers over SSH; then the board is
    # given up (`infra`).
    boot_timeout_s: int = field(default=180, metadata=_range(5, 3600))


@dataclass(frozen=True)
class BoardPower:
    # Commands run on this host, as labgrid's external power driver runs them: split like a shell line
    # (no shell: `sh -c '...'` for pipes), placeholders POWER_PLACEHOLDERS filled in. A non-zero exit or
    # a command that outlasts timeout_s is an error naming the command.
    on: str | None = None
    off: str | None = None
    cycle: str | None = None        # unset: `off`, cycle_delay_s, then `on`
    timeout_s: int = field(default=60, metadata=_range(1, 3600))
    cycle_delay_s: int = field(default=2, metadata=_range(0, 600))
    # Switch the board off when the harness's command (a run, a campaign) ends, if the harness switched it
    # on. A lab's board stays on for the next one; the test bed's QEMU must not outlive its campaign.
    off_when_done: bool = False


# {board}: the board's `name`; {project}: the harness's folder (its scripts); {cache}: the harness's cache;
# {python}: the harness's own Python (for the test bed's power script, python -m harness.boards.rig).
POWER_PLACEHOLDERS = ("board", "project", "cache", "python")
# deploy.command's too: the files of the build to boot (local paths) and the kernel command line.
DEPLOY_PLACEHOLDERS = (*POWER_PLACEHOLDERS, "zimage", "dtb", "initramfs", "cmdline")


@dataclass(frozen=True)
class BoardFile:
    name: str = "qemu"
    kind: str = field(default="qemu", metadata=_choice(*KINDS))
    description: str = ""
    ssh: SshSpec | None = None
    serial: SerialSpec | None = None
    kernel: BoardKernel = BoardKernel()
    disk: BoardDisk = BoardDisk()
    area: BoardArea = BoardArea()
    deploy: BoardDeploy = BoardDeploy()
    power: BoardPower | None = None
    source: str = "<default>"       # the file it came from (not a YAML key)

    @property
    def over_ssh(self) -> bool:
        return self.kind in ("qemu-ssh", "ssh")

    def kernel_spec(self, spec: KernelSpec) -> KernelSpec:
        """The scenario's kernel for this board: its fragments, then the board's. With the board's own
        config base (kernel.defconfig or kernel.config) as its base, and without GUEST_FRAGMENTS."""
        base = self.kernel.defconfig or self.kernel.config
        own = tuple(f for f in spec.fragments if f not in GUEST_FRAGMENTS) if base else spec.fragments
        extra = tuple(f for f in self.kernel.fragments if f not in own)
        if base:
            return dataclasses.replace(spec, base=base, fragments=(*own, *extra))
        return dataclasses.replace(spec, fragments=(*spec.fragments, *extra)) if extra else spec

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"ssh": SshSpec, "serial": SerialSpec, "kernel": BoardKernel, "disk": BoardDisk, "area": BoardArea,
            "deploy": BoardDeploy, "power": BoardPower}
TOP_KEYS = ("name", "kind", "description", *SECTIONS)
PATH_KEYS = {"ssh": ("key_file", "known_hosts"), "kernel": ("tree", "config"), "area": ("board_dtb",)}


def shipped() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))


def load(path: Path | str | None = None) -> BoardFile:
    """A board file (None: images/boards/qemu.yaml); a bare name is looked up in images/boards/."""
    if path is None:
        path = DEFAULT_BOARD
    path = Path(path)
    if not path.exists() and "/" not in str(path) and (BOARDS_DIR / f"{path.name}.yaml").exists():
        path = BOARDS_DIR / f"{path.name}.yaml"
    if not path.is_file():
        raise InputError(f"board file {path} does not exist; pass a board YAML file, or one of the shipped boards: "
                         f"{', '.join(shipped())} (images/boards/<name>.yaml)")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from e
    return from_dict(data, source=str(path), base=path.parent)


def from_dict(data: Any, source: str = "<dict>", base: Path | None = None, cache: Path | None = None) -> BoardFile:
    if not isinstance(data, dict):
        raise InputError(f"{source}: a board file is a mapping of {', '.join(TOP_KEYS)}")
    unfilled = fill_me_keys(data)
    if unfilled:
        raise InputError(f"{source} is a template: fill in {', '.join(f'`{k}`' for k in unfilled)} "
                         f"(each still says {FILL_ME}); the comments beside them say what goes there")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise InputError(f"{source}: unknown key `{unknown[0]}`; allowed keys here: {', '.join(TOP_KEYS)}")
    top = _build(BoardFile, {k: data[k] for k in ("name", "kind", "description") if k in data}, source, "")
    sections = {}
    for key, cls in SECTIONS.items():
        if data.get(key) is not None:
            raw = _expand_paths(key, _yaml11_keys(data[key]), base or Path.cwd(), cache) \
                if isinstance(data[key], dict) else data[key]
            sections[key] = _build(cls, raw, source, key + ".")
    board = dataclasses.replace(top, source=source, **sections)
    return check(board, source)


def _yaml11_keys(values: dict) -> dict:
    """YAML 1.1 (PyYAML) reads a bare `on:` / `off:` key as true / false: `power.on` and `power.off` as
    written, whichever way they were read."""
    return {({True: "on", False: "off"}.get(k, k) if isinstance(k, bool) else k): v for k, v in values.items()}


def fill_me_keys(data: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose value (or a list item of it) is FILL-ME, in file order."""
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            found += fill_me_keys(v, f"{prefix}{k}.")
    elif isinstance(data, list):
        if any(fill_me_keys(v, prefix) for v in data):
            found.append(prefix.rstrip("."))
    elif isinstance(data, str) and FILL_ME in data:
        found.append(prefix.rstrip("."))
    return found


def _expand_paths(section: str, values: dict, base: Path, cache: Path | None) -> dict:
    """Path fields: `{cache}` is the harness's cache folder, `~` the home folder; relative paths are
    relative to the board file's folder."""
    out = dict(values)
    for key in PATH_KEYS.get(section, ()):
        v = out.get(key)
        if isinstance(v, str) and v:
            if "{cache}" in v:
                from harness.core.paths import cache_root

                v = v.replace("{cache}", str(cache or cache_root()))
            p = Path(v).expanduser()
            out[key] = str(p if p.is_absolute() else (base / p).resolve())
    return out


def check(b: BoardFile, source: str) -> BoardFile:
    """Rules between fields and kinds."""
    _check_kernel(b, source)
    _check_deploy_and_power(b, source)
    if b.kind == "qemu":
        for key in ("ssh", "serial"):
            if getattr(b, key) is not None:
                raise InputError(f"{source}: `{key}` is not used by a `kind: qemu` board (its console and command "
                                 f"channel are QEMU's own); use `kind: qemu-ssh` to reach the guest over SSH")
        if b.disk.provision != "attached" or b.kernel.tree:
            raise InputError(f"{source}: a `kind: qemu` board takes neither `disk.provision: write-image` nor "
                             f"`kernel.tree`: the harness builds its kernel and attaches its disk")
        return b
    if b.ssh is None:
        raise InputError(f"{source}: a `kind: {b.kind}` board needs an `ssh` section (host, port, user, key_file, "
                         f"known_hosts)")
    s = b.ssh
    for key in ("host", "user", "key_file", "known_hosts"):
        if not getattr(s, key):
            raise InputError(f"{source}: `ssh.{key}` is empty; a `kind: {b.kind}` board needs it")
    if b.kind == "qemu-ssh":
        if s.host != LOOPBACK:
            raise InputError(f"{source}: `ssh.host` = {s.host!r}: the qemu-ssh test bed forwards its SSH port on "
                             f"{LOOPBACK} only; allowed: {LOOPBACK}")
        if b.serial is not None and not _loopback_url(b.serial.url):
            raise InputError(f"{source}: `serial.url` = {b.serial.url!r}: the test bed's ser2net listens on "
                             f"{LOOPBACK} only; allowed: rfc2217://{LOOPBACK}:PORT or socket://{LOOPBACK}:PORT "
                             f"(0: a port picked at run time)")
        if b.kernel.tree:
            raise InputError(f"{source}: the qemu-ssh test bed boots the harness's kernel: `kernel.tree` must be unset")
        kexec = b.deploy.method != "none"
        if kexec and b.power is None:
            raise InputError(f"{source}: the qemu-ssh test bed with `deploy.method: {b.deploy.method}` stays on between runs and "
                             f"needs `power` commands to be switched on: `on: \"{{python}} -m harness.boards.rig on "
                             f"{{board}}\"`, `off: ... off {{board}}` (see images/boards/qemu-ssh.yaml)")
        want = "write-image" if kexec else "attached"
        if b.disk.provision != want:
            raise InputError(f"{source}: `disk.provision` = {b.disk.provision!r}: the test bed "
                             + ("stays on with one scratch disk, which each run's fresh image is written onto over SSH"
                                if kexec else "attaches each run's fresh disk itself, at QEMU's start")
                             + f"; allowed here: {want}")
        return b
    if b.disk.provision != "write-image":
        raise InputError(f"{source}: `disk.provision` = {b.disk.provision!r}: only the qemu-ssh test bed attaches the "
                         f"harness's disk image itself; a board's `disk.device` gets it written over SSH, so allowed: "
                         f"write-image")
    if s.port == 0:
        raise InputError(f"{source}: `ssh.port` = 0 picks a port only on the qemu-ssh test bed; give the board's "
                         f"SSH port (allowed: 1 to 65535)")
    for key in ("key_file", "known_hosts"):
        if not Path(getattr(s, key)).is_file():
            raise InputError(f"{source}: `ssh.{key}` = {getattr(s, key)} does not exist"
                             + ("; pin the board's key first (README: Boards)" if key == "known_hosts" else ""))
    if b.serial is not None:
        serial_url_problem(b.serial.url, source)
    if b.kernel.tree and not (Path(b.kernel.tree) / ".config").is_file():
        raise InputError(f"{source}: `kernel.tree` = {b.kernel.tree} has no .config: name the build tree of the "
                         f"kernel the board runs (after `make modules_prepare`)")
    return b


def _check_kernel(b: BoardFile, source: str) -> None:
    """kernel.tree, kernel.defconfig and kernel.config: one kernel at most, and a base only where the
    harness builds a board's kernel."""
    k = b.kernel
    given = [key for key in ("tree", "defconfig", "config") if getattr(k, key)]
    if len(given) > 1:
        raise InputError(f"{source}: `kernel.{given[0]}` and `kernel.{given[1]}` exclude each other: `kernel.tree` "
                         f"is the board's own prebuilt kernel, `kernel.defconfig` (a NAME_defconfig) or "
                         f"`kernel.config` (a .config file) the base the harness builds the board's kernel from; "
                         f"set one of them")
    base = next((key for key in ("defconfig", "config") if key in given), None)
    if base and b.kind in ("qemu", "qemu-ssh"):
        # The guest boots QEMU's `virt` machine with the harness's initramfs: the scenario's allnoconfig +
        # virt-arm kernel names all it needs, where a board's defconfig need not (virtio, PL011).
        raise InputError(f"{source}: `kernel.{base}` is for a `kind: ssh` board; a `kind: {b.kind}` board boots "
                         f"the harness's minimal QEMU `virt` kernel (allnoconfig + the scenario's fragments)")
    if k.defconfig is not None and not DEFCONFIG_NAME.match(k.defconfig):
        raise InputError(f"{source}: `kernel.defconfig` = {k.defconfig!r} is not a defconfig target; allowed: a "
                         f"NAME_defconfig of the kernel source's arch/arm/configs/ (e.g. omap2plus_defconfig, "
                         f"bcm2835_defconfig), or `kernel.config` for a .config file")
    if k.config is not None and not Path(k.config).is_file():
        raise InputError(f"{source}: `kernel.config` = {k.config or '(empty)'} is not a file: name the board "
                         f"kernel's .config (e.g. a copy of its /boot/config-$(uname -r)), relative to the board file")


def _loopback_url(url: str) -> bool:
    return any(url.startswith(f"{scheme}://{LOOPBACK}:") for scheme in ("rfc2217", "socket"))


def serial_url_problem(url: str, source: str) -> None:
    if url.startswith("/dev/"):
        return
    scheme, sep, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    if not sep or scheme not in ("rfc2217", "socket") or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{source}: `serial.url` = {url!r} is not a serial port; allowed: a tty (/dev/ttyUSB0), "
                         f"rfc2217://HOST:PORT or socket://HOST:PORT (as ser2net serves it)")


def _check_deploy_and_power(b: BoardFile, source: str) -> None:
    d = b.deploy
    if b.kind == "qemu" and (d.method != "none" or b.power is not None):
        raise InputError(f"{source}: a `kind: qemu` board takes neither `deploy.method` nor `power`: the "
                         f"harness starts QEMU with each variant's kernel itself; the test bed (`kind: qemu-ssh`) takes both")
    if d.method == "command" and not d.command:
        raise InputError(f"{source}: `deploy.method: command` needs `deploy.command`, the host command that puts the "
                         f"kernel on the board and reboots it (placeholders: "
                         + ", ".join(f"{{{n}}}" for n in DEPLOY_PLACEHOLDERS) + ")")
    if d.command is not None:
        if d.method != "command":
            raise InputError(f"{source}: `deploy.command` is used by `deploy.method: command` only (it is {d.method!r})")
        power_argv(d.command, {k: k for k in DEPLOY_PLACEHOLDERS}, source, "deploy.command", DEPLOY_PLACEHOLDERS)
    if d.method != "none":
        m = f"`deploy.method: {d.method}`"
        if b.kernel.tree:
            raise InputError(f"{source}: {m} boots the kernels the harness builds, so `kernel.tree` "
                             f"(the board's own kernel) must be unset")
        if b.kind == "ssh" and not d.cmdline:
            raise InputError(f"{source}: {m} on a `kind: ssh` board needs `deploy.cmdline`, the "
                             f"board's own kernel command line (console=..., root=...; see its /proc/cmdline)")
        if b.kind == "ssh" and not b.area.board_dtb:
            raise InputError(f"{source}: {m} on a `kind: ssh` board needs `area.board_dtb`: the boot "
                             f"takes the board's DTB (with the test area added, for `area.method: dedicated`)")
    if b.power is not None:
        p = b.power
        if not p.cycle and not (p.on and p.off):
            raise InputError(f"{source}: `power` needs `cycle`, or both `on` and `off` (a cycle is then off, "
                             f"cycle_delay_s, on)")
        for key in ("on", "off", "cycle"):
            if getattr(p, key) is not None:
                power_argv(getattr(p, key), {k: k for k in POWER_PLACEHOLDERS}, source, f"power.{key}")


def power_argv(command: str, values: dict[str, str], source: str = "<board>", key: str = "power",
               allowed: tuple[str, ...] = POWER_PLACEHOLDERS) -> list[str]:
    """A power command as argv: split like a shell line, then each word's placeholders filled in (a value
    with spaces stays one argument). An empty command, unbalanced quotes or an unknown placeholder is an
    InputError naming the key."""
    try:
        words = shlex.split(command)
    except ValueError as e:
        raise InputError(f"{source}: `{key}` = {command!r} cannot be split into arguments: {e}") from None
    if not words:
        raise InputError(f"{source}: `{key}` is empty; give the command to run, or leave the key out")
    out = []
    for w in words:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(w) if f is not None]
        except ValueError as e:
            raise InputError(f"{source}: `{key}` = {command!r}: {e} (write a literal brace as {{{{ or }}}})") from None
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise InputError(f"{source}: `{key}` = {command!r} names the placeholder {{{unknown[0]}}}; allowed: "
                             + ", ".join(f"{{{n}}}" for n in allowed))
        out.append(w.format(**values))
    return out
