"""Scenario specs (frozen dataclasses), loaded from YAML and validated with errors that name file, key and allowed values."""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import InputError
from harness.spec.variants import EMBEDDED, series_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = PROJECT_ROOT / "images" / "scenarios" / "seed-2012.yaml"
ALLNOCONFIG = "allnoconfig"
# A defconfig target as `make` takes it: a file name of arch/arm/configs/, never a path.
DEFCONFIG_NAME = re.compile(r"^[A-Za-z0-9][\w.+-]*_defconfig$")


def base_kind(base: str) -> str | None:
    """What a `kernel.base` names: "allnoconfig", "defconfig" (a make target of arch/arm/configs/) or
    "file" (a .config: a path with a / in it, or a name ending in .config); None for anything else. Pure."""
    if base == ALLNOCONFIG:
        return ALLNOCONFIG
    if DEFCONFIG_NAME.match(base):
        return "defconfig"
    return "file" if "/" in base or base.endswith(".config") else None


def _range(lo: float, hi: float) -> dict:
    return {"range": (lo, hi)}


def _choice(*values: str) -> dict:
    return {"choices": values}


@dataclass(frozen=True)
class BoardSpec:
    kind: str = field(default="qemu", metadata=_choice("qemu"))
    cpus: int = field(default=2, metadata=_range(2, 8))
    memory_mib: int = field(default=128, metadata=_range(96, 2048))
    cpu: str = field(default="cortex-a15", metadata=_choice("cortex-a15", "cortex-a7"))
    boot_timeout_s: int = field(default=180, metadata=_range(10, 3600))
    # No console line and no loop record for this long means the guest hangs.
    hang_timeout_s: int = field(default=120, metadata=_range(10, 3600))


@dataclass(frozen=True)
class KernelSpec:
    # "debian" = /usr/src/linux-source-6.1.tar.xz; otherwise a directory or a .tar.* file, or
    # "git:<repository>@<commit id>" (one commit of a git tree, as `--baseline-ref`/`--patched-ref` name it).
    source: str = "debian"
    fragments: tuple[str, ...] = ("virt-arm", "cma", "trace")
    # A series under kernel-configs/patches/, or a path to a quilt `series` file; None = unpatched.
    patches: str | None = None
    # A developer's patch files (format-patch mails, an mbox, a diff), applied in order after `patches`;
    # their contents enter the kernel's cache key (`cma-harness ab --patch` fills it in).
    extra_patches: tuple[str, ...] = ()
    # What the fragments are applied to (base_kind): allnoconfig (the QEMU guest's minimal kernel, with
    # everything it needs named by the fragments), a NAME_defconfig of the source's arch/arm/configs/ (a
    # board's own, e.g. omap2plus_defconfig), or a path to a .config file.
    base: str = ALLNOCONFIG


@dataclass(frozen=True)
class AreaSpec:
    size_mib: int = field(default=56, metadata=_range(4, 512))
    alignment_mib: int = field(default=4, metadata=_range(4, 64))


@dataclass(frozen=True)
class ModuleSpec:
    chunks: int = field(default=56, metadata=_range(1, 64))
    chunk_kib: int = field(default=1024, metadata=_range(4, 16384))
    loops: int = field(default=100, metadata=_range(1, 1_000_000))
    gap_ms: int = field(default=100, metadata=_range(0, 60_000))
    cpu: int = field(default=0, metadata=_range(0, 7))
    # Classify each failed chunk (transient / LRU-caused / persistent) by retrying; off = seed-faithful count.
    attribution: bool = True
    # Fault injection for the harness's own tests: none, oops, panic, hang, warn, at loop fault_loop.
    fault: str = field(default="none", metadata=_choice("none", "oops", "panic", "hang", "warn"))
    fault_loop: int = field(default=0, metadata=_range(0, 1_000_000))


