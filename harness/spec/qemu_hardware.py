"""The QEMU `virt` machine for a board spec: the arguments that define the hardware (and so the DTB)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.spec.config import BoardSpec


@dataclass(frozen=True)
class QemuHardware:
    cpus: int
    memory_mib: int
    cpu: str = "cortex-a15"
    # highmem=off: a 32-bit non-LPAE guest; no device above 4 GiB.
    machine: str = "virt,highmem=off"
    console: str = "ttyAMA0"

    @classmethod
    def for_board(cls, board: BoardSpec) -> "QemuHardware":
        return cls(cpus=board.cpus, memory_mib=board.memory_mib, cpu=board.cpu)

    def hardware_args(self) -> list[str]:
        """What determines the board's device tree: used for both dumpdtb and the real boot."""
        # -nodefaults: no default NIC (it would want a PXE ROM the harness does not install, and the
        # board has no network unless a scenario asks for one).
        return ["-M", self.machine, "-cpu", self.cpu, "-smp", str(self.cpus), "-m", f"{self.memory_mib}M", "-nodefaults"]
