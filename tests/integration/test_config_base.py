"""A board's config base, really configured (the configure step only, nothing compiled): Debian's 6.1
source unpacked once, then vexpress_defconfig + the harness's fragments cma, trace, kexec, a .config file
as the base, an unknown defconfig, and a fragment Kconfig cannot keep."""

import subprocess

import pytest

from harness.build import kernel
from harness.core.errors import InputError
from harness.spec.config import KernelSpec

pytestmark = pytest.mark.integration
FRAGMENTS = ("cma", "trace", "kexec")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The 6.1 tarball unpacked as kernel._unpack does it (about half a minute)."""
    tree = tmp_path_factory.mktemp("config-base") / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-xf", kernel.DEBIAN_KERNEL_TARBALL, "-C", tree, "--strip-components=1"], check=True)
    return tree


def _configure(spec, tree, tmp_path) -> tuple[dict[str, str], list[str]]:
    said = []
    kernel.configure_tree(spec, tree, tmp_path / "build.log", said.append)
    return kernel.parse_config((tree / ".config").read_text()), said


def _wanted(*fragments) -> dict[str, str]:
    return kernel.parse_config("\n".join(kernel.fragment_path(f).read_text() for f in fragments))


def test_a_defconfig_base_keeps_its_own_symbols_and_every_fragment_line(tree, tmp_path):
    got, said = _configure(KernelSpec(base="vexpress_defconfig", fragments=FRAGMENTS), tree, tmp_path)
    assert said == ["configuring: vexpress_defconfig + cma, trace, kexec"]
    # The defconfig's own (vexpress_defconfig sets them; allnoconfig + the fragments would not).
    assert got["CONFIG_ARCH_VEXPRESS"] == "y" and got["CONFIG_MMC_ARMMMCI"] == "y"
    assert got["CONFIG_SERIAL_AMBA_PL011_CONSOLE"] == "y"
    wanted = _wanted(*FRAGMENTS)
    assert {"CONFIG_CMA", "CONFIG_KPROBE_EVENTS", "CONFIG_KEXEC"} <= set(wanted)
    assert {s: got.get(s, "n") for s in wanted} == wanted


def test_a_config_file_base_is_the_file_with_the_fragments_merged(tree, tmp_path):
    base = tmp_path / "board.config"
    _configure(KernelSpec(base="vexpress_defconfig", fragments=()), tree, tmp_path)
    base.write_text((tree / ".config").read_text())
    assert "CONFIG_KEXEC=y" not in base.read_text()
    got, said = _configure(KernelSpec(base=str(base), fragments=FRAGMENTS), tree, tmp_path)
    assert said == [f"configuring: {base} + cma, trace, kexec"]
    assert got["CONFIG_ARCH_VEXPRESS"] == "y"
    wanted = _wanted(*FRAGMENTS)
    assert {s: got.get(s, "n") for s in wanted} == wanted


def test_an_unknown_defconfig_names_the_close_ones(tree, tmp_path):
    with pytest.raises(InputError, match=r"has no arch/arm/configs/vexpres_defconfig; close names there: .*"
                                         r"vexpress_defconfig"):
        kernel.configure_tree(KernelSpec(base="vexpres_defconfig", fragments=FRAGMENTS), tree, tmp_path / "log")


def test_a_fragment_kconfig_cannot_keep_fails_as_on_allnoconfig(tree, tmp_path):
    impossible = tmp_path / "impossible.config"
    impossible.write_text("CONFIG_CMA_HARNESS_NO_SUCH_SYMBOL=y\n")
    with pytest.raises(InputError, match=r"kernel config fragments ask for settings Kconfig did not keep .*: "
                                         r"CONFIG_CMA_HARNESS_NO_SUCH_SYMBOL=y \(got n\)$"):
        _configure(KernelSpec(base="vexpress_defconfig", fragments=(*FRAGMENTS, str(impossible))), tree, tmp_path)
