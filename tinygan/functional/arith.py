"""Elementwise arithmetic and matmul, with NumPy broadcasting.

Broadcasting is where hand-written autograd usually goes wrong: if `x` of shape (3, 1) was
broadcast against (2, 3, 4), its gradient must be summed back to (3, 1).  Every binary op here
ends its backward with `sum_to(g, x.shape)`, itself a differentiable op.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function, Tensor, as_tensor
from ..backend import get_array_module
from .reduce import sum_to


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        return (sum_to(gy, a.shape) if self.needs_input_grad[0] else None,
                sum_to(gy, b.shape) if self.needs_input_grad[1] else None)


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        return (sum_to(gy, a.shape) if self.needs_input_grad[0] else None,
                sum_to(-gy, b.shape) if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        return (sum_to(gy * b, a.shape) if self.needs_input_grad[0] else None,
                sum_to(gy * a, b.shape) if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy / b
        return (sum_to(ga, a.shape) if self.needs_input_grad[0] else None,
                sum_to(-ga * a / b, b.shape) if self.needs_input_grad[1] else None)


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """x ** c for a constant exponent c:  d/dx = c * x**(c-1)."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        x, = self.inputs
        if self.c == 2:
            return gy * x * 2.0
        return gy * (x ** (self.c - 1)) * float(self.c)


class Exp(Function):
    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output()


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (self.output() * 2.0)


class Abs(Function):
    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * get_array_module(x).sign(x)      # sign is piecewise constant: no 2nd-order term


class Clip(Function):
    """Like torch.clamp: the gradient passes where lo <= x <= hi (boundaries included)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy):
        x = self.inputs[0].data
        mask = get_array_module(x).ones_like(x)
        if self.lo is not None:
            mask = mask * (x >= self.lo)
        if self.hi is not None:
            mask = mask * (x <= self.hi)
        return gy * mask


class Maximum(Function):
    """Elementwise max of two tensors; ties send the gradient to the first argument."""

    def forward(self, a, b):
        return get_array_module(a).maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        first = (a.data >= b.data).astype(gy.dtype)
        return (sum_to(gy * first, a.shape) if self.needs_input_grad[0] else None,
                sum_to(gy * (1 - first), b.shape) if self.needs_input_grad[1] else None)


class Where(Function):
    """where(cond, a, b) with a constant boolean condition."""

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        return get_array_module(a).where(self.cond, a, b)

    def backward(self, gy):
        a, b = self.inputs
        m = self.cond.astype(gy.dtype)
        return (sum_to(gy * m, a.shape) if self.needs_input_grad[0] else None,
                sum_to(gy * (1 - m), b.shape) if self.needs_input_grad[1] else None)


class MatMul(Function):
    """a @ b for a, b of rank >= 2 (batched, broadcast over leading dims)."""

    def forward(self, a, b):
        return kernels.get("matmul", get_array_module(a))(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy @ b.transpose(-1, -2), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(a.transpose(-1, -2) @ gy, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class AsType(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.src_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return astype(gy, self.src_dtype)


# ---------------------------------------------------------------------------------------

def _broadcasting(opname: str, op: Function, *operands) -> Tensor:
    """Apply `op`; if NumPy refuses to broadcast, say which op and which shapes (checked only
    on failure, so the common path pays nothing)."""
    try:
        return op(*operands)
    except ValueError:
        shapes = [t.shape if isinstance(t, Tensor) else np.shape(t) for t in operands]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"{opname}: shapes {' and '.join(map(str, shapes))} cannot be "
                             f"broadcast together") from None
        raise


def add(a, b):
    return _broadcasting("add", Add(), a, b)


def sub(a, b):
    return _broadcasting("sub", Sub(), a, b)


def mul(a, b):
    return _broadcasting("mul", Mul(), a, b)


def div(a, b):
    return _broadcasting("div", Div(), a, b)


def neg(x):
    return Neg()(x)


def pow(x, exponent):
    if isinstance(exponent, Tensor):
        # x ** t with a tensor exponent: exp(t * log x), differentiable in both.
        return exp(exponent * log(x))
    return Pow(exponent)(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def clip(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    return Clip(min, max)(x)


clamp = clip


def maximum(a, b):
    return _broadcasting("maximum", Maximum(), a, b)


def where(cond, a, b):
    cond = cond.data if isinstance(cond, Tensor) else cond
    ref = a if isinstance(a, Tensor) else as_tensor(b)
    a, b = as_tensor(a, ref), as_tensor(b, ref)
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: condition {cond.shape}, a {a.shape} and b {b.shape} cannot be "
                         f"broadcast together") from None
    return Where(cond.astype(bool))(a, b)


def matmul(a, b):
    a, b = as_tensor(a, b if isinstance(b, Tensor) else None), as_tensor(b, a if isinstance(a, Tensor) else None)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got {a.shape} and {b.shape}")
    if a.ndim == 1 and b.ndim == 1:
        return (a.reshape(1, -1) @ b.reshape(-1, 1)).reshape(())
    if a.ndim == 1:
        return MatMul()(a.reshape(1, -1), b).squeeze(-2)
    if b.ndim == 1:
        return MatMul()(a, b.reshape(-1, 1)).squeeze(-1)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                         f"({a.shape[-1]} != {b.shape[-2]})")
    return MatMul()(a, b)


def astype(x, dtype):
    from ..backend import resolve_dtype
    dtype = resolve_dtype(dtype)
    if x.dtype == dtype:
        return x
    return AsType(dtype)(x)
