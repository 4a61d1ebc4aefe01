"""kernel.compiler: the CC a tree is made with. A tree compiled before keeps its CC (Kbuild's record of
init/main.o); a fresh tarball tree gets the bare cross compiler, a git commit's or a directory's ccache."""

from harness.build import kernel
from harness.build.toolchain import CROSS_COMPILE

GCC = f"{CROSS_COMPILE}gcc"
CACHED = f"ccache {CROSS_COMPILE}gcc"


def _compiled(tree, line: str):
    (tree / "init").mkdir(parents=True)
    (tree / "init" / ".main.o.cmd").write_text(line + "\n\nsource_init/main.o := init/main.c\n")
    return tree


def test_a_fresh_tree_of_a_tarball_is_compiled_without_ccache(tmp_path):
    tarball = tmp_path / "linux-source-6.1.tar.xz"
    tarball.write_bytes(b"")
    assert kernel.compiler(tmp_path / "tree", str(tarball)) == GCC


def test_a_fresh_tree_of_a_directory_or_a_git_commit_is_compiled_with_ccache(tmp_path):
    (tmp_path / "linux").mkdir()
    assert kernel.compiler(tmp_path / "tree", str(tmp_path / "linux")) == CACHED
    assert kernel.compiler(tmp_path / "tree", f"git:{tmp_path / 'linux'}@v6.1") == CACHED


def test_a_tree_compiled_before_keeps_its_compiler_whatever_its_source(tmp_path):
    tarball = tmp_path / "linux.tar.xz"
    tarball.write_bytes(b"")
    old = _compiled(tmp_path / "a", f"cmd_init/main.o := {CACHED} -Wp,-MMD,init/.main.o.d -nostdinc")
    assert kernel.compiler(old, str(tarball)) == CACHED             # built with ccache before this rule
    plain = _compiled(tmp_path / "b", f"savedcmd_init/main.o := {GCC} -Wp,-MMD,init/.main.o.d -nostdinc")
    assert kernel.compiler(plain, "git:/src/linux@v6.12") == GCC
