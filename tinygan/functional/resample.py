"""Resizing ops of the image-to-image nets: pixel (un)shuffle, bilinear and bicubic resizing.

Notation: x (N, C, H, W), r the shuffle factor, y (N, C, OH, OW) the resized image.

pixel_shuffle moves channel groups into space (Shi et al., 2016, SRGAN's upsampler):
    y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]
a reshape, a permute and a reshape, so every derivative comes with those ops.

Bilinear and bicubic resizing are linear and separable: each output row is a fixed blend of
at most 2 (4) input rows, and the same for columns.  With the blend weights in matrices
Ah (OH, H) and Aw (OW, W),
    y = Ah @ x @ Awᵀ        (batched over N, C)
so the op is two matmuls with constant matrices: its backward is gx = Ahᵀ @ gy @ Aw, and
every higher derivative is a matmul again.  The matrices hold torch's weights: output
position o samples the input at
    align_corners=False:  s = (o + 0.5) · scale - 0.5   (bilinear: s clamped at 0)
    align_corners=True:   s = o · (in - 1) / (out - 1)
with scale = 1 / scale_factor when one is given, else in / out; bilinear blends positions
floor(s) and floor(s) + 1 by the fraction, bicubic the four around s with Keys' cubic
convolution (a = -0.75), indices clamped to the image.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from ..backend import get_array_module
from .arith import matmul

__all__ = ["pixel_shuffle", "pixel_unshuffle"]


def _factor(r, op: str, name: str) -> int:
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
        raise ValueError(f"{op}: {name} must be a positive integer, got {r!r}")
    return int(r)


def pixel_shuffle(x, upscale_factor: int):
    """(*, C·r², H, W) -> (*, C, H·r, W·r), as `torch.nn.functional.pixel_shuffle`."""
    op = "pixel_shuffle"
    r = _factor(upscale_factor, op, "upscale_factor")
    if x.ndim < 3:
        raise ValueError(f"{op}: input must have at least 3 dimensions (*, C, H, W), got shape {x.shape}")
    *lead, CRR, H, W = x.shape
    if CRR % (r * r):
        raise ValueError(f"{op} expects its input's 'channel' dimension to be divisible by the "
                         f"square of upscale_factor, but input.size(-3)={CRR} is not divisible "
                         f"by {r * r}")
    k = len(lead)
    y = x.reshape(*lead, CRR // (r * r), r, r, H, W)
    y = y.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)       # (*, C, H, r, W, r)
    return y.reshape(*lead, CRR // (r * r), H * r, W * r)


def pixel_unshuffle(x, downscale_factor: int):
    """(*, C, H·r, W·r) -> (*, C·r², H, W): the inverse of pixel_shuffle."""
    op = "pixel_unshuffle"
    r = _factor(downscale_factor, op, "downscale_factor")
    if x.ndim < 3:
        raise ValueError(f"{op}: input must have at least 3 dimensions (*, C, H, W), got shape {x.shape}")
    *lead, C, HR, WR = x.shape
    for name, size, axis in (("height", HR, -2), ("width", WR, -1)):
        if size % r:
            raise ValueError(f"{op} expects {name} to be divisible by downscale_factor, but "
                             f"input.size({axis})={size} is not divisible by {r}")
    k = len(lead)
    y = x.reshape(*lead, C, HR // r, r, WR // r, r)
    y = y.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)       # (*, C, r, r, H, W)
    return y.reshape(*lead, C * r * r, HR // r, WR // r)


def _cubic_weights(t):
    """Keys' cubic convolution weights of the taps at offsets -1, 0, 1, 2 from floor(s), for the
    fraction t = s - floor(s) (a = -0.75, torch's choice)."""
    a = -0.75

    def near(d):            # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):             # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return far(t + 1), near(t), near(1 - t), far(2 - t)


def resize_matrix(in_size: int, out_size: int, mode: str, align_corners: bool, scale=None):
    """A (out_size, in_size): row o holds the weights output position o gives the input ones."""
    o = np.arange(out_size, dtype=np.float64)
    if align_corners:
        s = o * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(out_size)
    else:
        step = 1.0 / scale if scale is not None else in_size / out_size
        s = (o + 0.5) * step - 0.5
        if mode == "bilinear":
            s = np.maximum(s, 0.0)
    base = np.floor(s).astype(np.int64)
    t = s - base
    if mode == "bilinear":
        taps, weights = (0, 1), (1.0 - t, t)
    else:
        taps, weights = (-1, 0, 1, 2), _cubic_weights(t)
    A = np.zeros((out_size, in_size))
    for offset, w in zip(taps, weights):
        # add.at: clamped taps at the border land on the same input position and add up
        np.add.at(A, (np.arange(out_size), np.clip(base + offset, 0, in_size - 1)), w)
    return A


def resize_separable(x: Tensor, out, mode: str, align_corners: bool, scales) -> Tensor:
    """y = Ah @ x @ Awᵀ for NCHW x (see the module docstring)."""
    xp = get_array_module(x.data)
    (H, W), (OH, OW) = x.shape[2:], out
    Ah = resize_matrix(H, OH, mode, align_corners, scales and scales[0])
    Aw = resize_matrix(W, OW, mode, align_corners, scales and scales[1])
    y = matmul(x, Tensor(xp.asarray(Aw.T, dtype=x.dtype)))            # (N, C, H, OW)
    return matmul(Tensor(xp.asarray(Ah, dtype=x.dtype)), y)           # (N, C, OH, OW)
