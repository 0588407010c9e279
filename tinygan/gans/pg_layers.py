"""The three building blocks Karras et al. 2018 (PG-GAN, §4 and Appendix A) add to a conv GAN.

- Equalized learning rate (§4.1): weights are drawn from N(0, 1) and multiplied at *run time*
  by He's constant c = gain / sqrt(fan_in).  The layer computes the same function as a plain
  layer with weight c·w, but Adam's update is scale-invariant per parameter, so every weight
  moves at the same relative speed whatever its layer's fan-in.
- Pixelwise feature vector normalisation (§4.2), used in G after every conv:
      b[n, :, h, w] = a[n, :, h, w] / sqrt( 1/C Σ_c a[n, c, h, w]² + ε ),   ε = 1e-8.
- Minibatch standard deviation (§3), before D's last block: split the batch into groups of
  G = 4 samples, take the standard deviation of every feature over each group, average it
  over features and pixels to one number per group, and append it as one constant feature map:
      y = x.reshape(G, M, C, H, W)               (group m holds samples m, M + m, 2M + m, ...)
      s[m] = mean_{c,h,w} sqrt( Var_g y[g, m, c, h, w] + ε )     (biased variance, ε = 1e-8)
      out = cat([x, s[n mod M] as an (N, 1, H, W) map], dim=1)
  The grouping is the official code's: a reshape to (G, -1, ...), so group m is every M-th sample.

The two functions are compositions of differentiable tinygan ops (mean, sqrt, reshape, expand,
cat), so their first and second derivatives come for free — the WGAN-GP penalty differentiates
D twice, through the minibatch-stddev layer; tests/test_pggan.py gradchecks both orders.
"""
from __future__ import annotations

import math

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..nn.module import Parameter
from ..tensor_factories import randn, zeros

__all__ = ["pixel_norm", "minibatch_stddev", "EqualizedConv2d", "EqualizedLinear", "PixelNorm",
           "MinibatchStddev"]


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean over channels (dim 1) of x² + eps), for (N, C) latents and (N, C, H, W) maps."""
    if not isinstance(x, Tensor):
        raise TypeError(f"pixel_norm: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (2, 4):
        raise ValueError(f"pixel_norm: input must be (N, C) or (N, C, H, W), got shape {x.shape}")
    return x / ((x * x).mean(dim=1, keepdim=True) + eps).sqrt()


def minibatch_stddev(x: Tensor, group_size: int = 4, eps: float = 1e-8) -> Tensor:
    """(N, C, H, W) -> (N, C + 1, H, W): x with the group's mean feature stddev as a last channel.

    The group size is min(group_size, N); N must be a multiple of it (as in the official code).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"minibatch_stddev: input must be a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"minibatch_stddev: input must be (N, C, H, W), got shape {x.shape}")
    N, C, H, W = x.shape
    G = min(int(group_size), N)
    if G < 1 or N % G:
        raise ValueError(f"minibatch_stddev: batch size {N} (input {x.shape}) is not a multiple "
                         f"of the group size {G}")
    M = N // G
    y = x.reshape(G, M, C, H, W)
    y = y - y.mean(dim=0, keepdim=True)
    std = ((y * y).mean(dim=0) + eps).sqrt()            # (M, C, H, W): per-feature spread
    s = std.mean(dim=(1, 2, 3))                         # (M,): one number per group
    s = s.reshape(1, M, 1, 1, 1).expand(G, M, 1, H, W).reshape(N, 1, H, W)
    return F.cat([x, s], dim=1)


class PixelNorm(nn.Module):
    def forward(self, x):
        return pixel_norm(x)


class MinibatchStddev(nn.Module):
    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = int(group_size)

    def forward(self, x):
        return minibatch_stddev(x, self.group_size)

    def extra_repr(self):
        return f"group_size={self.group_size}"


class EqualizedConv2d(nn.Module):
    """Conv2d whose weight w ~ N(0, 1) is used as c·w, c = gain / sqrt(C·KH·KW); bias starts at 0.
    'same' padding (KH // 2) by default, stride 1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 padding: int | None = None, gain: float = math.sqrt(2)):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.padding = kernel_size // 2 if padding is None else padding
        self.weight = Parameter(randn(out_channels, in_channels, kernel_size, kernel_size).data)
        self.bias = Parameter(zeros(out_channels).data)
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}, scale={self.scale:.4g}")


class EqualizedLinear(nn.Module):
    """Linear with w ~ N(0, 1) used as c·w, c = gain / sqrt(in_features); bias starts at 0."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(randn(out_features, in_features).data)
        self.bias = Parameter(zeros(out_features).data)
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, scale={self.scale:.4g}"