@dataclass(frozen=True)
class WorkloadSpec:
    # nojournal isolates the 2012 cause; journal is what a real device runs; none = idle area.
    profile: str = field(default="nojournal", metadata=_choice("nojournal", "journal", "none"))
    disk_mib: int = field(default=256, metadata=_range(32, 4096))
    # Metadata churn: each worker creates, lists and deletes this many small files per round, pinned to a CPU.
    churn_workers: int = field(default=0, metadata=_range(0, 8))
    files_per_round: int = field(default=200, metadata=_range(1, 100_000))
    # Metadata scan: workers that stat every file of a tree of tree_files small files made on the host.
    scan_workers: int = field(default=2, metadata=_range(0, 8))
    tree_files: int = field(default=1000, metadata=_range(0, 200_000))
    # Pause between a worker's rounds, ms: bursts of I/O with idle gaps, so LRU pins outlive a burst.
    idle_ms: int = field(default=1000, metadata=_range(0, 60_000))
    # ext4 block size. 4096: one buffer head per page, so a page is busy only for its own buffer's sake;
    # with 1024, four buffers share a page and a dirty or locked neighbour blurs the attribution.
    block_size: int = field(default=4096, metadata={"choices_int": (1024, 2048, 4096)})
    # Page-cache fill: a file of this size written and read back in a loop, so movable pages enter CMA.
    fill_mib: int = field(default=0, metadata=_range(0, 2048))
    # Extra seconds the workload runs before the test loop starts. The workload itself returns only once
    # every worker is warm (a first pass over the tree, a first churn round, a first fill), so none is needed.
    warmup_s: int = field(default=0, metadata=_range(0, 600))


@dataclass(frozen=True)
class TraceSpec:
    # kprobes and cma/migrate trace events on the failure path, read back as the run's trace.txt.
    enabled: bool = True
    # dump_page() of each page a failed range left behind, on the console (refcount, flags, aops, ino).
    page_dumps: bool = True
    # Per-CPU ring; a reader drains it all the time, so it only has to absorb bursts.
    buffer_kib: int = field(default=2048, metadata=_range(64, 65536))


@dataclass(frozen=True)
class Scenario:
    name: str = "seed-2012"
    board: BoardSpec = BoardSpec()
    kernel: KernelSpec = KernelSpec()
    area: AreaSpec = AreaSpec()
    module: ModuleSpec = ModuleSpec()
    workload: WorkloadSpec = WorkloadSpec()
    trace: TraceSpec = TraceSpec()
    # Named kernel variants for `ab`; each overrides fields of `kernel`.
    variants: dict[str, KernelSpec] = field(default_factory=dict)

    def kernel_of(self, variant: str) -> KernelSpec:
        """The kernel a run's variant name stands for; `cma-harness run` without --variant names the
        scenario's own kernel."""
        return self.variants.get(variant, self.kernel)

    def variant(self, name: str) -> KernelSpec:
        if name in self.variants:
            return self.variants[name]
        raise InputError(
            f"scenario {self.name!r} has no kernel variant {name!r}; known variants: "
            f"{', '.join(sorted(self.variants)) or '(none)'}. Add it under `variants:` in the scenario YAML."
        )


def load(path: Path | str | None = None) -> Scenario:
    """Load a scenario YAML (None = the embedded default) into a validated Scenario."""
    path = Path(path) if path else DEFAULT_SCENARIO
    if not path.exists():
        raise InputError(f"scenario file {path} does not exist; pass an existing YAML file or omit it for the default")
    try:
        with open(path, encoding="utf-8") as f:       # a stream, so YAML errors name the file and line
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}); a scenario is a YAML text file") from None
    return from_dict(data, source=str(path))


def from_dict(data: Any, source: str = "<dict>") -> Scenario:
    if isinstance(data, dict) and isinstance(data.get("variants"), dict):
        # A variant overrides the scenario's own kernel section, field by field.
        base = data.get("kernel") or {}
        data = {**data, "variants": {k: {**base, **(v or {})} for k, v in data["variants"].items()}}
    return check(_build(Scenario, data, source, ""), source)


def with_overrides(scn: Scenario, section: str, *, origin: str = "<override>", **values: Any) -> Scenario:
    """A copy of scn with some fields of one section replaced, validated like YAML input; errors name origin."""
    merged = {**dataclasses.asdict(getattr(scn, section)), **values}
    new = _build(type(getattr(scn, section)), merged, origin, section + ".")
    return check(dataclasses.replace(scn, **{section: new}), origin)


