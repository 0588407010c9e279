"""translate: shift each image of a batch by its own whole-pixel offset, zero-filling the edge.

The one image augmentation that is not plain arithmetic (DiffAugment's colour and cutout are
adds and multiplies, which autograd already handles).  With offsets (dy[n], dx[n]):

    y[n, c, i, j] = x[n, c, i - dy[n], j - dx[n]]   where that pixel exists, else 0.

The map is linear in x, and its adjoint is the shift back, (-dy, -dx), zero-filled as well:
a pixel that fell off the edge gets no gradient.  So backward is `translate` again, and the op
is closed under differentiation (as conv is): second derivatives come free.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module

__all__ = ["translate"]


def _spans(shift: int, size: int) -> tuple[slice, slice]:
    """(destination, source) slices of one axis shifted by `shift` in a `size`-long axis."""
    if shift >= 0:
        return slice(shift, size), slice(0, size - shift)
    return slice(0, size + shift), slice(-shift, size)


class Translate(Function):
    def __init__(self, dy: np.ndarray, dx: np.ndarray):
        self.dy, self.dx = dy, dx

    def forward(self, x):
        out = get_array_module(x).zeros_like(x)
        H, W = x.shape[2:]
        # One slice copy per image: N is a batch (tens), and each copy is a whole C×H×W block.
        for n, (dy, dx) in enumerate(zip(self.dy.tolist(), self.dx.tolist())):
            if abs(dy) >= H or abs(dx) >= W:
                continue                          # shifted wholly out of the frame: all zeros
            (ry, sy), (rx, sx) = _spans(dy, H), _spans(dx, W)
            out[n, :, ry, rx] = x[n, :, sy, sx]
        return out

    def backward(self, gy):
        return translate(gy, -self.dy, -self.dx)


def translate(x: Tensor, dy, dx) -> Tensor:
    """Shift image n of the (N, C, H, W) batch `x` down by dy[n] and right by dx[n] pixels
    (negative: up / left), filling what comes in from outside with 0.  dy, dx: N integers."""
    if x.ndim != 4:
        raise ValueError(f"translate: expected an (N, C, H, W) batch, got shape {tuple(x.shape)}")
    dy, dx = (np.asarray(v).reshape(-1) for v in (dy, dx))
    if dy.shape != (x.shape[0],) or dx.shape != (x.shape[0],):
        raise ValueError(f"translate: need one offset per image ({x.shape[0]}), got dy of "
                         f"{dy.size} and dx of {dx.size}")
    if not (np.issubdtype(dy.dtype, np.integer) and np.issubdtype(dx.dtype, np.integer)):
        raise TypeError("translate: offsets must be whole pixels (integer arrays)")
    return Translate(dy.astype(np.int64), dx.astype(np.int64))(x)
