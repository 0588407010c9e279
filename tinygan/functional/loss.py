"""Losses: binary cross-entropy (on logits and on probabilities), cross-entropy / NLL, MSE, L1.

Each is a composition of differentiable ops, so first and second derivatives come from the
ops it is made of.  The one numerical choice that matters is the BCE on logits: with
softplus(x) = log(1 + e^x),

    -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] = softplus(x) - t x,

which is exact for every x (softplus never overflows), whereas log(sigmoid(x)) rounds
sigmoid(x) to 0 for x < -17 in float32 and returns -inf.  For x > 0 it is evaluated as
(1 - t) x + softplus(-x), the same number without the cancellation of softplus(x) - x.
Its derivative is sigmoid(x) - t: the GAN discriminator's gradient in its simplest form.

`reduction` is "mean" (default), "sum" or "none", as in torch.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..autograd import Tensor, as_tensor
from ..backend import get_array_module
from .activation import _float_tensor, log_softmax, softplus
from .arith import clip, where
from .shape import getitem, permute, reshape

__all__ = ["binary_cross_entropy_with_logits", "binary_cross_entropy", "cross_entropy",
           "nll_loss", "mse_loss", "l1_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_reduction(reduction, opname):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{opname}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _pair(input, target, opname):
    """(input, target) as float tensors on one device; a shape mismatch warns, as in torch,
    because broadcasting (N, 1) against (N,) silently builds an (N, N) loss — a classic bug."""
    input = _float_tensor(input, opname)
    target = _float_tensor(as_tensor(target, input), opname, "target")
    if get_array_module(input.data) is not get_array_module(target.data):
        raise ValueError(f"{opname}: input and target are on different devices")
    if input.shape != target.shape:
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ValueError(f"{opname}: input {input.shape} and target {target.shape} cannot be "
                             f"broadcast together") from None
        warnings.warn(f"{opname}: target size {target.shape} differs from input size "
                      f"{input.shape}; they will be broadcast, which is likely not intended",
                      UserWarning, stacklevel=3)
    return input, target


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean"):
    """softplus(x) - t*x  (= BCE of sigmoid(x) against t, computed without forming sigmoid)."""
    opname = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, opname)
    x, t = _pair(input, target, opname)
    # softplus(x) - t x subtracts two numbers near x when x >> 0 and t = 1 (x = 30: 30.0000…
    # minus 30 keeps 9.24e-14 of 9.36e-14 in float64, 0 in float32), and x + softplus(-x) - x
    # does the same for x << 0, t = 0.  softplus(x) = x + softplus(-x) gives each sign of x a
    # form with no such difference; both are exact and smooth (threshold=inf: no linear
    # cut-off), so `where` picks a branch whose 1st and 2nd derivatives are the true ones.
    inf = float("inf")
    loss = where(x.data > 0, (1.0 - t) * x + softplus(-x, threshold=inf),
                 softplus(x, threshold=inf) - t * x)
    if weight is not None:
        loss = loss * as_tensor(weight, x)
    return _reduce(loss, reduction)


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
    """-(t log p + (1 - t) log(1 - p)) for probabilities p; each log is clamped at -100, as
    torch does, so p = 0 or 1 gives a large finite loss instead of inf."""
    opname = "binary_cross_entropy"
    _check_reduction(reduction, opname)
    p, t = _pair(input, target, opname)
    # Checked on host arrays only: on a GPU, reading min/max back would make the host wait for
    # the device at every call.  A p outside [0, 1] is not silent there either: log(p) or
    # log(1 - p) is NaN, so is the loss, and the training loop stops on it (torch's CUDA
    # kernel asserts instead, just as asynchronously).
    if get_array_module(p.data) is np and p.data.size:
        lo, hi = float(p.data.min()), float(p.data.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"{opname}: input must hold probabilities in [0, 1], got values in "
                             f"[{lo:g}, {hi:g}] (shape {p.shape}); for logits use "
                             f"binary_cross_entropy_with_logits")
    with np.errstate(divide="ignore"):       # log(0) = -inf, then clamped
        loss = -(t * clip(p.log(), min=-100.0) + (1.0 - t) * clip((1.0 - p).log(), min=-100.0))
    if weight is not None:
        loss = loss * as_tensor(weight, p)
    return _reduce(loss, reduction)


def _class_last(x: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N * d1 * ..., C): the class axis last, one row per prediction."""
    if x.ndim == 2:
        return x
    return reshape(permute(x, 0, *range(2, x.ndim), 1), -1, x.shape[1])


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """-input[i, target[i]] averaged over i (weighted by weight[target[i]] if given), for
    log-probabilities `input` of shape (N, C) or (N, C, d1, ...) and integer targets of shape
    (N,) or (N, d1, ...).  Targets equal to `ignore_index` contribute nothing."""
    opname = "nll_loss"
    _check_reduction(reduction, opname)
    logp = _float_tensor(input, opname)
    t = target.data if isinstance(target, Tensor) else target
    xp = get_array_module(logp.data)
    t = xp.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{opname}: target must hold integer class indices, got {t.dtype} "
                        f"(shape {t.shape})")
    if logp.ndim < 2 or t.shape != (logp.shape[0],) + logp.shape[2:]:
        raise ValueError(f"{opname}: input must be (N, C, ...) and target (N, ...) with matching "
                         f"N and spatial sizes; got input {logp.shape} and target {t.shape}")
    C = logp.shape[1]
    flat_t = t.reshape(-1).astype(np.int64)
    keep = flat_t != ignore_index
    bad = keep & ((flat_t < 0) | (flat_t >= C))
    # An eager check on host arrays only (on a GPU, `bad.any()` would make the host wait for
    # the device at every call); there, a bad target's loss is NaN instead (below).
    if xp is np and bad.any():
        raise ValueError(f"{opname}: target values must lie in [0, {C}) (or equal ignore_index="
                         f"{ignore_index}); got {int(flat_t[bad][0])}")
    rows = _class_last(logp)
    safe_t = flat_t * (keep & ~bad)                         # ignored rows read class 0 ...
    picked = getitem(rows, (xp.arange(rows.shape[0]), safe_t))
    w = keep.astype(logp.dtype)                             # ... and are weighted 0
    if weight is not None:
        weight = _float_tensor(weight, opname, "weight")
        if weight.shape != (C,):
            raise ValueError(f"{opname}: weight must have shape ({C},), got {weight.shape}")
        w = w * weight.data[safe_t]
    if xp is not np:
        w = xp.where(bad, w.dtype.type(np.nan), w)
    loss = -picked * w
    if reduction == "none":
        return loss.reshape(t.shape)
    if reduction == "sum":
        return loss.sum()
    # torch: divided by the total weight (an array: float() of it would wait for the GPU)
    return loss.sum() / w.sum().astype(loss.dtype)


