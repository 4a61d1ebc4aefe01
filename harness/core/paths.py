"""Where the harness keeps what it builds and downloads on this host."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$CMA_HARNESS_CACHE, else $XDG_CACHE_HOME/cma-harness, else ~/.cache/cma-harness."""
    explicit = os.environ.get("CMA_HARNESS_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "cma-harness"
