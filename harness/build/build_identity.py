"""A kernel build's identity, read from its own tree: the banner its /proc/version will print and its
vmlinux's GNU build ID (parsers/kernel_identity.py says why both)."""

from __future__ import annotations

import re
from pathlib import Path

from harness.build.kernel import KernelBuild
from harness.core.errors import InfraError
from harness.parsers.kernel_identity import KernelIdentity, elf_notes, gnu_build_id

DEFINE = re.compile(r'^#define\s+(\w+)\s+"(.*)"\s*$', re.M)
# The banner init/version-timestamp.c links in last; version.c's has a placeholder UTS_VERSION ("# SMP ...").
BANNER = re.compile(rb"Linux version [^\n\0%]+\n")


def defines(*headers: Path) -> dict[str, str]:
    """The string #defines of generated headers (compile.h; utsversion.h since 5.19)."""
    found: dict[str, str] = {}
    for h in headers:
        if h.is_file():
            found.update(DEFINE.findall(h.read_text(errors="replace")))
    return found


def banner_of(release: str, d: dict[str, str]) -> str | None:
    """linux_banner as init/version-timestamp.c spells it, from the build's generated headers."""
    if not all(k in d for k in ("LINUX_COMPILE_BY", "LINUX_COMPILE_HOST", "LINUX_COMPILER", "UTS_VERSION")):
        return None
    return (f"Linux version {release} ({d['LINUX_COMPILE_BY']}@{d['LINUX_COMPILE_HOST']}) "
            f"({d['LINUX_COMPILER']}) {d['UTS_VERSION']}")


def of_build(kb: KernelBuild) -> KernelIdentity:
    """The identity of the kernel in kb's tree (its vmlinux, its generated headers)."""
    vmlinux = kb.tree / "vmlinux"
    if not vmlinux.is_file():
        raise InfraError(f"{vmlinux} is missing: the kernel build tree {kb.tree} has no vmlinux to tell its kernel "
                         f"apart by (rebuild it, or name the tree the board's kernel was built in)")
    data = vmlinux.read_bytes()
    gen = kb.tree / "include" / "generated"
    banner = banner_of(kb.release, defines(gen / "compile.h", gen / "utsversion.h"))
    if banner is None or (banner + "\n").encode() not in data:
        found = [m.decode(errors="replace").strip() for m in BANNER.findall(data)]
        ours = [b for b in found if b.startswith(f"Linux version {kb.release} ") and not re.search(r"\) # ", b)]
        if not ours:
            raise InfraError(f"{vmlinux} holds no banner for release {kb.release} (found: {found or 'none'}); "
                             f"the tree's headers and its vmlinux disagree: rebuild the kernel")
        banner = ours[-1]
    try:
        build_id = gnu_build_id(elf_notes(data))
    except (ValueError, IndexError) as e:
        raise InfraError(f"{vmlinux}: cannot read its ELF notes ({e})") from None
    return KernelIdentity(banner, build_id)
