"""Variants register themselves by name; `get("dcgan")` returns the class."""
from __future__ import annotations

VARIANTS: dict[str, type] = {}


def register(cls):
    if cls.name in VARIANTS:
        raise ValueError(f"variant {cls.name!r} registered twice")
    VARIANTS[cls.name] = cls
    return cls


def get(name: str) -> type:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(sorted(VARIANTS))}") from None
