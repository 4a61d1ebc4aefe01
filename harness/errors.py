"""Exception types; each maps to one CLI exit code (see cli.py and the README)."""


class HarnessError(Exception):
    """Base class. The message must say what is wrong and how to fix it."""

    exit_code = 3


class InputError(HarnessError):
    """Bad scenario, parameter or argument: the user can fix it (exit 2)."""

    exit_code = 2


class InfraError(HarnessError):
    """Build, tool, QEMU or board failure: nothing was learnt about the kernel (exit 3)."""

    exit_code = 3
