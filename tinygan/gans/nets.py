"""The networks of the classic papers, built from `tinygan.nn`.

- MLP nets: the Keras MNIST GAN (G 100→256→512→1024→784, LeakyReLU 0.2, BatchNorm with
  Keras momentum 0.8 — i.e. torch momentum 0.2 — tanh; D 784→512→256→1), and small ReLU
  MLPs for the 2-D toys (outputs unbounded: the toy modes lie at radius 2 and beyond).
- DCGAN nets (Radford et al. 2015): all-convolutional, k4 s2 p1 up/down-sampling, BN in G
  (not on the output) and D (not on the input), ReLU in G, LeakyReLU 0.2 in D, tanh out,
  N(0, 0.02) init.  For a 2^k-pixel image, k-2 strided layers; 28×28 data is padded to 32×32.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd import Tensor
from ..backend import get_array_module
from .. import functional as F


def flat_size(shape) -> int:
    return int(np.prod(shape))


def sequential_keeping_keys(*layers) -> nn.Sequential:
    """nn.Sequential(*layers), numbered as if each BatchNormAct were its two layers (batch
    norm, then the activation): "0" conv, "1" BatchNormAct, "3" conv...  Those are the
    state_dict keys of these nets when they held BatchNorm and ReLU separately, and of
    torch's DCGAN, so such checkpoints load by key."""
    named, i = {}, 0
    for m in layers:
        named[str(i)] = m
        i += 2 if isinstance(m, (nn.BatchNormAct1d, nn.BatchNormAct2d)) else 1
    return nn.Sequential(named)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, out_shape: tuple, hidden=(256, 512, 1024), batch_norm=True,
                 bn_momentum=0.2, slope=0.2, out_tanh=True, in_dim: int | None = None):
        super().__init__()
        self.out_shape = tuple(out_shape)
        layers, d = [], in_dim or z_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if batch_norm:
                layers.append(nn.BatchNormAct1d(h, "leaky_relu" if slope else "relu", slope,
                                                momentum=bn_momentum))
            else:
                layers.append(nn.LeakyReLU(slope) if slope else nn.ReLU())
            d = h
        layers.append(nn.Linear(d, flat_size(out_shape)))
        if out_tanh:
            layers.append(nn.Tanh())
        self.main = sequential_keeping_keys(*layers)

    def forward(self, z):
        return self.main(z).reshape(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """Logits out, shape (N,).  `features()` exposes the last hidden layer (feature matching)."""

    def __init__(self, in_shape: tuple, hidden=(512, 256), slope=0.2, out_dim: int = 1,
                 in_dim: int | None = None):
        super().__init__()
        layers, d = [], in_dim or flat_size(in_shape)
        for h in hidden:
            layers += [nn.Linear(d, h), nn.LeakyReLU(slope) if slope else nn.ReLU()]
            d = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, out_dim)
        self.out_dim = out_dim

    def features(self, x):
        return self.body(F.flatten(x, 1))

    def forward(self, x):
        out = self.head(self.features(x))
        return out.reshape(-1) if self.out_dim == 1 else out


def _n_strided(size: int) -> int:
    k = int(round(math.log2(size)))
    if 2 ** k != size or size < 8:
        raise ValueError(f"DCGAN nets need a power-of-two image size >= 8, got {size}")
    return k - 2


class DCGANGenerator(nn.Module):
    """z (N, z_dim) → image (N, C, S, S):  ConvT k4 s1 p0 to 4×4, then k4 s2 p1 doublings."""

    def __init__(self, z_dim: int, channels: int, size: int = 32, ngf: int = 64, in_dim=None):
        super().__init__()
        n = _n_strided(size)
        c = ngf * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(in_dim or z_dim, c, 4, 1, 0, bias=False), nn.BatchNormAct2d(c)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNormAct2d(c // 2)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = sequential_keeping_keys(*layers)

    def forward(self, z):
        return self.main(z.reshape(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N, C, S, S) → logits (N,).  `batch_norm=False` for the WGAN-GP critic."""

    def __init__(self, channels: int, size: int = 32, ndf: int = 64, batch_norm: bool = True,
                 out_dim: int = 1, in_channels: int | None = None):
        super().__init__()
        n = _n_strided(size)
        c = ndf
        layers = [nn.Conv2d(in_channels or channels, c, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        for _ in range(n - 1):
            layers.append(nn.Conv2d(c, c * 2, 4, 2, 1, bias=not batch_norm))
            layers.append(nn.BatchNormAct2d(c * 2, "leaky_relu", 0.2) if batch_norm
                          else nn.LeakyReLU(0.2))
            c *= 2
        self.body = sequential_keeping_keys(*layers)
        self.head = nn.Conv2d(c, out_dim, 4, 1, 0, bias=False)
        self.out_dim = out_dim

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        out = self.head(self.features(x)).reshape(x.shape[0], -1)
        return out.reshape(-1) if self.out_dim == 1 else out


class InfoGenerator(nn.Module):
    """latent (N, L) → image (N, C, H, W): InfoGAN's MNIST generator (Chen et al. 2016, Table 1),
    FC `fc` · FC (2·ngf)·(H/4)·(W/4) · upconv ngf k4 s2 · upconv C k4 s2, BN and ReLU between,
    tanh out.  Small and fast at 28×28 without padding; `infogan`, `ebgan` and `began` use it."""

    def __init__(self, latent_dim: int, channels: int, size: tuple, ngf: int = 64, fc: int = 1024):
        super().__init__()
        self.h, self.w, self.c0 = size[0] // 4, size[1] // 4, 2 * ngf
        self.fc = sequential_keeping_keys(nn.Linear(latent_dim, fc), nn.BatchNormAct1d(fc),
                                          nn.Linear(fc, self.c0 * self.h * self.w),
                                          nn.BatchNormAct1d(self.c0 * self.h * self.w))
        self.conv = sequential_keeping_keys(nn.ConvTranspose2d(self.c0, ngf, 4, 2, 1),
                                            nn.BatchNormAct2d(ngf),
                                            nn.ConvTranspose2d(ngf, channels, 4, 2, 1), nn.Tanh())

    def forward(self, latent):
        return self.conv(self.fc(latent).reshape(latent.shape[0], self.c0, self.h, self.w))


def dcgan_init_(module: nn.Module) -> nn.Module:
    """Radford et al.: conv weights ~ N(0, 0.02); BN scale ~ N(1, 0.02), shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def padded_size(h: int) -> int:
    """The power of two a DCGAN works at for h×h data (28 → 32)."""
    return 2 ** int(math.ceil(math.log2(max(h, 8))))


def pad_images(x: Tensor, size: int) -> Tensor:
    """Pad (N, C, h, w) with the background value -1 to (N, C, size, size), centred."""
    h, w = x.shape[2:]
    if (h, w) == (size, size):
        return x
    top, left = (size - h) // 2, (size - w) // 2
    xp = get_array_module(x.data)
    out = xp.full(x.shape[:2] + (size, size), -1.0, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x.data
    return Tensor(out)


def crop_images(x: Tensor, h: int, w: int) -> Tensor:
    H, W = x.shape[2:]
    top, left = (H - h) // 2, (W - w) // 2
    return x[:, :, top:top + h, left:left + w]
