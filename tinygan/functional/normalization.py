"""Batch normalization (Ioffe & Szegedy, 2015) with PyTorch's semantics, for (N, C) and (N, C, H, W).

Notation: channel axis 1 holds C channels; channel c's statistics are taken over the other
axes, over M = N (or N*H*W) values; per-channel vectors broadcast as (1, C) or (1, C, 1, 1);
sums and means below run over a channel's M values.

    mean = 1/M sum x          var = 1/M sum (x - mean)^2   (biased)
    inv_std = 1 / sqrt(var + eps)      xhat = (x - mean) * inv_std      y = w * xhat + b

Like the convolutions, training-mode batch norm is a family closed under differentiation,
here of two ops.  xhat_i depends on every x_j, directly and through mean and inv_std:
    d xhat_i / d x_j = inv_std * (d_ij - 1/M - xhat_i xhat_j / M),
    d inv_std / d x_j = -inv_std^2 * xhat_j / M.
So a gradient g reaching xhat reaches x as inv_std * P(g), where
    P(g) = g - mean(g) - xhat * mean(g * xhat)
removes g's components along 1 and along xhat (shifting or scaling a channel's batch does not
change its xhat).  With that:

    batch_norm(x, w, b) = y                 kernels batch_norm_stats, batch_norm_apply
    batch_norm_grad(x, w, gy) = (gx, gw, gb), the backward of batch_norm, kernel batch_norm_backward:
        gx = w * inv_std * P(gy)      gw = sum(gy * xhat)      gb = sum(gy)
    batch_norm_grad's backward, upstream (ggx, ggw, ggb), in differentiable Tensor ops:
        ggy = w * inv_std * P(ggx) + ggw * xhat + ggb
        gw' = inv_std * sum(ggx * P(gy))
        gx' = inv_std * P(h) - w * inv_std^2 * mean(ggx * P(gy)) * xhat,
              h = (ggw - w * inv_std * mean(ggx * xhat)) * gy - w * inv_std * mean(gy * xhat) * ggx
(gx' is the chain rule above applied to <ggx, gx> + ggw gw + ggb gb: h is its derivative in
xhat at fixed inv_std, the last term the path through inv_std: DeZero's backward multiplied
by the forward's inv_std array and lost it, so its second derivatives were wrong.)  Those
lines recompute xhat and inv_std from the input Tensor x, so they too depend on x as they
should, and a third order is right as well.  The first-order gradient is the raw kernel
whether or not the backward is being recorded; the family differentiates to any order.

In evaluation mode mean and inv_std are constants (the running statistics): y is an affine map
of x, gx = w * inv_std * gy, gw = sum(gy * xhat), gb = sum(gy), written in Tensor ops.

batch_norm_act(x, ..., negative_slope) is leaky_relu(batch_norm(x, ...), negative_slope) as
one op (ReLU: slope 0), the pair every hidden layer of a DCGAN ends with: one pass forward,
two backward, and the normalised x is never stored (`nn.BatchNormAct2d` is its layer).  Its
gradient is batch_norm_grad(x, w, D gy), D the activation's masked scale read from the sign
of y (piecewise constant, so D has no derivative of its own): one kernel,
batch_norm_act_backward, and a backward that is batch_norm_grad's with gy -> D gy and its
ggy -> D ggy.

instance_norm(x, ...) (Ulyanov et al., 2016) normalises each (sample, channel) plane of x
(N, C, H, W) by its own mean and variance.  That is batch norm of the view (1, N·C, H, W),
whose N·C "channels" are exactly those planes, so it is written as one: the same kernels, the
same tested gradients of every order.  The per-channel weight and bias are tiled to (N·C,) by
broadcast_to + reshape (their gradients sum back over the batch), and running statistics are
tiled in and averaged over the batch on the way out, as torch does.
"""
from __future__ import annotations

from .. import kernels
from ..autograd import Function, Tensor, as_tensor
from ..backend import get_array_module
from .activation import LeakyReLUGrad
from .reduce import broadcast_to

__all__ = ["batch_norm", "batch_norm_act", "instance_norm"]


