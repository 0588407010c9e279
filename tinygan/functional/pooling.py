"""Pooling and resizing (interpolate), PyTorch semantics (NCHW, floor mode).

Notation: x (N, C, H, W), window KH×KW, stride (SH, SW) (default: the window), padding (PH, PW),
y (N, C, OH, OW) with OH = (H + 2*PH - KH) // SH + 1.  The windows are read with the same
im2col kernel as the convolutions: col[n, c, j, i, p, q] = xpad[n, c, p*SH + j, q*SW + i].

All three ops are linear maps (max pooling once its argmax is fixed), so each backward is the
adjoint linear map, and the adjoint's backward is the op again — the pairs below differentiate
to any order, like sum_to / broadcast_to:

    avg_pool2d       y = mean of each zero-padded window   <->  AvgPool2dGrad: spread gy/(KH KW)
    max_pool2d       y = the window entry at the argmax    <->  MaxPool2dGrad: gy to the argmax
    interpolate      y = each pixel copied into a block    <->  sum over each block
                     (bilinear / bicubic: two matmuls, in resample.py)
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function, Tensor, _is_array
from ..backend import get_array_module
from ._args import pair as _pair
from .resample import resize_separable
from .shape import getitem

__all__ = ["avg_pool2d", "max_pool2d", "interpolate"]


def _windows(x, kernel_size, stride, padding, pad_value=0.0):
    """col (N, C, KH*KW, OH, OW): every window of x padded with `pad_value`."""
    xp = get_array_module(x)
    (KH, KW), (PH, PW) = kernel_size, padding
    if pad_value != 0.0 and (PH or PW):
        x = xp.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)), constant_values=pad_value)
        PH = PW = 0
    col = kernels.get("im2col", xp)(x, KH, KW, stride, (PH, PW))
    N, C, _, _, OH, OW = col.shape
    return col.reshape(N, C, KH * KW, OH, OW)


def _unwindows(col, x_shape, kernel_size, stride, padding):
    """The adjoint of _windows: add every window entry back onto its pixel of x."""
    N, C, _, OH, OW = col.shape
    col = col.reshape(N, C, kernel_size[0], kernel_size[1], OH, OW)
    return kernels.get("col2im", get_array_module(col))(col, x_shape, stride, padding)


class AvgPool2d(Function):
    """y[n,c,p,q] = 1/(KH KW) sum_{j,i} xpad[n, c, p*SH + j, q*SW + i]  (padding counts as zeros)."""

    def __init__(self, kernel_size, stride, padding):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return _windows(x, self.kernel_size, self.stride, self.padding).mean(axis=2)

    def backward(self, gy):
        return AvgPool2dGrad(self.kernel_size, self.stride, self.padding, self.inputs[0].shape)(gy)


class AvgPool2dGrad(Function):
    """gx = every window of x receives gy / (KH KW): the adjoint of avg_pool2d, so linear in gy and
    differentiated by avg_pool2d itself."""

    def __init__(self, kernel_size, stride, padding, x_shape):
        self.kernel_size, self.stride, self.padding, self.x_shape = kernel_size, stride, padding, x_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        K = self.kernel_size[0] * self.kernel_size[1]
        N, C, OH, OW = gy.shape
        col = xp.ascontiguousarray(xp.broadcast_to((gy / K)[:, :, None], (N, C, K, OH, OW)))
        return _unwindows(col, self.x_shape, self.kernel_size, self.stride, self.padding)

    def backward(self, ggx):
        return AvgPool2d(self.kernel_size, self.stride, self.padding)(ggx)


class MaxPool2d(Function):
    """y[n,c,p,q] = max over the window (padding counts as -inf); the first maximum wins ties.

    Given which entry of each window is the maximum (a boolean `mask` over col, piecewise
    constant in x), max pooling is the linear map "pick that entry".  With `mask=None` the
    forward finds it; MaxPool2dGrad's backward passes it in to pick the same entries of ggx.
    """

    def __init__(self, kernel_size, stride, padding, mask=None):
        self.kernel_size, self.stride, self.padding, self.mask = kernel_size, stride, padding, mask

    def forward(self, x):
        xp = get_array_module(x)
        col = _windows(x, self.kernel_size, self.stride, self.padding, pad_value=-np.inf)
        if self.mask is None:
            K = col.shape[2]
            self.mask = xp.arange(K).reshape(1, 1, K, 1, 1) == col.argmax(axis=2)[:, :, None]
        return xp.where(self.mask, col, 0).sum(axis=2)

    def backward(self, gy):
        return MaxPool2dGrad(self.kernel_size, self.stride, self.padding, self.mask,
                             self.inputs[0].shape)(gy)


class MaxPool2dGrad(Function):
    """gx = gy sent to the argmax of each window (added up where windows overlap): linear in gy,
    with the constant mask; its backward picks the same entries of ggx (MaxPool2d with the mask)."""

    def __init__(self, kernel_size, stride, padding, mask, x_shape):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.mask, self.x_shape = mask, x_shape

    def forward(self, gy):
        col = self.mask * gy[:, :, None]
        return _unwindows(col.astype(gy.dtype, copy=False), self.x_shape, self.kernel_size,
                          self.stride, self.padding)

    def backward(self, ggx):
        return MaxPool2d(self.kernel_size, self.stride, self.padding, self.mask)(ggx)


class UpsampleNearest(Function):
    """y[n, c, h, w] = x[n, c, h // sh, w // sw]: each pixel copied into an sh×sw block.

    The backward sums each block of gy (a sum-pool), written as reshape + sum so that it is
    differentiable in turn (its backward broadcasts back: the upsampling again).
    """

    def __init__(self, scale):
        self.scale = scale

    def forward(self, x):
        xp = get_array_module(x)
        N, C, H, W = x.shape
        sh, sw = self.scale
        blocks = xp.broadcast_to(x[:, :, :, None, :, None], (N, C, H, sh, W, sw))
        return blocks.reshape(N, C, H * sh, W * sw)

    def backward(self, gy):
        N, C, H, W = self.inputs[0].shape
        sh, sw = self.scale
        return gy.reshape(N, C, H, sh, W, sw).sum((3, 5))


# ---------------------------------------------------------------------------------------
# Door checks and the public functions.

def _input(x, op: str) -> Tensor:
    if _is_array(x):
        x = Tensor(x)
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor or an array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D NCHW, got shape {x.shape}")
    return x


def _pool_args(op: str, x, kernel_size, stride, padding):
    x = _input(x, op)
    kernel_size = _pair(kernel_size, op, "kernel_size")
    stride = kernel_size if stride is None else _pair(stride, op, "stride")
    padding = _pair(padding, op, "padding")
    if min(kernel_size) < 1:
        raise ValueError(f"{op}: kernel_size must be >= 1, got {kernel_size}")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {stride}")
    if min(padding) < 0 or any(2 * p > k for p, k in zip(padding, kernel_size)):
        raise ValueError(f"{op}: padding {padding} must be >= 0 and at most half of kernel_size "
                         f"{kernel_size}")
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if kernel_size[0] > padded[0] or kernel_size[1] > padded[1]:
        raise ValueError(f"{op}: kernel_size {kernel_size} is larger than the padded input {padded} "
                         f"(input {x.shape}, padding {padding})")
    return x, kernel_size, stride, padding


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average over KH×KW windows, as `torch.nn.functional.avg_pool2d` (count_include_pad=True,
    floor mode): y[n,c,p,q] = 1/(KH KW) sum_{j,i} xpad[n, c, p*SH + j, q*SW + i].
    stride defaults to kernel_size; padding is at most half the kernel."""
    x, kernel_size, stride, padding = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d(kernel_size, stride, padding)(x)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Maximum over KH×KW windows, as `torch.nn.functional.max_pool2d` (floor mode, padding
    counts as -inf).  The gradient goes to the (first) argmax of each window."""
    x, kernel_size, stride, padding = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    return MaxPool2d(kernel_size, stride, padding)(x)


def _nearest_index(out_size: int, in_size: int, scale):
    """Source rows of nearest-neighbour resizing, exactly as PyTorch computes them
    (src = min(floor(dst * s), in - 1) in float32, s = 1/scale_factor or in/out)."""
    s = np.float32(1.0 / scale) if scale is not None else np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * s).astype(np.int64)
    return np.minimum(src, in_size - 1)


_MODES = ("nearest", "bilinear", "bicubic")


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """Resizing of NCHW input, as `torch.nn.functional.interpolate`.

    Give `size` (an int or (OH, OW)) or `scale_factor` (a number or a pair; the output is
    floor(H * scale)); with neither, scale_factor=2.
    mode="nearest": integer factors copy each pixel into an sh×sw block (backward: sum over
    the block); other sizes pick source pixels src = floor(dst * H / OH) (backward: scatter-add).
    mode="bilinear" / "bicubic": Ah @ x @ Awᵀ with torch's blend weights (see resample.py);
    align_corners (default False) only for these.  recompute_scale_factor=True derives the
    sampling step from the output size instead of the given factor, as torch.
    """
    op = "interpolate"
    x = _input(x, op)
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(map(repr, _MODES))}, got mode={mode!r}")
    if align_corners is not None and mode == "nearest":
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating "
                         f"modes: bilinear | bicubic")
    if size is not None and scale_factor is not None:
        raise ValueError(f"{op}: give only one of size and scale_factor")
    H, W = x.shape[2:]
    scales = None
    if size is not None:
        out = _pair(size, op, "size")
        if min(out) < 1:
            raise ValueError(f"{op}: size must be positive, got {out}")
    else:
        sf = 2 if scale_factor is None else scale_factor
        sf = tuple(sf) if isinstance(sf, (tuple, list)) else (sf, sf)
        if len(sf) != 2 or not all(isinstance(s, (int, float, np.integer, np.floating))
                                   and not isinstance(s, bool) for s in sf):
            raise TypeError(f"{op}: scale_factor must be a number or a pair of numbers, "
                            f"got {scale_factor!r}")
        if min(sf) <= 0:
            raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor!r}")
        scales = tuple(float(s) for s in sf)
        out = (int(np.floor(H * scales[0])), int(np.floor(W * scales[1])))
        if min(out) < 1:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} gives an empty output {out} "
                             f"for input {x.shape}")
        if recompute_scale_factor:
            scales = None
    if mode != "nearest":
        return resize_separable(x, out, mode, bool(align_corners), scales)
    integral = scales is None or all(s.is_integer() for s in scales)     # 2.4 is not a block copy
    if integral and out[0] % H == 0 and out[1] % W == 0:
        return UpsampleNearest((out[0] // H, out[1] // W))(x)
    xp = get_array_module(x.data)
    rows = xp.asarray(_nearest_index(out[0], H, scales and scales[0]))
    cols = xp.asarray(_nearest_index(out[1], W, scales and scales[1]))
    return getitem(x, (slice(None), slice(None), rows[:, None], cols[None, :]))
