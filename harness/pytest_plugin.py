"""pytest plugin (entry point pytest11): options and fixtures over the library, nothing more."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("cma-harness")
    group.addoption("--cma-scenario", default=None, help="scenario YAML for the integration tests (default: embedded)")


@pytest.fixture(scope="session")
def cma_scenario(request):
    from . import config

    return config.load(request.config.getoption("--cma-scenario"))
