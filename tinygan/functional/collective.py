"""Differentiable collectives: `all_reduce_sum`, and synchronised batch norm built on it.

all_reduce_sum(x) = Σ_r x_r, the sum of x over the ranks (`tinygan.distributed`), on every
rank.  Seen as one function of all the ranks' inputs, its adjoint is itself: the gradient
reaching x_r is Σ_r' gy_r', the sum of the gradients every rank's result received.  So its
backward is all_reduce_sum of the incoming gradient, itself an all_reduce_sum op, and every
derivative order is the same one line.  With one process it is the identity.

sync_batch_norm normalises each channel with the statistics of the GLOBAL batch, every
rank's samples together, as one process with the whole batch would:

    s = [Σ (x - K), Σ (x - K)²] over this rank's values   (2C numbers, one message)
    S = all_reduce_sum(s),  M = this rank's count × size()
    d = S₁ / M,  mean = K + d,  var = S₂ / M - d²,  y = (x - mean) / sqrt(var + eps) · w + b

written in differentiable Tensor ops.  The backward that autograd derives from it sends the
2C-vector of gradients of S — per channel a linear combination of Σ gy and Σ gy·x̂, what a
hand-written sync BN would send — through all_reduce_sum's backward: one message forward, one
backward, and double backward (the gradient penalty through a sync-BN critic) needs nothing
more.  Why this total gradient is right: rank r back-propagates only its own loss L_r, but
L_r reaches every rank's x through S; the Allreduce in the backward adds the other ranks'
∂L_r'/∂S to its own, so rank r's parameter gradient is its share of ∂(Σ_r L_r)/∂θ, and the
optimizer's averaging of those shares gives the gradient of the mean loss.

K, the running mean (zero without running statistics), is a constant shift: it changes no
value or derivative, only rounding.  E[x²] - E[x]² cancels badly in float32 when a channel's
mean is large beside its spread; around K, which tracks the mean, it does not.  K must be the
same on every rank, and it is: the running statistics are updated from the global S alike
everywhere.  Every rank's batch must hold the same number of samples (M = count × size()).
"""
from __future__ import annotations

from .. import distributed
from ..autograd import Function, Tensor, as_tensor
from ..backend import get_array_module
from .activation import leaky_relu

__all__ = ["all_reduce_sum", "sync_batch_norm"]


class AllReduceSum(Function):
    def forward(self, x):
        out = x.copy()
        distributed.allreduce_([out], average=False)
        return out

    def backward(self, gy):
        return AllReduceSum()(gy)


def all_reduce_sum(x) -> Tensor:
    """Σ over the ranks of x, on every rank (the identity in a single process)."""
    return AllReduceSum()(as_tensor(x))


def sync_batch_norm(x, running_mean, running_var, weight=None, bias=None, momentum=0.1,
                    eps=1e-5, negative_slope=None) -> Tensor:
    """Training-mode batch norm of (N, C, ...) input with the statistics of the batch over
    all ranks (see the module docstring), then leaky_relu(·, negative_slope) unless that is
    None.  Running statistics (arrays, or None for neither) are updated in place from the
    global statistics, with the unbiased variance of the M values, as `batch_norm`."""
    x = as_tensor(x)
    if x.dtype.kind != "f" or x.ndim < 2:
        raise ValueError(f"sync_batch_norm: expected floating-point (N, C, ...) input, got "
                         f"{x.dtype} of shape {x.shape}")
    C = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, C) + (1,) * (x.ndim - 2)
    M = (x.numel() // C) * distributed.size()
    if M <= 1:
        raise ValueError(f"sync_batch_norm: expected more than 1 value per channel when "
                         f"training, got input of shape {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("sync_batch_norm: give both running_mean and running_var, or neither")
    if running_mean is not None:           # the arrays, updated in place below
        running_mean, running_var = (v.data if isinstance(v, Tensor) else v
                                     for v in (running_mean, running_var))
    xp = get_array_module(x.data)
    K = (xp.zeros(C, dtype=x.dtype) if running_mean is None else     # a copy: updated below
         xp.array(running_mean, dtype=x.dtype)).reshape(shape)
    xc = x - K
    from .shape import cat
    S = all_reduce_sum(cat([xc.sum(axes), (xc * xc).sum(axes)]))
    d = S[:C] * (1.0 / M)
    var = S[C:] * (1.0 / M) - d * d
    mean = d + K.reshape(C)
    y = (x - mean.reshape(shape)) * ((var + eps) ** -0.5).reshape(shape)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    if running_mean is not None:
        running_mean[...] = (1 - momentum) * running_mean + momentum * mean.data
        running_var[...] = (1 - momentum) * running_var + momentum * var.data * (M / (M - 1))
    return y if negative_slope is None else leaky_relu(y, negative_slope)
