"""Layers of the image-to-image nets (pix2pix, CycleGAN, SRGAN), with PyTorch's names, state
and defaults: instance norm, padding, pixel (un)shuffle.  The math lives in
`tinygan.functional` (instance_norm, pad, pixel_shuffle, pixel_unshuffle).

    InstanceNorm2d  weight, bias (C,) only if affine=True; running_mean, running_var (C,) and
                    num_batches_tracked () only if track_running_stats=True (both off by default)
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .layers import _NormBase
from .module import Module

__all__ = ["InstanceNorm2d", "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d",
           "ReplicationPad2d", "CircularPad2d", "PixelShuffle", "PixelUnshuffle"]


class InstanceNorm2d(_NormBase):
    """Each sample's channel normalised over its own H×W positions; (N, C, H, W) or (C, H, W).

    Training, or any mode without running statistics: the plane's own statistics (a GAN's
    generator behaves the same in both modes by default).  With track_running_stats=True the
    running ones move towards the batch average and eval mode uses them.  `num_batches_tracked`
    is kept for torch's state_dict keys but, as in torch, never counted.
    """
    _ranks = (3, 4)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)

    def forward(self, x):
        name = type(self).__name__
        if x.ndim not in self._ranks:
            raise ValueError(f"{name}: expected 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
                             f"shape {x.shape}")
        unbatched = x.ndim == 3
        if unbatched:
            x = x.reshape((1,) + x.shape)
        # torch only insists on num_features when it holds per-channel state.
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ValueError(f"{name}: input {x.shape} has {x.shape[1]} channels but the layer "
                             f"has num_features={self.num_features}")
        momentum = 0.0 if self.momentum is None else self.momentum
        y = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training or not self.track_running_stats, momentum, self.eps)
        return y.reshape(y.shape[1:]) if unbatched else y


# ---------------------------------------------------------------------------------------
# Padding: `padding` is an int (all four sides) or torch's (left, right, top, bottom).

def _four(padding, name: str) -> tuple:
    def is_int(p):
        return isinstance(p, (int, np.integer)) and not isinstance(p, bool)
    pad = (padding,) * 4 if is_int(padding) else tuple(padding)
    if len(pad) != 4 or not all(is_int(p) for p in pad):
        raise ValueError(f"{name}: padding must be an int or 4 ints (left, right, top, bottom), "
                         f"got {padding!r}")
    return tuple(int(p) for p in pad)


class _Pad2d(Module):
    mode, value = "constant", 0.0

    def __init__(self, padding):
        super().__init__()
        self.padding = _four(padding, type(self).__name__)

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected 3-D (C, H, W) or 4-D (N, C, H, W) "
                             f"input, got shape {x.shape}")
        return F.pad(x, self.padding, mode=self.mode, value=self.value)

    def extra_repr(self):
        return str(self.padding)


class ZeroPad2d(_Pad2d):
    """A frame of zeros: H + top + bottom, W + left + right."""


class ConstantPad2d(_Pad2d):
    """A frame of `value`."""

    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = float(value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ReflectionPad2d(_Pad2d):
    """Mirror the image about its edge rows/columns, edges not repeated (widths < size):
    CycleGAN's generator pads so, for fewer border artifacts than zeros."""
    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """Repeat the edge rows/columns outwards."""
    mode = "replicate"


class CircularPad2d(_Pad2d):
    """Wrap around, as on a torus (widths <= size)."""
    mode = "circular"


# ---------------------------------------------------------------------------------------

class PixelShuffle(Module):
    """(N, C·r², H, W) -> (N, C, H·r, W·r): sub-pixel convolution's upsampling (Shi et al. 2016)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = int(upscale_factor)

    def forward(self, x):
        return F.pixel_shuffle(x, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(N, C, H·r, W·r) -> (N, C·r², H, W): the inverse of PixelShuffle."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = int(downscale_factor)

    def forward(self, x):
        return F.pixel_unshuffle(x, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
