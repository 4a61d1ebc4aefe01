"""Exception types; each maps to one CLI exit code (see cli.py and the README)."""

import errno


class HarnessError(Exception):
    """Base class. The message must say what is wrong and how to fix it."""

    exit_code = 3


class InputError(HarnessError):
    """Bad scenario, parameter or argument: the user can fix it (exit 2)."""

    exit_code = 2


class InfraError(HarnessError):
    """Build, tool, QEMU or board failure: nothing was learnt about the kernel (exit 3)."""

    exit_code = 3


def from_os_error(e: OSError, folder=None) -> HarnessError:
    """A host OSError as a harness error that says what to do (a full disk, an unwritable or wrong path);
    folder names the place when the error itself does not (a failed write has no file name)."""
    place = e.filename or folder
    where = f" ({place})" if place else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InfraError(f"no space left on the device{where}: free some space (see `df -h`), or pass "
                          f"--out a folder on a disk with room")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return InputError(f"cannot write{where}: {e.strerror}; pass --out a folder you can write")
    if e.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return InputError(f"wrong kind of path{where}: {e.strerror}; --out takes a folder, input files take files")
    return InfraError(f"host error{where}: {e.strerror or e}")
