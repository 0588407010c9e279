"""Blocks the image-to-image generators are built from (not torch layers: each net writes
them out itself in the papers' code; here they are named once).

    ResidualBlock   y = x + body(x),  body = pad-conv3x3-norm-act-pad-conv3x3-norm
                    (He et al. 2016; CycleGAN's ResNet generator after Johnson et al. 2016:
                    reflection pad, instance norm, ReLU; SRGAN's SRResNet: zero pad, batch
                    norm, PReLU)
    UNetSkip        y = cat([x, inner(x)], dim=1), the U-Net skip (Ronneberger et al. 2015;
                    pix2pix's generator nests them: inner downsamples, recurses, upsamples)
"""
from __future__ import annotations

from .. import functional as F
from .image import InstanceNorm2d, ReflectionPad2d
from .layers import BatchNorm2d, Conv2d, Dropout, Identity, PReLU, ReLU, Sequential
from .module import Module

__all__ = ["ResidualBlock", "UNetSkip"]

_NORMS = ("instance", "batch", "none")
_PADS = ("reflect", "zeros")
_ACTS = ("relu", "prelu")


class ResidualBlock(Module):
    """x + body(x) with two 3×3 convolutions keeping `channels` and the H×W size.

    norm: "instance" (CycleGAN, the default), "batch" (SRGAN) or "none"; padding_mode:
    "reflect" (CycleGAN) or "zeros" (SRGAN); activation after the first norm: "relu" or
    "prelu" (SRGAN); dropout: p of a Dropout after it (CycleGAN's use_dropout, 0.5; off by
    default).  The convs carry a bias unless a batch norm follows (its shift replaces it).
    """

    def __init__(self, channels: int, norm: str = "instance", padding_mode: str = "reflect",
                 activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        for name, value, allowed in (("norm", norm, _NORMS), ("padding_mode", padding_mode, _PADS),
                                     ("activation", activation, _ACTS)):
            if value not in allowed:
                raise ValueError(f"ResidualBlock: {name} must be one of "
                                 f"{', '.join(map(repr, allowed))}, got {value!r}")
        self.channels, self.norm, self.padding_mode = int(channels), norm, padding_mode
        self.activation, self.dropout = activation, float(dropout)
        C = self.channels
        reflect = padding_mode == "reflect"

        def conv():
            pad = [ReflectionPad2d(1)] if reflect else []
            return pad + [Conv2d(C, C, 3, padding=0 if reflect else 1, bias=norm != "batch")]

        def normalize():
            return {"instance": lambda: InstanceNorm2d(C), "batch": lambda: BatchNorm2d(C),
                    "none": Identity}[norm]()
        act = ReLU() if activation == "relu" else PReLU()
        middle = [Dropout(self.dropout)] if self.dropout > 0 else []
        self.body = Sequential(*conv(), normalize(), act, *middle, *conv(), normalize())

    def forward(self, x):
        return x + self.body(x)

    def extra_repr(self):
        return (f"{self.channels}, norm={self.norm!r}, padding_mode={self.padding_mode!r}, "
                f"activation={self.activation!r}, dropout={self.dropout}")


class UNetSkip(Module):
    """cat([x, inner(x)], dim=1): x's channels pass around `inner` (which must keep H×W) and
    arrive next to its output, so the decoder sees the encoder's fine detail."""

    def __init__(self, inner: Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        y = self.inner(x)
        if y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:]:
            raise ValueError(f"UNetSkip: the inner module maps {x.shape} to {y.shape}; it must keep "
                             f"N and H×W for the channels to be concatenated")
        return F.cat([x, y], dim=1)
