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
    # "demo": what `ab`/`run`/`build`/`bench` on the QEMU board need; "tests": only the test suite and the
    # other boards (installed by the set-up's --tests).
    scope: str = "demo"

    def path(self) -> str | None:
        if self.command.startswith("/"):
            return self.command if Path(self.command).exists() else None
        return shutil.which(self.command)


TOOLS = (
    Tool("qemu", "qemu-system-arm", "qemu-system-arm"),
    Tool("cross-gcc", CROSS_COMPILE + "gcc", "gcc-arm-linux-gnueabihf"),
    # The kernel's host programs (fixdep, kconfig, dtc) are built with the host's gcc and C library headers.
    Tool("host-gcc", "gcc", "gcc"),
    Tool("host-libc-headers", "/usr/include/stdio.h", "libc6-dev"),
    Tool("kernel-source", str(DEBIAN_KERNEL_TARBALL), "linux-source-6.1"),
    Tool("kernel-6.12", str(DEBIAN_KERNEL_612_TARBALL), "linux-source-6.12", "tests"),
    Tool("dtc", "dtc", "device-tree-compiler"),
    Tool("fdtput", "fdtput", "device-tree-compiler"),   # a boot's DTB gets fresh random seeds (build/image_cache.py)
    Tool("mkfs.ext4", "mkfs.ext4", "e2fsprogs"),
    Tool("make", "make", "make"),
    Tool("bc", "bc", "bc"),
    Tool("bison", "bison", "bison"),
    Tool("flex", "flex", "flex"),
    Tool("patch", "patch", "patch"),
    Tool("xz", "xz", "xz-utils"),
    Tool("ccache", "ccache", "ccache"),
    Tool("ser2net", "ser2net", "ser2net", "tests"),      # the SSH test bed's serial console server
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


def doctor(tests: bool = False) -> tuple[bool, list[str]]:
    """Lines describing every tool, and whether all of the wanted scope are present: the demo's, or with
    tests=True also the test suite's. A missing test-only tool is named, but fails only a tests check."""
    from harness.build.testbed import dropbear_bundle, kexec_bundle

    lines, ok = [], True

    def line(name: str, path, fix: str, scope: str) -> None:
        nonlocal ok
        if path:
            lines.append(f"ok      {name:14} {path}")
        elif scope == "demo" or tests:
            ok = False
            lines.append(f"MISSING {name:14}   -> {fix}")
        else:
            lines.append(f"absent  {name:14}   (for the tests and the SSH test bed: bash {SETUP_SCRIPT} --tests)")

    for t in TOOLS:
        line(t.name, t.path(), f"apt-get install -y {t.package}", t.scope)
    bb = busybox_path()
    line("busybox-armhf", bb if bb.exists() else None,
         f"dpkg --add-architecture armhf && apt-get update && apt-get download busybox-static:armhf && "
         f"dpkg-deb -x busybox-static_*_armhf.deb {bb.parent.parent}", "demo")
    for name, binary, package, what in (
            ("dropbear-armhf", dropbear_bundle() / "bin" / "dropbear", "dropbear-bin:armhf", "the SSH test bed's server"),
            ("kexec-armhf", kexec_bundle() / "bin" / "kexec", "kexec-tools:armhf", "the test bed's kernel switch")):
        line(name, binary if binary.exists() else None,
             f"bash {SETUP_SCRIPT} --tests (apt-get download {package} and its libraries, unpacked into "
             f"{binary.parent.parent}; {what})", "tests")
    if not ok:
        lines.append(f"Everything above is installed by: bash {SETUP_SCRIPT}" + (" --tests" if tests else ""))
    return ok, lines
