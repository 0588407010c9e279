"""linear, dropout, embedding: small ops built from the differentiable ones.

    linear     y = x W^T + b          (W is (out, in), as torch stores it; one op, see Linear)
    dropout    y = x * m / (1 - p)    m ~ Bernoulli(1 - p), fixed for the backward
               (dropout2d: one m per channel)
    embedding  y = W[idx]             the backward scatter-adds rows (GetItemGrad)
"""
from __future__ import annotations

import numpy as np

from .. import distributed, kernels
from ..autograd import Function, Tensor
from ..backend import get_array_module, get_rng
from .activation import _float_tensor
from .arith import where
from .shape import getitem

__all__ = ["linear", "dropout", "dropout2d", "embedding"]


def _same_device(opname, **tensors):
    mods = {name: get_array_module(t.data) for name, t in tensors.items() if t is not None}
    if len(set(mods.values())) > 1:
        where = ", ".join(f"{n} on {'cpu' if m is np else 'cuda'}" for n, m in mods.items())
        raise ValueError(f"{opname}: all tensors must be on one device ({where})")


class Linear(Function):
    """y = x Wᵀ (+ b) for x (N, in), W (out, in), b (out,).

        gx = gy W        gW = gyᵀ x        gb = sum of gy over the batch

    One op rather than matmul(x, Wᵀ) + b: composed, W's gradient arrived as the transpose
    of xᵀ gy, a Fortran-ordered view that every step copied into a fresh C-ordered buffer
    before the optimizer could read it flat; here gyᵀ x is computed in W's own layout.  The
    backward is matmuls and a sum of Tensors, so it differentiates again.
    """

    def forward(self, x, W, b=None):
        y = kernels.get("matmul", get_array_module(x))(x, W.T)
        if b is not None:
            y += b                      # y is matmul's fresh output: adding in place is safe
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        need = self.needs_input_grad
        gx = gy @ W if need[0] else None
        gW = gy.transpose(0, 1) @ x if need[1] else None
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, (gy.sum(0) if need[2] else None)


def linear(x, weight, bias=None):
    """x @ weight.T + bias for x of shape (..., in), weight (out, in), bias (out,)."""
    x = _float_tensor(x, "linear")
    weight = _float_tensor(weight, "linear", "weight")
    bias = None if bias is None else _float_tensor(bias, "linear", "bias")
    _same_device("linear", input=x, weight=weight, bias=bias)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got "
                         f"{weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input's last dimension must equal in_features="
                         f"{weight.shape[1]}; got input {x.shape} and weight {weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    args = (weight,) if bias is None else (weight, bias)
    if x.ndim == 2:
        return Linear()(x, *args)
    return Linear()(x.reshape(-1, x.shape[-1]), *args).reshape(*x.shape[:-1], weight.shape[0])


def dropout(x, p: float = 0.5, training: bool = True):
    """Zero each element with probability p and scale the survivors by 1/(1-p) (inverted
    dropout: the expectation is unchanged, so eval mode is the identity)."""
    x = _float_tensor(x, "dropout")
    return _dropout(x, p, training, x.shape, "dropout")


def dropout2d(x, p: float = 0.5, training: bool = True):
    """Zero whole channels of NCHW input with probability p, scale the rest by 1/(1-p):
    neighbouring pixels are correlated, so dropping single ones barely regularises a conv."""
    x = _float_tensor(x, "dropout2d")
    if x.ndim != 4:
        raise ValueError(f"dropout2d: input must be 4-D NCHW, got shape {x.shape}")
    return _dropout(x, p, training, x.shape[:2] + (1, 1), "dropout2d")


def _dropout(x, p, training, mask_shape, op):
    """x * m / (1-p) with m ~ Bernoulli(1-p) of `mask_shape` (broadcast against x), drawn from
    the library's seeded generator so that `manual_seed` replays the same masks."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) \
            or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    xp = get_array_module(x.data)
    if p == 1.0:
        return x * xp.zeros(mask_shape, dtype=x.dtype)
    rng = get_rng("cpu" if xp is np else "cuda")
    # In a data-parallel step dim 0 is this rank's slice of the batch: its masks are its rows
    # of the whole batch's, as every per-sample draw (distributed.per_sample).
    def draw(m):
        return rng.random((m,) + tuple(mask_shape[1:])) >= p
    keep = (distributed.per_sample(mask_shape[0], draw) if len(mask_shape) else draw(1)[0]).astype(x.dtype)
    keep *= x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor(keep)


def embedding(idx, weight):
    """weight[idx]: rows of the (num_embeddings, dim) table for integer indices of any shape."""
    weight = _float_tensor(weight, "embedding", "weight")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"{weight.shape}")
    raw = idx.data if isinstance(idx, Tensor) else idx
    xp = get_array_module(weight.data)
    raw = xp.asarray(raw)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {raw.dtype} (shape {raw.shape})")
    # The range is checked eagerly on host arrays only: on a GPU, min()/max() would make the
    # host wait for the device at every call.  There, a row looked up with a bad index is NaN
    # (CuPy's indexing would wrap it around silently).
    if xp is np:
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) >= weight.shape[0]):
            raise ValueError(f"embedding: indices must lie in [0, {weight.shape[0]}), got values "
                             f"in [{int(raw.min())}, {int(raw.max())}]")
        return getitem(weight, raw.astype(np.int64))
    bad = (raw < 0) | (raw >= weight.shape[0])
    rows = getitem(weight, xp.where(bad, 0, raw).astype(np.int64))
    return where(bad[..., None], weight.dtype.type(np.nan), rows)