def _channel_axes(x_shape):
    """The reduction axes of an input of shape x_shape, and the shape that broadcasts a (C,)
    vector against it: (1, C) or (1, C, 1, 1)."""
    ndim = len(x_shape)
    return (0,) + tuple(range(2, ndim)), (1, x_shape[1]) + (1,) * (ndim - 2)


def _standardize(x: Tensor, eps: float):
    """(xhat, inv_std) of the batch, recomputed from the Tensor x: functions of x, so they
    differentiate (the forward's arrays would be constants)."""
    axes, _ = _channel_axes(x.shape)
    xc = x - x.mean(axes, keepdim=True)
    inv_std = ((xc * xc).mean(axes, keepdim=True) + eps) ** -0.5
    return xc * inv_std, inv_std


class BatchNorm(Function):
    """y = (x - mean) * inv_std * w + b per channel: batch statistics when `stats` is None
    (training), else the given constant (mean, var) (evaluation)."""

    def __init__(self, eps: float, stats=None):
        self.eps, self.stats = eps, stats
        self.training = stats is None

    def statistics(self, x):
        """Sets mean, var, inv_std (arrays): of the batch, or the given running ones."""
        xp = get_array_module(x)
        if self.training:
            self.mean, self.var = kernels.get("batch_norm_stats", xp)(x)
        else:      # copies: a later training step updates the running stats in place
            self.mean, self.var = (xp.array(s, dtype=x.dtype) for s in self.stats)
        self.inv_std = 1.0 / xp.sqrt(self.var + self.eps)

    def forward(self, x, w, b):
        self.statistics(x)
        return kernels.get("batch_norm_apply", get_array_module(x))(x, self.mean, self.inv_std, w, b)

    def backward(self, gy):
        x, w, _ = self.inputs
        if self.training:
            grads = BatchNormGrad(self.eps, self.mean, self.inv_std)(x, w, gy)
        else:
            grads = _affine_backward(x, w, gy, self.mean, self.inv_std, self.needs_input_grad)
        return tuple(g if need else None for g, need in zip(grads, self.needs_input_grad))


class BatchNormGrad(Function):
    """(gx, gw, gb) = batch_norm_grad(x, w, gy): the training-mode gradient of batch_norm as an
    op of (x, w, gy).  mean and inv_std are the forward's, for the kernel only."""

    def __init__(self, eps: float, mean, inv_std):
        self.eps, self.mean, self.inv_std = eps, mean, inv_std

    def forward(self, x, w, gy):
        return kernels.get("batch_norm_backward", get_array_module(x))(
            x, gy, self.mean, self.inv_std, w)

    def backward(self, ggx, ggw, ggb):
        x, w, gy = self.inputs
        return _grad_of_grad(x, w, gy, ggx, ggw, ggb, self.eps, self.needs_input_grad)


def _grad_of_grad(x, w, gy, ggx, ggw, ggb, eps, need):
    """(gx', gw', ggy): the backward of batch_norm_grad, the formulas of the module docstring."""
    axes, shape = _channel_axes(x.shape)
    xhat, inv_std = _standardize(x, eps)

    def mean(t):
        return t.mean(axes, keepdim=True)

    def P(g):
        return g - mean(g) - xhat * mean(g * xhat)

    ws = w.reshape(shape) * inv_std
    gx = gw = ggy = None
    if need[0] or need[1]:
        Pgy = P(gy)
    if need[0]:
        h = (ggw.reshape(shape) - ws * mean(ggx * xhat)) * gy - ws * mean(gy * xhat) * ggx
        gx = inv_std * P(h) - ws * inv_std * mean(ggx * Pgy) * xhat
    if need[1]:
        gw = (inv_std * (ggx * Pgy).sum(axes, keepdim=True)).reshape(w.shape)
    if need[2]:
        ggy = ws * P(ggx) + ggw.reshape(shape) * xhat + ggb.reshape(shape)
    return gx, gw, ggy


