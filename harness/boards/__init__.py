"""Boards: one interface (boot, run a command, console lines, power off); QEMU implements it."""
