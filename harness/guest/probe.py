"""`board check`'s look at a board: one shell snippet that prints `key=value` lines, and its parser.

The snippet only reads (and mounts tracefs where it is not mounted, as a run would); every line is
printed whatever the earlier ones found, so one missing feature never hides the next."""

from __future__ import annotations

import shlex

from harness.guest.tracing import PROBES, TRACEFS

CONFIG_OPTIONS = ("CONFIG_CMA", "CONFIG_DMA_CMA", "CONFIG_CMA_SYSFS", "CONFIG_MIGRATION", "CONFIG_KPROBES",
                  "CONFIG_KPROBE_EVENTS", "CONFIG_FTRACE", "CONFIG_DYNAMIC_DEBUG", "CONFIG_MODULES")


def script(disk: str, workdir: str) -> str:
    """The probe: kernel, CPUs, memory, CMA areas, the test device in the device tree, tracefs and the
    kprobe symbols, module loading, /dev/kmsg, the disk device and the work folder."""
    d, w = shlex.quote(disk), shlex.quote(workdir)
    symbols = " ".join(sorted({p.symbol for p in PROBES}))
    lines = [
        'echo "release=$(uname -r)"', 'echo "version=$(uname -v)"', 'echo "machine=$(uname -m)"',
        "echo \"cpus=$(grep -c '^processor' /proc/cpuinfo)\"",
        "for k in MemTotal CmaTotal CmaFree; do "
        "echo \"$k=$(awk -v k=$k: '$1 == k { print $2 }' /proc/meminfo)\"; done",
        'echo "cmdline=$(cat /proc/cmdline)"',
        "for a in /sys/kernel/mm/cma/*/; do [ -d \"$a\" ] && echo \"cma_area=$(basename \"$a\")\"; done",
        "[ -d /proc/device-tree/cma-harness-device ] && echo dt_test_device=yes || echo dt_test_device=no",
        "for n in /proc/device-tree/reserved-memory/*; do [ -f \"$n/compatible\" ] && "
        "echo \"dt_reserved=$(basename \"$n\") $(tr '\\0' ' ' < \"$n/compatible\")"
        "$([ -f \"$n/reusable\" ] && echo ' reusable')$([ -f \"$n/linux,cma-default\" ] && echo ' default')\"; done",
        f"[ -d {TRACEFS}/events ] || mount -t tracefs nodev {TRACEFS} 2>/dev/null",
        f"[ -d {TRACEFS}/events ] && echo tracefs=yes || echo tracefs=no",
        f"[ -f {TRACEFS}/kprobe_events ] && echo kprobe_events=yes || echo kprobe_events=no",
        f"for s in {symbols}; do grep -q \" $s\\$\" /proc/kallsyms && echo \"symbol=$s yes\" || "
        "echo \"symbol=$s no\"; done",
        "[ -f /proc/modules ] && echo modules=yes || echo modules=no",
        'echo "modules_disabled=$(cat /proc/sys/kernel/modules_disabled 2>/dev/null)"',
        "command -v insmod >/dev/null && echo insmod=yes || echo insmod=no",
        "[ -r /dev/kmsg ] && echo kmsg=yes || echo kmsg=no",
        "if [ -r /proc/config.gz ]; then zcat /proc/config.gz | grep -E '^(" + "|".join(CONFIG_OPTIONS) + ")='"
        " | sed 's/^/config=/'; else echo config=unavailable; fi",
        f"[ -b {d} ] && echo \"disk_mib=$(( $(cat /sys/class/block/$(basename {d})/size) / 2048 ))\" "
        "|| echo disk_mib=none",
        f"mkdir -p {w} 2>/dev/null && touch {w}/.probe 2>/dev/null && rm -f {w}/.probe && "
        f"echo \"workdir_free_mib=$(df -m {w} | awk 'NR == 2 {{ print $4 }}')\" || echo workdir_free_mib=none",
    ]
    return "\n".join(lines)


def parse(text: str) -> dict:
    """The snippet's output as facts: scalars by key; `cma_area`, `dt_reserved` as lists; `symbol` and
    `config` as dicts. Lines that are not `key=value` (a shell's complaint) are kept under `noise`."""
    facts: dict = {"cma_area": [], "dt_reserved": [], "symbol": {}, "config": {}, "noise": []}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key.replace("_", "").isalnum():
            if line.strip():
                facts["noise"].append(line)
            continue
        if key in ("cma_area", "dt_reserved"):
            facts[key].append(" ".join(value.split()))
        elif key == "symbol":
            name, _, found = value.partition(" ")
            facts["symbol"][name] = found == "yes"
        elif key == "config":
            if value == "unavailable":
                facts["config"] = None
            elif facts["config"] is not None:
                option, _, setting = value.partition("=")
                facts["config"][option] = setting
        else:
            facts[key] = value
    return facts
