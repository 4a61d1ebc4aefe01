"""The demo's two kernels share the tarball's files by hard link (harness/build/sibling_tree.py: whichever
was built second started from the first's tree). That is only safe while no step writes such a file in
place: GNU patch replaces the files it patches, and make writes objects, not sources. Checked here on the
real cached trees, against the tarball itself (`tar --compare`): each tree's sources differ from the
tarball's only in the files its own patches touch, whichever of the two was built first."""

import re
import subprocess

import pytest

from harness.build import kernel, preflight
from harness.build.toolchain import DEBIAN_KERNEL_TARBALL

pytestmark = pytest.mark.integration

# tar --compare's lines for a member whose bytes differ (not its mode or its time, which a revert changes).
CONTENT = re.compile(r"^(?P<path>[^:]+): (Contents|Size) differ")      # names as stripped


def _differing(tree) -> set[str]:
    r = subprocess.run(["tar", "--compare", "-f", str(DEBIAN_KERNEL_TARBALL), "-C", str(tree), "--strip-components=1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stderr[-2000:]        # 1: differences found
    # The top folder's member, with its one component stripped, is named "" ("tar: : Warning: Cannot stat").
    gone = [l for l in (r.stdout + r.stderr).splitlines() if "Cannot stat" in l and not l.startswith("tar: : ")]
    assert not gone, f"files of the tarball are gone from {tree}: {gone[:5]}"
    return {m.group("path") for line in r.stdout.splitlines() if (m := CONTENT.match(line))}


def _touched(spec) -> set[str]:
    return {path for p in preflight.patch_texts(spec) for path in preflight.touched(p.text)}


def test_each_demo_tree_differs_from_the_tarball_only_where_its_own_patches_do(seed):
    builds = {v: kernel.build(seed.variant(v)) for v in ("stock", "reintroduce-2012")}
    trees = {v: b.tree for v, b in builds.items()}
    touched = {v: _touched(seed.variant(v)) for v in trees}
    assert touched["stock"] == set() and {"fs/buffer.c", "mm/swap.c", "block/fops.c"} <= touched["reintroduce-2012"]
    for variant, tree in trees.items():
        assert _differing(tree) == touched[variant], variant


def test_each_demo_zimage_carries_its_own_kernel(seed):
    """The decompressor's piggy.o `.incbin`s the compressed kernel (piggy_data): a piggy.o left over from
    the sibling's build, or handed back by a compiler cache that missed the .incbin (ccache's depend mode
    did), makes a zImage that boots the other kernel. Its payload must be this tree's piggy_data."""
    payloads = {}
    for variant in ("stock", "reintroduce-2012"):
        compressed = kernel.build(seed.variant(variant)).tree / "arch/arm/boot/compressed"
        headers = subprocess.run(["arm-linux-gnueabihf-objdump", "-h", str(compressed / "piggy.o")],
                                 capture_output=True, text=True, check=True).stdout
        size = next(int(line.split()[2], 16) for line in headers.splitlines() if ".piggydata" in line)
        payloads[variant] = (compressed / "piggy_data").read_bytes()
        assert size == len(payloads[variant]), f"{variant}: piggy.o carries {size} bytes, piggy_data is {len(payloads[variant])}"
    assert payloads["stock"] != payloads["reintroduce-2012"]


def test_the_second_demo_kernel_compiled_only_what_its_patches_touch(seed):
    """Whichever demo kernel was built second started from the first one's tree and kept its CC
    (kernel.compiler reads it from Kbuild's record): another CC would change every object's command line
    and make would compile all ~700 objects again. Its build log compiles the patched files and little else."""
    compiled, compilers = {}, {}
    for variant in ("stock", "reintroduce-2012"):
        build = kernel.build(seed.variant(variant))
        log = (build.tree.parent / "build.log").read_text(errors="replace")
        compiled[variant] = sum(1 for line in log.splitlines() if line.startswith("  CC "))
        compilers[variant] = kernel.compiler(build.tree, str(kernel.source_path(seed.variant(variant))))
    assert min(compiled.values()) <= 20, compiled
    assert len(set(compilers.values())) == 1, compilers
