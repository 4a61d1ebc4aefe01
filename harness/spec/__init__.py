"""Stage 1, the inputs: scenario specs loaded from YAML and validated, the kernel variants, the QEMU hardware of a board spec."""
