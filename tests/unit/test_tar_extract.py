"""Source tarballs are unpacked with xz on every core where the file is .xz (build/kernel.tar_extract)."""

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.build import kernel


def test_an_xz_tarball_is_decompressed_by_xz_on_every_core_and_others_by_tar_itself():
    assert kernel.tar_extract(Path("/usr/src/linux-source-6.1.tar.xz"))[:2] == ["tar", "--use-compress-program=xz -T0"]
    assert kernel.tar_extract(Path("linux.tar.gz")) == ["tar", "-xf", "linux.tar.gz"]


@pytest.mark.skipif(shutil.which("xz") is None, reason="xz is not installed")
def test_a_many_block_xz_tarball_unpacks_byte_for_byte(tmp_path):
    src = tmp_path / "linux-x"
    (src / "mm").mkdir(parents=True)
    for i in range(40):
        (src / "mm" / f"f{i}.c").write_bytes(bytes(range(256)) * (400 + i))
    plain = tmp_path / "linux.tar"
    with tarfile.open(plain, "w") as tf:
        tf.add(src, arcname="linux-x")
    subprocess.run(["xz", "-T2", "--block-size=65536", "-k", str(plain)], check=True)   # many blocks, as Debian's
    out = tmp_path / "tree"
    out.mkdir()
    subprocess.run([*kernel.tar_extract(Path(f"{plain}.xz")), "-C", str(out), "--strip-components=1"], check=True)
    for i in range(40):
        assert (out / "mm" / f"f{i}.c").read_bytes() == (src / "mm" / f"f{i}.c").read_bytes()
