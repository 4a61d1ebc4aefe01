"""Which kernel is which: a build's banner (what /proc/version prints) and its GNU build ID (vmlinux's
NT_GNU_BUILD_ID note, which the running kernel shows in /sys/kernel/notes). Pure: bytes and text in.

The harness builds reproducibly (KBUILD_BUILD_TIMESTAMP, _USER and _HOST fixed), so two variants of one
release print the same banner, "#1 SMP 1970-01-01" and all. The build ID is the linker's SHA-1 over the
linked image (`--build-id=sha1`, always passed for vmlinux): it differs as soon as one byte of code does,
and stays the same for a rebuild of the same inputs. The banner says which release and toolchain; the
build ID says which build.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NT_GNU_BUILD_ID = 3
SHT_NOTE = 7


@dataclass(frozen=True)
class KernelIdentity:
    banner: str                 # "Linux version 6.1.192 (cma-harness@cma-harness) (...) #1 SMP 1970-01-01"
    build_id: str | None        # hex; None when the kernel shows no build ID note

    def as_dict(self) -> dict:
        return {"banner": self.banner, "build_id": self.build_id}


@dataclass(frozen=True)
class RunningKernel:
    """What the board says about the kernel it runs now (IDENTITY_SCRIPT's output)."""
    identity: KernelIdentity
    boot_id: str | None         # /proc/sys/kernel/random/boot_id: new on every boot, kexec included
    uptime_s: float | None


def parse_notes(data: bytes, endian: str = "<") -> list[tuple[str, int, bytes]]:
    """ELF notes (a SHT_NOTE section, or /sys/kernel/notes) as (name, type, descriptor); each name and
    descriptor is padded to 4 bytes. A truncated note ends the list."""
    out, off = [], 0
    while off + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from(endian + "III", data, off)
        off += 12
        name_end, desc_at = off + namesz, off + _pad4(namesz)
        desc_end = desc_at + descsz
        if desc_end > len(data):
            break
        out.append((data[off:name_end].rstrip(b"\0").decode("ascii", "replace"), kind, data[desc_at:desc_end]))
        off = desc_at + _pad4(descsz)
    return out


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def gnu_build_id(notes: list[tuple[str, int, bytes]]) -> str | None:
    return next((desc.hex() for name, kind, desc in notes if name == "GNU" and kind == NT_GNU_BUILD_ID), None)


def elf_notes(elf: bytes) -> list[tuple[str, int, bytes]]:
    """Every note of an ELF file's SHT_NOTE sections (32 or 64 bit, either byte order)."""
    if elf[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    wide, endian = elf[4] == 2, "<" if elf[5] == 1 else ">"
    if wide:
        shoff, = struct.unpack_from(endian + "Q", elf, 0x28)
        shentsize, shnum = struct.unpack_from(endian + "HH", elf, 0x3A)
    else:
        shoff, = struct.unpack_from(endian + "I", elf, 0x20)
        shentsize, shnum = struct.unpack_from(endian + "HH", elf, 0x2E)
    notes = []
    for i in range(shnum):
        at = shoff + i * shentsize
        sh_type, = struct.unpack_from(endian + "I", elf, at + 4)
        if sh_type != SHT_NOTE:
            continue
        if wide:
            offset, size = struct.unpack_from(endian + "QQ", elf, at + 0x18)
        else:
            offset, size = struct.unpack_from(endian + "II", elf, at + 0x10)
        notes += parse_notes(elf[offset:offset + size], endian)
    return notes


# Printed by IDENTITY_SCRIPT (harness/boards/kexec.py) after /proc/version's line.
NOTES_TAG, BOOT_ID_TAG, UPTIME_TAG = "@@notes ", "@@boot_id ", "@@uptime "


def parse_running(text: str) -> RunningKernel:
    """/proc/version's line, then the tagged lines: the notes as hex, the boot ID, the uptime."""
    lines = text.splitlines()
    banner = next((l.strip() for l in lines if l.startswith("Linux version ")), "")
    tagged = {tag: l[len(tag):].strip() for l in lines for tag in (NOTES_TAG, BOOT_ID_TAG, UPTIME_TAG)
              if l.startswith(tag)}
    notes_hex = "".join(tagged.get(NOTES_TAG, "").split())
    try:
        build_id = gnu_build_id(parse_notes(bytes.fromhex(notes_hex))) if notes_hex else None
    except ValueError:
        build_id = None
    try:
        uptime = float(tagged[UPTIME_TAG]) if tagged.get(UPTIME_TAG) else None
    except ValueError:
        uptime = None
    return RunningKernel(KernelIdentity(banner, build_id), tagged.get(BOOT_ID_TAG) or None, uptime)


def mismatch(expected: KernelIdentity, running: KernelIdentity) -> str | None:
    """Why the running kernel is not the expected build (None: it is). The banner must be equal; the
    build ID too, when both sides have one (it is what tells two variants of one release apart)."""
    if running.banner != expected.banner:
        return f"the board runs {running.banner!r}, not the build's {expected.banner!r}"
    if expected.build_id and running.build_id and running.build_id != expected.build_id:
        return (f"the board runs a kernel with build ID {running.build_id}, not the build's {expected.build_id} "
                f"(the same banner, {expected.banner!r}: another variant of the same release)")
    return None


def checked_by(expected: KernelIdentity, running: KernelIdentity) -> list[str]:
    """What a match rests on: the banner always, the build ID when both sides have one."""
    return ["/proc/version"] + (["build ID"] if expected.build_id and running.build_id else [])
