"""Batch normalization (Ioffe & Szegedy, 2015) with PyTorch's semantics, for (N, C) and (N, C, H, W).

Notation: channel axis 1 holds C channels; channel c's statistics are taken over the other
axes, over M = N (or N*H*W) values; per-channel vectors broadcast as (1, C) or (1, C, 1, 1).

    mean = 1/M sum x          var = 1/M sum (x - mean)^2   (biased)
    inv_std = 1 / sqrt(var + eps)      xhat = (x - mean) * inv_std      y = w * xhat + b

Backward in training mode (sums over the M values of a channel).  xhat_i depends on x_j
directly and through mean and inv_std:  d xhat_i / d x_j = inv_std * (d_ij - 1/M - xhat_i xhat_j / M)
(using d mean/d x_j = 1/M and d inv_std/d x_j = -inv_std^3 (x_j - mean)/M).  Chaining
g = w * gy through it:

    gb = sum(gy)      gw = sum(gy * xhat)      gx = (w * inv_std / M) * (M*gy - gb - xhat * gw)

In evaluation mode mean and inv_std are constants (the running statistics): y is an affine map
of x and gx = w * inv_std * gy.

Double backward (WGAN-GP, R1 through a BN critic) needs d(gx)/dx, and gx depends on x through
mean and inv_std as well as through xhat.  Taking inv_std from the forward as a constant array,
as DeZero did, silently drops that term.  So when the backward is being recorded
(create_graph=True) it is written in differentiable ops with mean and inv_std *recomputed from
the input Tensor*; when it is not, the same formula runs as one raw kernel on the saved
statistics (same numbers, nothing will differentiate them).

batch_norm_act(x, ..., negative_slope) is leaky_relu(batch_norm(x, ...), negative_slope) as
one op (ReLU: slope 0), the pair every hidden layer of a DCGAN ends with: one pass forward,
two backward, and the normalised x is never stored.  Its backward is the activation's masked
scale (piecewise constant, read from the sign of y) followed by the batch-norm backward above,
so it differentiates again exactly as the two ops do.  nn.Sequential runs a BatchNorm followed
by ReLU / LeakyReLU through it.
"""
from __future__ import annotations

from .. import kernels
from ..autograd import Function, Tensor, as_tensor, is_grad_enabled
from ..backend import get_array_module
from .activation import LeakyReLUGrad

__all__ = ["batch_norm", "batch_norm_act"]


def _channel_axes(x_shape):
    """The reduction axes of an input of shape x_shape, and the shape that broadcasts a (C,)
    vector against it: (1, C) or (1, C, 1, 1)."""
    ndim = len(x_shape)
    return (0,) + tuple(range(2, ndim)), (1, x_shape[1]) + (1,) * (ndim - 2)


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

    def standardize(self, x: Tensor):
        """(xhat, inv_std) as Tensors; in training mode functions of x, so differentiable."""
        axes, shape = _channel_axes(x.shape)
        if not self.training:
            inv_std = Tensor(self.inv_std.reshape(shape))
            return (x - self.mean.reshape(shape)) * inv_std, inv_std
        xc = x - x.mean(axes, keepdim=True)
        inv_std = ((xc * xc).mean(axes, keepdim=True) + self.eps) ** -0.5
        return xc * inv_std, inv_std

    def backward(self, gy):
        x, w, _ = self.inputs
        need_x, need_w, need_b = self.needs_input_grad
        if self.training and not is_grad_enabled():
            # Plain backward: one fused kernel on the saved statistics.
            kernel = kernels.get("batch_norm_backward", get_array_module(x.data))
            gx, gw, gb = kernel(x.data, gy.data, self.mean, self.inv_std, w.data)
            return (Tensor(gx) if need_x else None, Tensor(gw) if need_w else None,
                    Tensor(gb) if need_b else None)

        axes, shape = _channel_axes(x.shape)
        xhat, inv_std = self.standardize(x)
        gb = gy.sum(axes)
        gw = (gy * xhat).sum(axes)
        gx = None
        if need_x:
            scale = w.reshape(shape) * inv_std
            if self.training:
                M = x.numel() // x.shape[1]
                gx = (scale / M) * (gy * M - gb.reshape(shape) - xhat * gw.reshape(shape))
            else:
                gx = gy * scale
        return gx, gw if need_w else None, gb if need_b else None


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
        if self.training and not is_grad_enabled():
            kernel = kernels.get("batch_norm_act_backward", get_array_module(x.data))
            gx, gw, gb = kernel(x.data, y, gy.data, self.mean, self.inv_std, w.data, self.slope)
            need_x, need_w, need_b = self.needs_input_grad
            return (Tensor(gx) if need_x else None, Tensor(gw) if need_w else None,
                    Tensor(gb) if need_b else None)
        # Recorded (or evaluation mode): the two ops' backward, one after the other.
        return super().backward(LeakyReLUGrad(y, self.slope)(gy))


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