def cross_entropy(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    """nll_loss(log_softmax(input, dim=1), target).  A float `target` of the same shape as the
    input is read as class probabilities: -(target * log_softmax(input)).sum(1)."""
    opname = "cross_entropy"
    _check_reduction(reduction, opname)
    x = _float_tensor(input, opname)
    if x.ndim < 2:
        raise ValueError(f"{opname}: input must be (N, C) or (N, C, ...) logits, got shape "
                         f"{x.shape}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{opname}: label_smoothing must be in [0, 1], got {label_smoothing}")
    logp = log_softmax(x, dim=1)
    tdata = target.data if isinstance(target, Tensor) else target
    tdata = tdata if hasattr(tdata, "dtype") else np.asarray(tdata)
    if tdata.dtype.kind == "f":                             # soft targets
        probs = as_tensor(target, x)
        if probs.shape != x.shape:
            raise ValueError(f"{opname}: probability targets must match the input shape "
                             f"{x.shape}, got {probs.shape}")
        if label_smoothing:
            probs = probs * (1.0 - label_smoothing) + label_smoothing / x.shape[1]
        loss = -(probs * logp).sum(1)
        return _reduce(loss, reduction)
    loss = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing and weight is None:
        # torch: (1 - eps) * nll + eps * mean over classes of -log p, same reduction/ignore rule
        keep = get_array_module(x.data).asarray(tdata).reshape(-1) != ignore_index
        smooth = -_class_last(logp).mean(1) * keep.astype(x.dtype)
        if reduction == "none":
            smooth = smooth.reshape(np.shape(tdata))
        elif reduction == "sum":
            smooth = smooth.sum()
        else:
            smooth = smooth.sum() / keep.sum().astype(smooth.dtype)
        loss = loss * (1.0 - label_smoothing) + smooth * label_smoothing
    elif label_smoothing:
        raise ValueError(f"{opname}: label_smoothing with class weights is not supported")
    return loss


def mse_loss(input, target, reduction: str = "mean"):
    """(input - target)^2, reduced."""
    _check_reduction(reduction, "mse_loss")
    x, t = _pair(input, target, "mse_loss")
    d = x - t
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction: str = "mean"):
    """|input - target|, reduced (subgradient 0 at equality, as torch's sign)."""
    _check_reduction(reduction, "l1_loss")
    x, t = _pair(input, target, "l1_loss")
    return _reduce((x - t).abs(), reduction)
