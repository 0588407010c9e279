"""Weight initialisation, PyTorch's `torch.nn.init`: every function fills `t` in place from the
library's seeded generator (`tinygan.manual_seed`), under `no_grad`, and returns `t`.  The
filling itself is the Tensor's in-place method (`t.normal_(mean, std)`, `t.uniform_(a, b)`,
`t.fill_(v)`).  `t` may also be a raw array, the `.data` of a Tensor: ported PyTorch code
writes `nn.init.normal_(m.weight.data, 0.0, 0.02)`, and that fills `m.weight` here too.

Why the scales (He et al. 2015, Glorot & Bengio 2010): a layer y = W x with fan_in inputs of
unit variance gives Var(y) = fan_in · Var(W).  Keeping activations at unit variance through a
nonlinearity that keeps a fraction 1/gain² of the variance needs Var(W) = gain² / fan_in
(kaiming, mode "fan_in"; "fan_out" keeps the gradients' variance instead), and Glorot's
compromise between the two is Var(W) = gain² · 2 / (fan_in + fan_out).  A uniform U(-b, b)
has variance b²/3, hence every `bound = sqrt(3) · std`.
"""
from __future__ import annotations

import math

from ..autograd import Tensor, _is_array, no_grad

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
           "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_"]


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which `nonlinearity` should scale the std of the weights before it."""
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    """fan_in = size(1) · receptive field, fan_out = size(0) · receptive field, as torch.

    For a Linear weight (out, in) and a Conv2d weight (OC, C, KH, KW) that is the number of
    inputs / outputs of one unit.  A ConvTranspose2d weight is (C_in, C_out, KH, KW), so the
    same formula gives C_out·KH·KW as its "fan_in" — torch's convention, kept for parity.
    """
    if t.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dims, got shape {t.shape}")
    receptive = 1
    for s in t.shape[2:]:
        receptive *= s
    return t.shape[1] * receptive, t.shape[0] * receptive


def _tensor(t) -> Tensor:
    """`t` itself, or a Tensor sharing the array `t` (so filling it fills `t`)."""
    if isinstance(t, Tensor):
        return t
    if _is_array(t):
        return Tensor(t)
    raise TypeError(f"nn.init: expected a Tensor or an array, got {type(t).__name__}")


@no_grad()
def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    _tensor(t).uniform_(a, b)
    return t


@no_grad()
def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std²)."""
    _tensor(t).normal_(mean, std)
    return t


@no_grad()
def constant_(t: Tensor, val: float) -> Tensor:
    _tensor(t).fill_(val)
    return t


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fan_in_and_fan_out(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


@no_grad()
def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = sqrt(3) · gain / sqrt(fan); `a` is the leaky-ReLU slope after the layer.

    PyTorch's default layer init calls this with a = sqrt(5): gain² = 2 / 6, so b = 1/sqrt(fan_in).
    """
    if _tensor(t).numel() == 0:
        return t
    bound = math.sqrt(3.0) * _kaiming_std(_tensor(t), a, mode, nonlinearity)
    return uniform_(t, -bound, bound)


@no_grad()
def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std²) with std = gain / sqrt(fan)."""
    if _tensor(t).numel() == 0:
        return t
    return normal_(t, 0.0, _kaiming_std(_tensor(t), a, mode, nonlinearity))


@no_grad()
def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain · sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fan_in_and_fan_out(_tensor(t))
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


@no_grad()
def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std²) with std = gain · sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fan_in_and_fan_out(_tensor(t))
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
