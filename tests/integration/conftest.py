"""Integration tests: a real cross-compiled kernel, a real module, a real QEMU guest. Kernels are shared
through the cache, so each is built once per machine whatever the number of tests."""

from pathlib import Path

from harness.boards import ssh
from harness.build import testbed
from harness.core.deadline import Deadline
from harness.core.errors import InfraError
from harness.spec.boards import SshSpec

import pytest

pytestmark = pytest.mark.integration


# The harness's own integration tests go through the plugin's fixtures (harness/pytest_plugin.py), as a
# developer's tests would; they assume the embedded seed-2012, so run them without --cma-scenario.
@pytest.fixture(scope="session")
def seed(cma_scenario):
    return cma_scenario


@pytest.fixture(scope="session")
def run_seed(cma_run):
    """run_seed(variant, name, **section_overrides) -> (summary, folder); overrides like module={"loops": 3}."""
    return cma_run


def _qemu_pids(folder) -> list[int]:
    """QEMU processes started for a run or campaign folder (their command line names its images)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-arm") and any(str(folder).encode() in a for a in argv):
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="session")
def qemu_pids():
    """qemu_pids(folder) -> pids of the QEMUs whose command line names that folder (others' are left out)."""
    return _qemu_pids


def kill_dropbear(run_folder: Path) -> None:
    """Kill the SSH test bed's dropbear from outside, over its own forward (the run folder's QEMU command
    line names the port): the run's SSH connection drops, the serial console goes on."""
    port = int((run_folder / "qemu-cmdline.txt").read_text().split("hostfwd=tcp:127.0.0.1:")[1].split("-")[0])
    keys = testbed.ensure_keys()
    killer = ssh.SshClient(SshSpec(host="127.0.0.1", port=port, key_file=str(keys.client_key),
                                   known_hosts=str(keys.known_hosts), host_key_alias=testbed.HOST_KEY_ALIAS))
    killer.connect(Deadline(30))
    try:
        killer.exec("kill $(pidof dropbear)", Deadline(10))
    except InfraError:
        pass                        # our own session's server is among them