def revalidated(spec: Any) -> Any:
    """A section built in code, put through the same per-field checks as YAML input."""
    section = next((f.name for f in dataclasses.fields(Scenario) if f.type in (type(spec), type(spec).__name__)), "")
    return _build(type(spec), dataclasses.asdict(spec), "<code>", section + "." if section else "")


def check(scn: Scenario, source: str) -> Scenario:
    """Rules between fields, which per-field ranges cannot express; returns scn unchanged when they hold."""
    m, b = scn.module, scn.board
    if m.cpu >= b.cpus:
        raise InputError(f"{source}: `module.cpu` = {m.cpu} but the board has {b.cpus} CPUs (`board.cpus`); "
                         f"allowed: 0 to {b.cpus - 1}")
    if m.fault != "none" and m.fault_loop >= m.loops:
        raise InputError(f"{source}: `module.fault_loop` = {m.fault_loop} is never reached with `module.loops` = "
                         f"{m.loops}; allowed: 0 to {m.loops - 1}")
    embedded = ("debian", "debian-6.12")  # Debian's linux-source-6.1 and -6.12 (build/toolchain.py DEBIAN_SOURCES)
    for key, k in [("kernel", scn.kernel), *((f"variants.{n}", v) for n, v in scn.variants.items())]:
        if k.source.startswith("debian") and "/" not in k.source and k.source not in embedded:
            raise InputError(f"{source}: `{key}.source` = {k.source!r} is not an embedded kernel source; allowed: "
                             f"{', '.join(embedded)}, or a path to a kernel directory or .tar.* file")
        if base_kind(k.base) is None:
            raise InputError(f"{source}: `{key}.base` = {k.base!r} is not a config base; allowed: {ALLNOCONFIG}, a "
                             f"NAME_defconfig of the source's arch/arm/configs/ (e.g. omap2plus_defconfig), or a "
                             f"path to a .config file (with a / in it, or ending in .config)")
    for name, spec in scn.variants.items():
        # An embedded variant's name means its kernel (spec/variants.py): the model judges runs by it.
        if (known := EMBEDDED.get(name)) and series_name(spec.patches) != (known.series or "stock"):
            raise InputError(f"{source}: variant {name!r} names patch series {series_name(spec.patches)!r}, but "
                             f"{name!r} is an embedded variant whose series is {known.series or '(none: unpatched)'}; "
                             f"use `patches: {known.series}`" if known.series else
                             f"{source}: variant {name!r} is the unpatched kernel; drop its `patches:` or rename it")
    return scn


def as_dict(scn: Scenario) -> dict:
    return dataclasses.asdict(scn)


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{source}: `{prefix.rstrip('.') or '(top level)'}` must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(
            f"{source}: unknown key `{prefix}{unknown[0]}`; allowed keys here: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, fields[name].metadata, source, prefix + name)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, meta: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key + ".")
    if origin is dict:  # variants: name -> KernelSpec
        if not isinstance(value, dict):
            raise InputError(f"{source}: `{key}` must be a mapping of name to kernel spec")
        _, vtype = typing.get_args(hint)
        return {str(k): _build(vtype, v, source, f"{key}.{k}.") for k, v in value.items()}
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise InputError(f"{source}: `{key}` must be a list, got {value!r}")
        return tuple(str(v) for v in value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):  # str | None
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise InputError(f"{source}: `{key}` must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{source}: `{key}` must be an integer, got {value!r}")
        if "choices_int" in meta and value not in meta["choices_int"]:
            raise InputError(f"{source}: `{key}` = {value} is not allowed; allowed values: "
                             f"{', '.join(map(str, meta['choices_int']))}")
        lo, hi = meta.get("range", (None, None))
        if lo is not None and not lo <= value <= hi:
            raise InputError(f"{source}: `{key}` = {value} is out of range; allowed: {lo} to {hi}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise InputError(f"{source}: `{key}` must be a string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise InputError(f"{source}: `{key}` = {value!r} is not allowed; allowed values: {', '.join(choices)}")
        return value
    raise TypeError(f"unsupported field type {hint} for {key}")
