"""Frozen dataclass instances made without their __init__, for the parsers' hot loops. Pure."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def made(cls: type[T], values: dict) -> T:
    """cls(**values) without the frozen dataclass's __init__, which sets each field through
    object.__setattr__ (a frozen record of 7-17 fields: 2-8 us, dataclasses.replace twice that).
    `values` must hold every field __init__ sets (the init=True ones; a field(init=False) stays the class
    default), in field order: the instance is then the one __init__ makes, attribute for attribute
    (test_parse_fast_paths checks each parser's)."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj
