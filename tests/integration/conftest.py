"""Integration tests: a real cross-compiled kernel, a real module, a real QEMU guest. Kernels are shared
through the cache, so each is built once per machine whatever the number of tests."""

import pytest

from harness import config
from harness.run import run_variant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def seed():
    return config.load()


@pytest.fixture(scope="session")
def run_seed(seed, tmp_path_factory):
    """run_seed(variant, name, **section_overrides) -> (summary, folder); overrides like module={"loops": 3}."""

    def _run(variant: str, name: str, **overrides):
        scn = seed
        for section, values in overrides.items():
            scn = config.with_overrides(scn, section, **values)
        folder = tmp_path_factory.mktemp(name)
        summary = run_variant(scn, variant, scn.variant(variant), folder, progress=print)
        return summary, folder

    return _run
