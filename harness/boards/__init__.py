"""Stage 6, boards: one interface (boot, run a command, console lines, power off), the command shell over a byte stream; QEMU implements it."""
