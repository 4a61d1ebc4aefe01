"""Where the harness keeps what it builds and downloads on this host."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

CACHE_ENV = "CMA_HARNESS_CACHE"


def cache_root() -> Path:
    """$CMA_HARNESS_CACHE, else $XDG_CACHE_HOME/cma-harness, else ~/.cache/cma-harness."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "cma-harness"


@contextlib.contextmanager
def cache_root_at(root: Path) -> Iterator[Path]:
    """cache_root() is `root` inside the block, for this process and every process it starts (they read
    the same variable), and what it was after it, however the block ends."""
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(root)
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = old
