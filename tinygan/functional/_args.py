"""Argument checks that conv, pooling and nn's layers share: one wording for one mistake."""
from __future__ import annotations

import numpy as np


def _is_int(a) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, bool)


def pair(v, op: str, name: str) -> tuple[int, int]:
    """An int or a pair of ints (kernel_size, stride, padding, ...) as a pair of ints; anything
    else is a TypeError that names the op and the argument."""
    if _is_int(v):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(a) for a in v):
        return int(v[0]), int(v[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
