"""Is a board ready for a scenario? The probe's facts (guest/probe.py) judged item by item. Pure.

Each finding says what was found and, when it stops the scenario, how to fix it on the board."""

from __future__ import annotations

from dataclasses import dataclass

from harness.parsers.modinfo import vermagic_mismatch
from harness.spec.boards import BoardFile
from harness.spec.config import Scenario

OK, MISSING, NOTE = "ok", "missing", "note"


@dataclass(frozen=True)
class Finding:
    item: str
    status: str         # ok: the scenario has it; missing: the scenario cannot run; note: worth knowing
    found: str
    fix: str = ""


def _int(facts: dict, key: str) -> int | None:
    try:
        return int(facts.get(key, ""))
    except ValueError:
        return None


def judge(facts: dict, scn: Scenario, board: BoardFile, vermagic: str | None = None) -> list[Finding]:
    """Findings in the order a run meets them; vermagic, when given, is the harness's module's."""
    out = [Finding("kernel", OK if facts.get("release") else MISSING,
                   f"{facts.get('release', '?')} {facts.get('version', '')} ({facts.get('machine', '?')})".strip())]
    cpus = _int(facts, "cpus") or 0
    out.append(Finding("CPUs", OK if cpus > scn.module.cpu else MISSING, str(cpus),
                       "" if cpus > scn.module.cpu else f"the loop thread is pinned to CPU {scn.module.cpu} "
                       f"(module.cpu): set it below {cpus} in the scenario"))
    out.append(Finding("memory", NOTE, f"{(_int(facts, 'MemTotal') or 0) // 1024} MiB"))
    out += _area(facts, scn, board)
    out += _tracing(facts, scn)
    out += _modules(facts, vermagic)
    if board.over_ssh:
        out.append(Finding("/dev/kmsg", OK if facts.get("kmsg") == "yes" else MISSING,
                           "readable" if facts.get("kmsg") == "yes" else "not readable",
                           "" if facts.get("kmsg") == "yes" else "log in as root (ssh.user), or set "
                           "kernel.dmesg_restrict=0 and make /dev/kmsg readable"))
    out += _storage(facts, scn, board)
    return out


def _area(facts: dict, scn: Scenario, board: BoardFile) -> list[Finding]:
    need_kib = scn.module.chunks * scn.module.chunk_kib
    cma_kib = _int(facts, "CmaTotal")
    areas = ", ".join(facts.get("cma_area") or []) or "none in /sys/kernel/mm/cma"
    pool = Finding("CMA", OK if cma_kib else MISSING, f"CmaTotal {cma_kib or 0} kB; areas: {areas}",
                   "" if cma_kib else "build the kernel with CONFIG_CMA and CONFIG_DMA_CMA (kernel-configs/cma.config)")
    if board.area.method == "default":
        enough = (cma_kib or 0) >= need_kib
        return [pool, Finding("default CMA pool", OK if enough else MISSING,
                              f"{(cma_kib or 0) // 1024} MiB, the loop takes {need_kib // 1024} MiB at once",
                              "" if enough else f"boot with cma={max(need_kib // 1024 + 16, 64)}M on the kernel "
                              "command line (or a `linux,cma-default` reserved-memory node of that size); other "
                              "drivers hold parts of a default pool, so leave room")]
    node = [r for r in facts.get("dt_reserved") or [] if r.startswith("cma-harness-area")]
    dedicated = facts.get("dt_test_device") == "yes" and bool(node)
    how = ("the harness adds it to QEMU's own DTB: is this the harness's kernel and DTB?" if board.kind != "ssh" else
           "boot the DTB `cma-harness build --board FILE` writes (area.board_dtb: the board's own DTB with the "
           "area added), or set `area.method: default` to use the board's default CMA pool")
    return [pool, Finding("dedicated test area", OK if dedicated else MISSING,
                          node[0] if dedicated else "no cma-harness-area node and test device in the device tree",
                          "" if dedicated else how)]


def _tracing(facts: dict, scn: Scenario) -> list[Finding]:
    if not scn.trace.enabled:
        return [Finding("tracing", NOTE, "off in the scenario (trace.enabled: false)")]
    out = [Finding("tracefs", OK if facts.get("tracefs") == "yes" else MISSING,
                   "mounted" if facts.get("tracefs") == "yes" else "not available",
                   "" if facts.get("tracefs") == "yes" else "build with CONFIG_FTRACE (kernel-configs/trace.config), "
                   "or set trace.enabled: false in the scenario (no busy traces then)")]
    kprobes = facts.get("kprobe_events") == "yes"
    out.append(Finding("kprobes", OK if kprobes else MISSING, "kprobe_events present" if kprobes else "no kprobe_events",
                       "" if kprobes else "build with CONFIG_KPROBES and CONFIG_KPROBE_EVENTS (kernel-configs/trace.config)"))
    absent = sorted(s for s, found in (facts.get("symbol") or {}).items() if not found)
    out.append(Finding("probed functions", OK if not absent else MISSING,
                       "all in /proc/kallsyms" if not absent else f"not in /proc/kallsyms: {', '.join(absent)}",
                       "" if not absent else "inlined or renamed in this kernel: the failure path's probes "
                       "(harness/guest/tracing.py PROBES) need porting to it"))
    return out


def _modules(facts: dict, vermagic: str | None) -> list[Finding]:
    loadable = facts.get("modules") == "yes" and facts.get("modules_disabled") in ("0", "") \
        and facts.get("insmod") == "yes"
    out = [Finding("module loading", OK if loadable else MISSING,
                   f"/proc/modules {facts.get('modules', '?')}, modules_disabled={facts.get('modules_disabled', '?')}, "
                   f"insmod {facts.get('insmod', '?')}",
                   "" if loadable else "a kernel with CONFIG_MODULES, kernel.modules_disabled=0 and busybox or kmod's "
                   "insmod on the PATH")]
    if vermagic is not None:
        problem = vermagic_mismatch(vermagic, facts.get("release", ""))
        out.append(Finding("module vermagic", MISSING if problem else OK, problem or vermagic.strip(),
                           "boot the kernel the harness built (`cma-harness build --board FILE`), or set "
                           "kernel.tree to the running kernel's build tree" if problem else ""))
    return out


def _storage(facts: dict, scn: Scenario, board: BoardFile) -> list[Finding]:
    disk = _int(facts, "disk_mib")
    need = scn.workload.disk_mib
    out = [Finding(f"disk {board.disk.device}", OK if disk is not None and disk >= need else MISSING,
                   "no such block device" if disk is None else f"{disk} MiB (the workload needs {need} MiB)",
                   "" if disk is not None and disk >= need else
                   "set disk.device to a spare block device (its contents are lost) of at least workload.disk_mib")]
    free = _int(facts, "workdir_free_mib")
    workdir = board.ssh.workdir if board.ssh else "/tmp"
    if board.over_ssh:
        out.append(Finding(f"work folder {workdir}", OK if free is not None else MISSING,
                           "not writable" if free is None else f"writable, {free} MiB free",
                           "" if free is not None else "set ssh.workdir to a folder the user can write"))
    return out


def ready(findings: list[Finding]) -> bool:
    return all(f.status != MISSING for f in findings)
