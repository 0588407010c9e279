"""Activations: relu, leaky_relu, prelu, tanh, sigmoid, softplus, softmax, log_softmax.

Each backward is written from what the forward saved, and in Tensor ops wherever the
derivative is smooth, so that it can be differentiated again:

    tanh        y = tanh x                 gx = gy * (1 - y^2)
    sigmoid     y = 1 / (1 + e^-x)         gx = gy * y * (1 - y)
    softplus    y = log(1 + e^(beta x)) / beta           gx = gy * sigmoid(beta x)
    softmax     y_i = e^x_i / sum_j e^x_j  gx = y * (gy - sum(gy * y))
    log_softmax y_i = x_i - logsumexp(x)   gx = gy - e^y * sum(gy)

(the sums run over `dim`).  ReLU and leaky ReLU are piecewise linear: their gradient is a
masked scale of gy, gx = gy * (1 if x > 0 else slope), whose mask is constant almost
everywhere.  That masked scale is an op of its own, `LeakyReLUGrad`; it is linear in gy, so
its backward is itself (Chainer's `_LeakyReLUGrad`), and one kernel serves both directions.
Leaky ReLU saves its *output* rather than its input: for slope >= 0 it has the sign of x.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function, Tensor, as_tensor
from ..backend import get_array_module
from .arith import where
from .shape import _dim

__all__ = ["relu", "leaky_relu", "prelu", "tanh", "sigmoid", "softplus", "softmax", "log_softmax"]


def _float_tensor(x, opname: str, name: str = "input") -> Tensor:
    """x as a Tensor, refusing integer/bool data (shared by the loss and misc modules)."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{opname}: {name} must be floating point, got {x.dtype} "
                        f"(shape {x.shape}); convert it with .float()")
    return x


# ---------------------------------------------------------------------------------------
# ReLU and leaky ReLU

class LeakyReLUGrad(Function):
    """gx = gy * (1 if sign_source > 0 else slope): a masked scale, linear in gy.

    `sign_source` is a raw array (the saved output, or the input for a negative slope); the
    mask it gives is piecewise constant, so it contributes no derivative of its own, and the
    backward of this op is this op again, applied to the incoming ggx.
    """

    def __init__(self, sign_source, slope: float):
        self.sign_source, self.slope = sign_source, slope

    def forward(self, gy):
        kernel = kernels.get("leaky_relu_grad", get_array_module(gy))
        return kernel(self.sign_source, gy, self.slope)

    def backward(self, ggx):
        return LeakyReLUGrad(self.sign_source, self.slope)(ggx)


class ReLU(Function):
    """y = max(x, 0); gx = gy * [y > 0]."""

    def forward(self, x):
        return get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        return LeakyReLUGrad(self.output().data, 0.0)(gy)


class LeakyReLU(Function):
    """y = x if x > 0 else slope * x;  gx = gy * (1 if x > 0 else slope)."""

    def __init__(self, slope: float):
        self.slope = slope

    def forward(self, x):
        if self.slope < 0:          # then y > 0 for x < 0 too: the sign must come from x
            self.sign_source = x
        return kernels.get("leaky_relu", get_array_module(x))(x, self.slope)

    def backward(self, gy):
        source = self.sign_source if self.slope < 0 else self.output().data
        return LeakyReLUGrad(source, self.slope)(gy)


# ---------------------------------------------------------------------------------------
# Smooth activations

class Tanh(Function):
    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1.0 - y * y)


class Sigmoid(Function):
    def forward(self, x):
        xp = get_array_module(x)
        # For x << 0, e^-x overflows to inf and 1 / (1 + inf) = 0, the right limit; this
        # form keeps full relative precision in the tail, unlike 0.5 * (1 + tanh(x / 2)).
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + xp.exp(-x))

    def backward(self, gy):
        y = self.output()
        return gy * y * (1.0 - y)