def _affine_backward(x, w, gy, mean, inv_std, need):
    """Evaluation mode: y = w * (x - mean) * inv_std + b with constant mean and inv_std."""
    axes, shape = _channel_axes(x.shape)
    inv_std = Tensor(inv_std.reshape(shape))
    gx = gy * (w.reshape(shape) * inv_std) if need[0] else None
    gw = (gy * ((x - mean.reshape(shape)) * inv_std)).sum(axes) if need[1] else None
    return gx, gw, gy.sum(axes) if need[2] else None


class BatchNormAct(BatchNorm):
    """y = leaky_relu(batch_norm(x), slope) for 0 <= slope <= 1, as one op."""

    def __init__(self, eps: float, stats, slope: float):
        super().__init__(eps, stats)
        self.slope = slope

    def forward(self, x, w, b):
        self.statistics(x)
        return kernels.get("batch_norm_act_apply", get_array_module(x))(
            x, self.mean, self.inv_std, w, b, self.slope)

    def backward(self, gy):
        x, w, _ = self.inputs
        y = self.output().data            # its sign is the activation's mask
        if self.training:
            grads = BatchNormActGrad(self.eps, self.mean, self.inv_std, y, self.slope)(x, w, gy)
        else:
            grads = _affine_backward(x, w, LeakyReLUGrad(y, self.slope)(gy), self.mean,
                                     self.inv_std, self.needs_input_grad)
        return tuple(g if need else None for g, need in zip(grads, self.needs_input_grad))


class BatchNormActGrad(BatchNormGrad):
    """batch_norm_grad(x, w, D gy), D = the activation's masked scale (from the sign of y)."""

    def __init__(self, eps: float, mean, inv_std, y, slope: float):
        super().__init__(eps, mean, inv_std)
        self.y, self.slope = y, slope

    def forward(self, x, w, gy):
        return kernels.get("batch_norm_act_backward", get_array_module(x))(
            x, self.y, gy, self.mean, self.inv_std, w, self.slope)

    def backward(self, ggx, ggw, ggb):
        x, w, gy = self.inputs

        def D(g):              # linear, with a constant mask: its own adjoint (a new op per use)
            return LeakyReLUGrad(self.y, self.slope)(g)

        gx, gw, ggy = _grad_of_grad(x, w, D(gy), ggx, ggw, ggb, self.eps, self.needs_input_grad)
        return gx, gw, None if ggy is None else D(ggy)


def _stat_array(v, name: str, x: Tensor, op: str):
    """The raw array behind a running statistic (an array, or a Tensor's .data)."""
    data = v.data if isinstance(v, Tensor) else v
    if not (hasattr(data, "dtype") and hasattr(data, "shape")):
        raise TypeError(f"{op}: {name} must be an array or a Tensor, got {type(v).__name__}")
    if data.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got {data.dtype}")
    if get_array_module(data) is not get_array_module(x.data):
        raise ValueError(f"{op}: {name} is on a different device than the input "
                         f"({x.device}); move it with .to(device)")
    return data


