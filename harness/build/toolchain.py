"""Host tools the harness needs, where they come from, and `doctor`: what is missing and the command that installs it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import InfraError

CROSS_COMPILE = "arm-linux-gnueabihf-"
DEBIAN_KERNEL_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
DEBIAN_KERNEL_612_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
# The embedded `kernel.source` names: Debian's linux-source packages (their tarballs above).
DEBIAN_SOURCES = {"debian": "linux-source-6.1", "debian-6.12": "linux-source-6.12"}
SETUP_SCRIPT = "images/setup-host.sh"


@dataclass(frozen=True)
class Tool:
    name: str          # what we call it
    command: str       # executable looked up on PATH, or an absolute file
    package: str       # Debian package that provides it

    def path(self) -> str | None:
        if self.command.startswith("/"):
            return self.command if Path(self.command).exists() else None
        return shutil.which(self.command)


TOOLS = (
    Tool("qemu", "qemu-system-arm", "qemu-system-arm"),
    Tool("cross-gcc", CROSS_COMPILE + "gcc", "gcc-arm-linux-gnueabihf"),
    Tool("kernel-source", str(DEBIAN_KERNEL_TARBALL), "linux-source-6.1"),
    Tool("kernel-6.12", str(DEBIAN_KERNEL_612_TARBALL), "linux-source-6.12"),
    Tool("dtc", "dtc", "device-tree-compiler"),
    Tool("mkfs.ext4", "mkfs.ext4", "e2fsprogs"),
    Tool("make", "make", "make"),
    Tool("bc", "bc", "bc"),
    Tool("bison", "bison", "bison"),
    Tool("flex", "flex", "flex"),
    Tool("patch", "patch", "patch"),
    Tool("xz", "xz", "xz-utils"),
    Tool("ccache", "ccache", "ccache"),
    Tool("ser2net", "ser2net", "ser2net"),      # the SSH test bed's serial console server
)


def busybox_path() -> Path:
    """The armhf static busybox, unpacked by the set-up script into the cache."""
    from harness.build.cache import cache_root

    return cache_root() / "busybox-armhf" / "bin" / "busybox"


def missing() -> list[Tool]:
    return [t for t in TOOLS if t.path() is None]


def require(*names: str) -> dict[str, str]:
    """Paths of the named tools; raises InfraError naming the packages to install for any that are missing."""
    wanted = [t for t in TOOLS if t.name in names]
    absent = [t for t in wanted if t.path() is None]
    if absent:
        pkgs = " ".join(sorted({t.package for t in absent}))
        raise InfraError(
            f"missing host tools: {', '.join(t.command for t in absent)}. "
            f"Install them with: apt-get install -y {pkgs}   (or run: bash {SETUP_SCRIPT})"
        )
    return {t.name: t.path() for t in wanted}  # type: ignore[misc]


def doctor() -> tuple[bool, list[str]]:
    """Lines describing every tool, and whether all are present."""
    lines, ok = [], True
    for t in TOOLS:
        p = t.path()
        lines.append(f"{'ok     ' if p else 'MISSING'} {t.name:14} {p or ''}" + ("" if p else f"  -> apt-get install -y {t.package}"))
        ok &= p is not None
    bb = busybox_path()
    if bb.exists():
        lines.append(f"ok      {'busybox-armhf':14} {bb}")
    else:
        ok = False
        lines.append(
            f"MISSING {'busybox-armhf':14}   -> dpkg --add-architecture armhf && apt-get update && "
            f"apt-get download busybox-static:armhf && dpkg-deb -x busybox-static_*_armhf.deb {bb.parent.parent}"
        )
    from harness.build.testbed import dropbear_bundle, kexec_bundle

    for name, binary, package, what in (
            ("dropbear-armhf", dropbear_bundle() / "bin" / "dropbear", "dropbear-bin:armhf", "the SSH test bed's server"),
            ("kexec-armhf", kexec_bundle() / "bin" / "kexec", "kexec-tools:armhf", "the test bed's kernel switch")):
        if binary.exists():
            lines.append(f"ok      {name:14} {binary}")
        else:
            ok = False
            lines.append(f"MISSING {name:14}   -> bash {SETUP_SCRIPT} (apt-get download {package} and its libraries, "
                         f"unpacked into {binary.parent.parent}; {what})")
    if not ok:
        lines.append(f"Everything above is installed by: bash {SETUP_SCRIPT}")
    return ok, lines