class Softplus(Function):
    """y = log(1 + e^(beta x)) / beta, and y = x where beta * x > threshold (as torch).

    Computed as max(bx, 0) + log1p(e^-|bx|), which never overflows: e^-|bx| <= 1.
    Whether there is a linear part is decided from `threshold` alone, never from the data:
    `if mask.any():` would make the host wait for the GPU on every call (threshold=inf, the
    BCE-with-logits case, has none; a finite threshold always takes the `where`).
    """

    def __init__(self, beta: float, threshold: float):
        self.beta, self.threshold = beta, threshold
        self.linear = None                  # the mask bx > threshold, when there can be one

    def forward(self, x):
        xp = get_array_module(x)
        bx = x * self.beta
        y = (xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))) / self.beta
        if self.threshold != float("inf"):
            self.linear = bx > self.threshold
            y = xp.where(self.linear, x, y)
        return y.astype(x.dtype, copy=False)

    def backward(self, gy):
        x, = self.inputs
        gx = gy * sigmoid(x * self.beta)
        if self.linear is not None:
            gx = where(self.linear, gy, gx)
        return gx


class Softmax(Function):
    """y = exp(x - max x) / sum exp(x - max x) along `dim` (the shift changes nothing but
    keeps every exponent <= 0)."""

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, x):
        e = get_array_module(x).exp(x - x.max(axis=self.dim, keepdims=True))
        e /= e.sum(axis=self.dim, keepdims=True)
        return e

    def backward(self, gy):
        y = self.output()
        return y * (gy - (gy * y).sum(self.dim, keepdim=True))


class LogSoftmax(Function):
    """y = x - logsumexp(x) along `dim`, with logsumexp(x) = m + log sum exp(x - m), m = max x."""

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, x):
        xp = get_array_module(x)
        shifted = x - x.max(axis=self.dim, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=self.dim, keepdims=True))

    def backward(self, gy):
        y = self.output()
        return gy - y.exp() * gy.sum(self.dim, keepdim=True)


# ---------------------------------------------------------------------------------------

def relu(x):
    """max(x, 0)."""
    return ReLU()(as_tensor(x))


def leaky_relu(x, negative_slope: float = 0.01):
    """x if x > 0 else negative_slope * x."""
    x = _float_tensor(x, "leaky_relu")
    if not isinstance(negative_slope, (int, float, np.integer, np.floating)) or \
            isinstance(negative_slope, bool):
        raise TypeError(f"leaky_relu: negative_slope must be a number, got {negative_slope!r}")
    return LeakyReLU(float(negative_slope))(x)


def prelu(x, weight):
    """max(x, 0) + weight * min(x, 0) with a learned slope (He et al., 2015; SRGAN's activation):
    weight of shape (1,) is shared, of shape (C,) one per channel (dim 1), as torch.

    Written as relu(x) - weight * relu(-x), two existing ops, so the slope's gradient
    -sum(gy * relu(-x)) and every higher derivative come with them.
    """
    x = _float_tensor(x, "prelu")
    weight = _float_tensor(weight, "prelu", "weight")
    if weight.ndim != 1 or weight.shape[0] not in (1,) + ((x.shape[1],) if x.ndim >= 2 else ()):
        raise ValueError(f"prelu: weight must hold 1 slope or one per channel (dim 1) of input "
                         f"{x.shape}, got weight {weight.shape}")
    if weight.shape[0] > 1:
        weight = weight.reshape((1, -1) + (1,) * (x.ndim - 2))
    return relu(x) - weight * relu(-x)


def tanh(x):
    return Tanh()(_float_tensor(x, "tanh"))


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return Sigmoid()(_float_tensor(x, "sigmoid"))


def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + exp(beta * x)) / beta, reverting to x where beta * x > threshold (as torch)."""
    x = _float_tensor(x, "softplus")
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")
    return Softplus(float(beta), float(threshold))(x)


def _along(op, x, dim, opname):
    x = _float_tensor(x, opname)
    if x.ndim == 0:                 # torch accepts a scalar (dim 0 or -1) as a 1-element vector
        _dim(dim, 1, opname)
        return op(_dim(0, 1, opname))(x.reshape(1)).reshape(())
    return op(_dim(dim, x.ndim, opname))(x)


def softmax(x, dim: int = -1):
    """exp(x) / sum(exp(x)) along `dim`."""
    return _along(Softmax, x, dim, "softmax")


def log_softmax(x, dim: int = -1):
    """x - log(sum(exp(x))) along `dim`, computed stably."""
    return _along(LogSoftmax, x, dim, "log_softmax")
