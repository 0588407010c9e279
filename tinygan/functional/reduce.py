"""Reductions and broadcasting: sum, mean, var, amax, logsumexp, sum_to, broadcast_to.

`sum_to` and `broadcast_to` are each other's backward — the pair that makes broadcasting
arithmetic differentiable to any order.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, Tensor
from ..backend import get_array_module


def _normalize_dims(dim, ndim: int, opname: str) -> tuple:
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise ValueError(f"{opname}: dim {d} is out of range for a tensor of rank {ndim}")
        out.append(d % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def _keepdim_shape(shape, dims) -> tuple:
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class Sum(Function):
    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        return x.sum(axis=self.dims, keepdims=self.keepdim)

    def backward(self, gy):
        x = self.inputs[0]
        return broadcast_to(gy.reshape(_keepdim_shape(x.shape, self.dims)), x.shape)


class SumTo(Function):
    """Sum x down to `shape` along the axes that broadcasting expanded."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(self.shape)
                                          if s == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


class AMax(Function):
    """Max values (torch.amax): ties share the gradient equally."""

    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        return x.max(axis=self.dims, keepdims=self.keepdim)

    def backward(self, gy):
        x = self.inputs[0]
        kshape = _keepdim_shape(x.shape, self.dims)
        y = self.output().data.reshape(kshape)
        mask = (x.data == y).astype(gy.dtype)
        mask = mask / mask.sum(axis=self.dims, keepdims=True)    # constant: amax is piecewise linear
        return broadcast_to(gy.reshape(kshape), x.shape) * mask


# ---------------------------------------------------------------------------------------

def sum(x, dim=None, keepdim=False):
    return Sum(_normalize_dims(dim, x.ndim, "sum"), keepdim)(x)


def mean(x, dim=None, keepdim=False):
    dims = _normalize_dims(dim, x.ndim, "mean")
    n = 1
    for d in dims:
        n *= x.shape[d]
    return Sum(dims, keepdim)(x) * (1.0 / max(n, 1))


def var(x, dim=None, keepdim=False, unbiased=True):
    dims = _normalize_dims(dim, x.ndim, "var")
    n = 1
    for d in dims:
        n *= x.shape[d]
    centered = x - mean(x, dims, keepdim=True)
    return sum(centered * centered, dims, keepdim) * (1.0 / max(n - (1 if unbiased else 0), 1))


def amax(x, dim=None, keepdim=False):
    if x.data.size == 0:
        raise ValueError("amax: empty tensor")
    return AMax(_normalize_dims(dim, x.ndim, "max"), keepdim)(x)


def sum_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo(shape)(x)


def broadcast_to(x: Tensor, *shape) -> Tensor:
    shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
    if x.shape == shape:
        return x
    try:
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast {x.shape} to {shape}") from None
    return BroadcastTo(shape)(x)


class LogSumExp(Function):
    """y = log Σ exp(x) over `dims`, computed as m + log Σ exp(x − m) with m = max x, so no
    exponent is positive (no overflow) and the largest term is exp(0) = 1 (no log(0) unless
    every term is −∞).

    ∂y/∂x = exp(x − y), the softmax over `dims`; written with the output y (a Tensor of the
    graph), so the backward is itself differentiable: ∂²y = softmax's Jacobian, for free.
    """

    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        xp = get_array_module(x)
        m = x.max(axis=self.dims, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)          # all −∞ (or +∞) along a slice: no shift
        with np.errstate(divide="ignore"):
            y = m + xp.log(xp.exp(x - m).sum(axis=self.dims, keepdims=True))
        return y if self.keepdim else y.reshape([s for i, s in enumerate(y.shape) if i not in self.dims])

    def backward(self, gy):
        x = self.inputs[0]
        kshape = _keepdim_shape(x.shape, self.dims)
        y = self.output().reshape(kshape)
        return broadcast_to(gy.reshape(kshape), x.shape) * (x - y).exp()


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) over `dim` (an int or a tuple), stably (torch.logsumexp)."""
    if x.data.size == 0:
        raise ValueError("logsumexp: empty tensor")
    return LogSumExp(_normalize_dims(dim, x.ndim, "logsumexp"), keepdim)(x)
