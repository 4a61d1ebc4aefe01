"""A kernel module's .modinfo strings ("key=value\\0" in the ELF file), and the vermagic rule. Pure: bytes in."""

from __future__ import annotations

import re

MODINFO_STRING = re.compile(rb"(?<=\0)(vermagic|name|license|depends)=([^\0]*)\0")


def modinfo(data: bytes) -> dict[str, str]:
    """The module's modinfo strings that the harness reads (the first of each key)."""
    out: dict[str, str] = {}
    for m in MODINFO_STRING.finditer(data):
        out.setdefault(m.group(1).decode(), m.group(2).decode("utf-8", "replace"))
    return out


def vermagic_release(vermagic: str) -> str:
    """The kernel release a vermagic names: its first word ("6.1.192 SMP mod_unload ARMv7 p2v8 " -> 6.1.192)."""
    return vermagic.split()[0] if vermagic.split() else ""


def vermagic_mismatch(vermagic: str | None, running_release: str) -> str | None:
    """Why the module cannot load on a kernel whose `uname -r` is running_release, or None when it can."""
    if not vermagic:
        return "the module has no vermagic string (not built by kbuild?)"
    built_for = vermagic_release(vermagic)
    if built_for != running_release.strip():
        return (f"the module was built for kernel {built_for} (vermagic {vermagic.strip()!r}) but the board runs "
                f"{running_release.strip()} (uname -r)")
    return None
