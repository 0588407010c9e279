"""pad: frame a tensor with a constant or with copies of its own border, as torch's F.pad.

    constant    y = x framed by `value`         backward: crop the frame off (Pad)
    reflect     mirrored about the edge, the edge itself not repeated (widths < size)
    replicate   the edge repeated
    circular    wrapped around (widths <= size)

The last three copy input positions: along a padded axis, output position j reads input
position src[j] (e.g. reflect by 2 on a size-4 axis: src = [2, 1, 0, 1, 2, 3, 2, 1]).  That
gather is linear, and so is its adjoint, the scatter-add gx[src[j]] += gy[j]; each pair is
the other's backward, so the pad differentiates to any order (like sum_to / broadcast_to).
Both run over the runs of consecutive positions in src (the untouched middle is one run, the
border a few more), i.e. a handful of slice copies instead of element-wise indexing.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, as_tensor
from ..backend import get_array_module
from .shape import getitem

__all__ = ["pad"]

_MODES = ("constant", "reflect", "replicate", "circular")


class Pad(Function):
    """Constant padding.  `widths` is NumPy's ((before, after), ...) per axis."""

    def __init__(self, widths, value):
        self.widths, self.value = widths, value

    def forward(self, x):
        return get_array_module(x).pad(x, self.widths, mode="constant",
                                       constant_values=self.value)

    def backward(self, gy):
        crop = tuple(slice(b, gy.shape[i] - a) for i, (b, a) in enumerate(self.widths))
        return getitem(gy, crop)


def _runs(src):
    """[(j, i, n)]: out[j:j+n] reads in[i:i+n], for maximal runs of consecutive src."""
    runs, j = [], 0
    while j < len(src):
        n = 1
        while j + n < len(src) and src[j + n] == src[j] + n:
            n += 1
        runs.append((j, int(src[j]), n))
        j += n
    return runs


def _along(axis, start, n):
    return (slice(None),) * axis + (slice(start, start + n),)


class Gather(Function):
    """y = x[..., src, ...] along `axis` (src: a host array of input positions)."""

    def __init__(self, axis: int, src, in_size: int):
        self.axis, self.src, self.in_size = axis, src, in_size
        self.runs = _runs(src)

    def forward(self, x):
        xp = get_array_module(x)
        return xp.concatenate([x[_along(self.axis, i, n)] for _, i, n in self.runs], axis=self.axis)

    def backward(self, gy):
        return GatherGrad(self.axis, self.src, self.in_size)(gy)


class GatherGrad(Function):
    """gx[..., src[j], ...] += gy[..., j, ...]: the adjoint of Gather, whose backward is Gather."""

    def __init__(self, axis: int, src, in_size: int):
        self.axis, self.src, self.in_size = axis, src, in_size
        self.runs = _runs(src)

    def forward(self, gy):
        shape = gy.shape[:self.axis] + (self.in_size,) + gy.shape[self.axis + 1:]
        gx = get_array_module(gy).zeros(shape, dtype=gy.dtype)
        for j, i, n in self.runs:       # one run never repeats a position; runs add up in turn
            gx[_along(self.axis, i, n)] += gy[_along(self.axis, j, n)]
        return gx

    def backward(self, ggx):
        return Gather(self.axis, self.src, self.in_size)(ggx)


def _source_index(size: int, before: int, after: int, mode: str):
    """Which input position each output position of a padded axis copies."""
    i = np.arange(-before, size + after)
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    if mode == "circular":
        return i % size
    i = np.abs(i)                                              # reflect about 0 ...
    return np.where(i >= size, 2 * (size - 1) - i, i)          # ... and about size - 1


def pad(x, pad, mode: str = "constant", value: float = 0.0):
    """torch.nn.functional.pad: `pad` lists (before, after) pairs starting from the LAST
    dimension, e.g. (1, 1, 2, 2) pads W by 1 and H by 2 on each side (left, right, top,
    bottom); mode "constant" (with `value`), "reflect", "replicate" or "circular"."""
    x = as_tensor(x)
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: pad must hold pairs for at most {x.ndim} dimensions, got {pad} "
                         f"for input {x.shape}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding (cropping) is not supported, got {pad}")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    if mode == "constant":
        return Pad(tuple(widths), value)(x)
    for d, (before, after) in enumerate(widths):
        size = x.shape[d]
        if not before and not after:
            continue
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(f"pad: Padding size should be less than the corresponding input "
                             f"dimension (reflect), but got: padding {(before, after)} at "
                             f"dimension {d} of input {x.shape}")
        if mode == "circular" and max(before, after) > size:
            raise ValueError(f"pad: Padding value causes wrapping around more than once "
                             f"(circular): padding {(before, after)} at dimension {d} of input "
                             f"{x.shape}")
        if size == 0:
            raise ValueError(f"pad: cannot {mode}-pad the empty dimension {d} of input {x.shape}")
        x = Gather(d, _source_index(size, before, after, mode), size)(x)
    return x
