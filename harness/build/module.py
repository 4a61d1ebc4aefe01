"""The test module: parameters validated, test-modules/*.j2 rendered (StrictUndefined), built against a kernel, cached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from harness.build import cache
from harness.core import proc
from harness.spec.config import PROJECT_ROOT, ModuleSpec, revalidated
from harness.core.errors import InfraError
from harness.build.kernel import MAKE_VARS, KernelBuild, build_env

TEMPLATES_DIR = PROJECT_ROOT / "test-modules"
MODULE_NAME = "cma_harness"


@dataclass(frozen=True)
class ModuleBuild:
    key: str
    ko: Path
    source: Path


def template_params(spec: ModuleSpec) -> dict:
    """The values the C template sees; spec is already validated (types and ranges) by config."""
    return {
        "module_name": MODULE_NAME,
        "chunks": spec.chunks,
        "chunk_size": spec.chunk_kib * 1024,
        "loops": spec.loops,
        "gap_ms": spec.gap_ms,
        "cpu": spec.cpu,
        "attribution": spec.attribution,
        "fault": spec.fault,
        "fault_loop": spec.fault_loop,
    }


def render(spec: ModuleSpec) -> dict[str, str]:
    """{filename: text} of the module sources; an undefined template variable is an error, never empty."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # C source, not HTML: values are validated integers/booleans/choices instead
    )
    # Re-validated through the config loader: a ModuleSpec built in code obeys the YAML ranges too.
    params = template_params(revalidated(spec))
    return {
        f"{MODULE_NAME}.c": env.get_template("cma_harness.c.j2").render(params),
        "Kbuild": env.get_template("Kbuild.j2").render(params),
    }


def build(spec: ModuleSpec, kernel: KernelBuild, *, store: cache.Store | None = None, progress=lambda s: None) -> ModuleBuild:
    store = store or cache.Store("module")
    sources = render(spec)
    key = cache.digest({"kernel": kernel.key, "sources": sources})
    with store.lock(key):
        if not store.has(key):
            progress(f"building test module {key}")
            with store.building(key, {"kernel": kernel.key, "params": template_params(spec)}) as work:
                for name, text in sources.items():
                    (work / name).write_text(text)
                try:
                    proc.run(["make", "-C", kernel.tree, *MAKE_VARS, f"M={work}", "modules"],
                             env=build_env(kernel.tree), log_path=work / "build.log")
                except proc.CommandError as e:
                    raise InfraError("test module build failed:\n" + "\n".join(e.tail[-15:])) from e
                if not (work / f"{MODULE_NAME}.ko").exists():
                    raise InfraError(f"test module build produced no {MODULE_NAME}.ko; see {work / 'build.log'}")
    path = store.path(key)
    return ModuleBuild(key, path / f"{MODULE_NAME}.ko", path / f"{MODULE_NAME}.c")
