"""Which kernel is which: the banner and the GNU build ID, read from a build tree (its vmlinux and generated
headers) and from a running kernel (/proc/version, /sys/kernel/notes as od prints it)."""

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.build import build_identity
from harness.build.kernel import KernelBuild
from harness.core.errors import InfraError
from harness.parsers import kernel_identity as ki
from tests.conftest import FIXTURES

BANNER = ("Linux version 6.1.192 (cma-harness@cma-harness) (arm-linux-gnueabihf-gcc (Debian 12.2.0-14) 12.2.0, "
          "GNU ld (GNU Binutils for Debian) 2.40) #1 SMP 1970-01-01")
BUILD_ID = "4b9436b299449a637fe1ffb93d08c50eaccab8c6"


def note(name: bytes, kind: int, desc: bytes) -> bytes:
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name) + 1, len(desc), kind) + pad(name + b"\0") + pad(desc)


# As an ARM kernel's /sys/kernel/notes holds them: the build ID, then Linux's own two notes.
NOTES = note(b"GNU", 3, bytes.fromhex(BUILD_ID)) + note(b"Linux", 0x100, b"\0" * 4) + note(b"Linux", 0x101, b"\0")


def elf32(sections: list[tuple[int, bytes]], extra: bytes = b"") -> bytes:
    """A minimal little-endian ELF32 file: a null section, then (type, contents) sections, then `extra`."""
    body, offsets = b"", []
    for _, data in sections:
        offsets.append(52 + len(body))
        body += data
    body += extra
    shoff = 52 + len(body)
    header = b"\x7fELF" + bytes([1, 1, 1]) + b"\0" * 9 + struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, 0, 0, shoff, 0, 52,
                                                                      0, 0, 40, len(sections) + 1, 0)
    shdrs = b"\0" * 40 + b"".join(struct.pack("<IIIIIIIIII", 0, t, 0, 0, off, len(d), 0, 0, 4, 0)
                                  for (t, d), off in zip(sections, offsets))
    return header + body + shdrs


def test_notes_parse_with_their_padding_and_the_build_id_is_the_gnu_one():
    notes = ki.parse_notes(NOTES)
    assert [(n, k) for n, k, _ in notes] == [("GNU", 3), ("Linux", 0x100), ("Linux", 0x101)]
    assert ki.gnu_build_id(notes) == BUILD_ID
    assert len(ki.parse_notes(NOTES[:-4])) == 2          # the last note cut short: dropped


def test_elf_notes_are_found_by_section_type_in_32_bit_files():
    elf = elf32([(1, b"code" * 10), (ki.SHT_NOTE, NOTES)])
    assert ki.gnu_build_id(ki.elf_notes(elf)) == BUILD_ID
    with pytest.raises(ValueError):
        ki.elf_notes(b"MZ not an elf")


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf is not installed")
def test_elf_notes_agree_with_readelf_on_a_64_bit_host_binary():
    binary = Path(shutil.which("true")).resolve()
    text = subprocess.run(["readelf", "-n", binary], capture_output=True, text=True).stdout
    want = next((l.split(":")[1].strip() for l in text.splitlines() if "Build ID:" in l), None)
    if want is None:
        pytest.skip(f"{binary} has no build ID note")
    assert ki.gnu_build_id(ki.elf_notes(binary.read_bytes())) == want


def test_a_running_kernel_is_read_from_the_identity_scripts_output():
    text = (f"{BANNER}\n{ki.NOTES_TAG}{NOTES.hex()}\n{ki.BOOT_ID_TAG}6b0e2c4a-0000-4000-8000-000000000001\n"
            f"{ki.UPTIME_TAG}12.34\n")
    r = ki.parse_running(text)
    assert r.identity == ki.KernelIdentity(BANNER, BUILD_ID)
    assert r.boot_id.startswith("6b0e2c4a") and r.uptime_s == 12.34
    bare = ki.parse_running(f"{BANNER}\n{ki.NOTES_TAG}\n{ki.BOOT_ID_TAG}\n{ki.UPTIME_TAG}x\n")
    assert bare.identity.build_id is None and bare.boot_id is None and bare.uptime_s is None


