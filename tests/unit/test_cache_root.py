"""paths.cache_root_at: the cache root moved for a block (bench's empty-cache run), and put back."""

import os

import pytest

from harness.core import paths


def test_the_cache_root_is_moved_inside_the_block_and_restored_after(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path / "mine"))
    with paths.cache_root_at(tmp_path / "fresh") as root:
        assert paths.cache_root() == root == tmp_path / "fresh"
        assert os.environ[paths.CACHE_ENV] == str(root)         # what the processes it starts read
    assert paths.cache_root() == tmp_path / "mine"


def test_an_unset_cache_root_is_unset_again_even_after_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.CACHE_ENV, raising=False)
    with pytest.raises(RuntimeError), paths.cache_root_at(tmp_path / "fresh"):
        raise RuntimeError("a campaign failed")
    assert paths.CACHE_ENV not in os.environ
