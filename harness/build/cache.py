"""Content-addressed artifact store: a directory per key, built in a temp dir, renamed into place under a lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

from harness.core.paths import cache_root  # noqa: F401  (the cache's root; here for its callers)


def digest(parts: dict) -> str:
    """Stable key of a JSON-able description of every input (sorted keys, so dict order never matters)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Store:
    """One kind of artifact (e.g. "kernel") under the cache root; entries are immutable once published."""

    def __init__(self, kind: str, root: Path | None = None):
        self.dir = (root or cache_root()) / kind
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.dir / key

    def has(self, key: str) -> bool:
        return (self.path(key) / ".complete").exists()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive per-key lock, so two runs never build the same artifact at once."""
        with open(self.dir / f"{key}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def building(self, key: str, meta: dict) -> Iterator[Path]:
        """Yield a scratch dir; on success it becomes the entry (atomic rename), on failure it is kept aside."""
        final = self.path(key)
        tmp = self.dir / f"{key}.partial"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        yield tmp
        (tmp / "inputs.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        (tmp / ".complete").write_text("")
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