def test_two_variants_of_one_release_differ_by_build_id_alone():
    """The harness builds reproducibly: stock and reintroduce-2012 print the same banner."""
    stock, variant = ki.KernelIdentity(BANNER, BUILD_ID), ki.KernelIdentity(BANNER, "3dbae2ba" + "0" * 32)
    problem = ki.mismatch(variant, stock)
    assert problem and BUILD_ID in problem and "another variant of the same release" in problem
    assert ki.mismatch(stock, stock) is None and ki.checked_by(stock, stock) == ["/proc/version", "build ID"]
    other = ki.KernelIdentity(BANNER.replace("6.1.192", "6.12.117"), BUILD_ID)
    assert "6.12.117" in ki.mismatch(stock, other)
    # No build ID on the board: the banner alone, and the record says so.
    no_id = ki.KernelIdentity(BANNER, None)
    assert ki.mismatch(stock, no_id) is None and ki.checked_by(stock, no_id) == ["/proc/version"]


def _tree(tmp_path: Path, banners: list[str], headers: bool = True) -> KernelBuild:
    tree = tmp_path / "tree"
    (tree / "include" / "config").mkdir(parents=True)
    (tree / "include" / "config" / "kernel.release").write_text("6.1.192\n")
    gen = tree / "include" / "generated"
    gen.mkdir()
    if headers:
        (gen / "compile.h").write_text('#define UTS_MACHINE\t\t"arm"\n#define LINUX_COMPILE_BY\t"cma-harness"\n'
                                       '#define LINUX_COMPILE_HOST\t"cma-harness"\n#define LINUX_COMPILER\t\t'
                                       '"arm-linux-gnueabihf-gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for '
                                       'Debian) 2.40"\n')
        (gen / "utsversion.h").write_text('#define UTS_VERSION "#1 SMP 1970-01-01"\n')
    extra = b"".join(b.encode() + b"\n\0" for b in banners)
    (tree / "vmlinux").write_bytes(elf32([(ki.SHT_NOTE, NOTES)], extra))
    return KernelBuild("k", tree)


def test_a_build_is_known_by_its_headers_banner_and_its_vmlinux_build_id(tmp_path):
    # vmlinux holds version.c's banner with the placeholder version too ("# SMP"): not the one printed.
    kb = _tree(tmp_path, [BANNER.replace("#1 SMP", "# SMP"), BANNER])
    assert build_identity.of_build(kb) == ki.KernelIdentity(BANNER, BUILD_ID)


def test_without_the_headers_the_banner_comes_from_vmlinux_never_the_placeholder(tmp_path):
    kb = _tree(tmp_path, [BANNER.replace("#1 SMP", "# SMP"), BANNER], headers=False)
    assert build_identity.of_build(kb).banner == BANNER


def test_a_tree_without_vmlinux_or_banner_is_an_infra_error(tmp_path):
    kb = _tree(tmp_path, [])
    with pytest.raises(InfraError, match="holds no banner for release 6.1.192"):
        build_identity.of_build(kb)
    (kb.tree / "vmlinux").unlink()
    with pytest.raises(InfraError, match="has no vmlinux"):
        build_identity.of_build(kb)


def test_a_real_guest_s_answer_names_its_build_by_id():
    """Recorded on the test bed after a kexec into reintroduce-2012 (tests/fixtures/kexec-identity/SOURCE.md):
    the banner is the one every 6.1 variant prints; the build ID in /sys/kernel/notes is that build's."""
    r = ki.parse_running((FIXTURES / "kexec-identity" / "reintroduce-2012.txt").read_text())
    assert r.identity.banner == BANNER
    assert r.identity.build_id == "469c54956d0ebec321b7f2a521595602bb12c744"
    assert len(r.boot_id) == 36 and 0 < r.uptime_s < 60
    stock = ki.KernelIdentity(BANNER, "b07dd6ca6972278a367ea04ee809cea4243f1ec7")
    assert "another variant of the same release" in ki.mismatch(stock, r.identity)