def batch_norm_act(x, running_mean, running_var, weight=None, bias=None, training=False,
                   momentum=0.1, eps=1e-5, negative_slope=0.0):
    """leaky_relu(batch_norm(x, ...), negative_slope) as one op, for 0 <= negative_slope <= 1
    (0: ReLU).  Same arguments and running-statistics update as `batch_norm`; same numbers
    as the two ops one after the other."""
    if not 0.0 <= negative_slope <= 1.0:
        raise ValueError(f"batch_norm_act: negative_slope must be in [0, 1], got {negative_slope}")
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps,
                       float(negative_slope))


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over (N, C) or (N, C, H, W), as `torch.nn.functional.batch_norm`.

    training=True normalises with the batch mean and biased variance and, when running
    statistics are given (arrays or Tensors of shape (C,)), updates them IN PLACE:
        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * var * M / (M - 1)   (unbiased)
    training=False normalises with the running statistics, which must be given.
    weight and bias (shape (C,)) are the affine part; None means w = 1, b = 0.
    """
    return _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, None)


def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, slope):
    op = "batch_norm" if slope is None else "batch_norm_act"     # named in every error
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
    if x.ndim not in (2, 4):
        raise ValueError(f"{op}: input must be (N, C) or (N, C, H, W), got shape {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if running_mean is not None:
        running_mean = _stat_array(running_mean, "running_mean", x, op)
        running_var = _stat_array(running_var, "running_var", x, op)
    C = x.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is None:
            continue
        if not hasattr(v, "shape"):
            raise TypeError(f"{op}: {name} must be a Tensor or an array, got {type(v).__name__}")
        if tuple(v.shape) != (C,):
            raise ValueError(f"{op}: {name} has shape {tuple(v.shape)} but input {x.shape} "
                             f"has {C} channels, expected ({C},)")
    M = x.numel() // C if C else 0
    if training:
        if M <= 1:
            raise ValueError(f"{op}: Expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        if momentum is None:
            raise NotImplementedError(
                f"{op}: momentum=None (cumulative moving average) needs the number of batches "
                "seen, which the functional form does not have; pass momentum=1/num_batches_tracked "
                "(what torch.nn.BatchNorm does)")
    elif running_mean is None:
        raise ValueError(f"{op}: running_mean and running_var are required when training=False")

    xp = get_array_module(x.data)
    if weight is None:
        weight = xp.ones(C, dtype=x.dtype)
    if bias is None:
        bias = xp.zeros(C, dtype=x.dtype)
    stats = None if training else (running_mean, running_var)
    op = BatchNorm(eps, stats) if slope is None else BatchNormAct(eps, stats, slope)
    y = op(x, weight, bias)

    if training and running_mean is not None:
        # BN's one visible side effect, as in torch: the running statistics are updated in
        # place, so the module's buffers (the same arrays) see the change.
        running_mean[...] = (1 - momentum) * running_mean + momentum * op.mean
        running_var[...] = (1 - momentum) * running_var + momentum * op.var * (M / (M - 1))
    return y


def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Instance normalization of (N, C, L), (N, C, H, W) or (N, C, D, H, W) input, as
    `torch.nn.functional.instance_norm`: each sample's channel is normalised over its own
    spatial positions (biased variance); weight and bias (C,) are per channel.

    use_input_stats=True (training, and always without running statistics) normalises with
    the plane's own statistics and, when running_mean / running_var (C,) are given, moves them
    in place by `momentum` towards the batch average of the planes' mean and unbiased variance.
    use_input_stats=False normalises with the running statistics, which must be given.
    """
    op = "instance_norm"
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{op}: input must be (N, C, L), (N, C, H, W) or (N, C, D, H, W), got "
                         f"shape {x.shape}")
    N, C = x.shape[:2]
    spatial = x.numel() // (N * C) if N * C else 0
    if use_input_stats and spatial <= 1:
        raise ValueError(f"{op}: Expected more than 1 spatial element when training, got input "
                         f"of shape {x.shape}")
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not use_input_stats and running_mean is None:
        raise ValueError(f"{op}: running_mean and running_var are required when "
                         f"use_input_stats=False")
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and tuple(getattr(v, "shape", ())) != (C,):
            raise ValueError(f"{op}: {name} has shape {tuple(getattr(v, 'shape', ()))} but input "
                             f"{x.shape} has {C} channels, expected ({C},)")
    xp = get_array_module(x.data)

    def tiled(v):           # (C,) -> (N·C,): channel c of every sample gets v[c]
        return None if v is None else broadcast_to(as_tensor(v).reshape(1, C), (N, C)).reshape(N * C)

    stats = None            # the caller's arrays, updated in place below
    if running_mean is not None:
        stats = [_stat_array(running_mean, "running_mean", x, op),
                 _stat_array(running_var, "running_var", x, op)]
    tiled_stats = [None, None] if stats is None else [xp.tile(s, N) for s in stats]
    planes = x.reshape((1, N * C) + (x.shape[2:] if x.ndim == 4 else (spatial, 1)))
    y = batch_norm(planes, *tiled_stats, tiled(weight), tiled(bias), use_input_stats, momentum, eps)
    if use_input_stats and stats is not None:
        for s, t in zip(stats, tiled_stats):
            s[...] = t.reshape(N, C).mean(axis=0)
    return y.reshape(x.shape)
