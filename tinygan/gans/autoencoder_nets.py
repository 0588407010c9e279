"""The autoencoder discriminators of the energy-based GANs (`ebgan`, `began`).

D is not a classifier but an autoencoder: its "energy" of an image is how badly it
reconstructs it.  Two builds:

`ShallowAutoencoder` (`arch=small`, the default): one k4 s2 convolution, a fully connected
code, a fully connected layer back to the convolution's map and one k4 s2 transposed
convolution, at the data's own size (28×28 digits, no padding):

    conv nf k4 s2 ReLU · FC code_dim BN ReLU  |  FC nf·(H/2)·(W/2) BN ReLU · upconv C k4 s2 tanh

Why so shallow: D's job is to reconstruct digits well and everything else badly, and a
narrow fully connected code (32) does that within a few hundred steps; the deep DCGAN
autoencoder below learns so much slower than G that in the first thousand steps either D
wins outright (EBGAN: fakes stay grey noise) or reconstructs one easy shape best (BEGAN
collapses onto it) — the runs are in docs/energy_gans.md.

`AutoencoderDiscriminator` (`arch=dcgan`) is built from the DCGAN pieces of nets.py, at the
same resolutions:

    encoder   the DCGAN discriminator with `code_dim` outputs: k4 s2 p1 convolutions,
              LeakyReLU 0.2 (BN optional), a last k4 conv from 4×4 to the code (N, code_dim)
    decoder   a DCGAN generator from the code: a k4 transposed conv to 4×4, then k4 s2 p1
              doublings, BN optional, tanh out (the data lie in [-1, 1])

`encode(x)` is exposed because EBGAN's pulling-away term works on the codes of the fakes.
"""
from __future__ import annotations

from .. import nn
from .nets import (DCGANDiscriminator, InfoGenerator, _n_strided, dcgan_init_, padded_size,
                   sequential_keeping_keys)


def _fc_act(width: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNormAct1d(width) if batch_norm else nn.ReLU()


class FCDecoder(nn.Module):
    """code (N, code_dim) → image (N, C, H, W): FC to an nf × H/2 × W/2 map, one k4 s2
    transposed convolution, tanh."""

    def __init__(self, code_dim: int, channels: int, size: tuple, nf: int, batch_norm: bool):
        super().__init__()
        self.nf, self.h, self.w = nf, size[0] // 2, size[1] // 2
        flat = nf * self.h * self.w
        self.fc = sequential_keeping_keys(nn.Linear(code_dim, flat), _fc_act(flat, batch_norm))
        self.up = sequential_keeping_keys(nn.ConvTranspose2d(nf, channels, 4, 2, 1), nn.Tanh())

    def forward(self, code):
        return self.up(self.fc(code).reshape(code.shape[0], self.nf, self.h, self.w))


class ShallowAutoencoder(nn.Module):
    """image (N, C, H, W) → its reconstruction; `encode` gives the code (N, code_dim), after
    its ReLU (EBGAN's pulling-away term works on these)."""

    def __init__(self, channels: int, size: tuple, nf: int = 64, code_dim: int = 32,
                 batch_norm: bool = True):
        super().__init__()
        if size[0] % 2 or size[1] % 2:
            raise ValueError(f"the small autoencoder halves the image once: its sides must be even, got {size}")
        flat = nf * (size[0] // 2) * (size[1] // 2)
        self.encoder = sequential_keeping_keys(
            nn.Conv2d(channels, nf, 4, 2, 1), nn.ReLU(), nn.Flatten(),
            nn.Linear(flat, code_dim), _fc_act(code_dim, batch_norm))
        self.decoder = FCDecoder(code_dim, channels, size, nf, batch_norm)

    def encode(self, x):
        return self.encoder(x)

    def forward(self, x):
        return self.decoder(self.encode(x))


class ConvDecoder(nn.Module):
    """code (N, code_dim) → image (N, C, S, S): the DCGAN generator with BN optional."""

    def __init__(self, code_dim: int, channels: int, size: int = 32, nf: int = 64,
                 batch_norm: bool = True):
        super().__init__()
        n = _n_strided(size)
        c = nf * 2 ** (n - 1)

        def act(ch):
            return nn.BatchNormAct2d(ch) if batch_norm else nn.ReLU()
        layers = [nn.ConvTranspose2d(code_dim, c, 4, 1, 0, bias=not batch_norm), act(c)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=not batch_norm), act(c // 2)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = sequential_keeping_keys(*layers)

    def forward(self, code):
        return self.main(code.reshape(code.shape[0], -1, 1, 1))


class AutoencoderDiscriminator(nn.Module):
    """image (N, C, S, S) → its reconstruction (N, C, S, S); `encode` gives the code."""

    def __init__(self, channels: int, size: int = 32, nf: int = 64, code_dim: int = 64,
                 batch_norm: bool = True):
        super().__init__()
        self.encoder = DCGANDiscriminator(channels, size, nf, batch_norm=batch_norm,
                                          out_dim=code_dim)
        self.decoder = ConvDecoder(code_dim, channels, size, nf, batch_norm=batch_norm)

    def encode(self, x):
        return self.encoder(x)

    def forward(self, x):
        return self.decoder(self.encode(x))


ARCHS = ("small", "dcgan")


def energy_gan_nets(arch: str, z_dim: int, data_shape: tuple, ngf: int, ndf: int, code_dim: int,
                    fc: int = 1024, g_batch_norm: bool = True, d_batch_norm: bool = True):
    """(G, D, pad_to) of an energy-based GAN, DCGAN-initialised.  `small`: InfoGAN's MNIST G
    and the shallow autoencoder, at the data's size (pad_to None).  `dcgan`: the DCGAN G and
    the DCGAN autoencoder, images padded to the next power of two."""
    C, H, W = data_shape
    if arch == "small":
        if H % 4 or W % 4:      # G doubles (H/4, W/4) twice: other sizes would not come back
            raise ValueError(f"arch=small draws images whose sides are multiples of 4, got "
                             f"{H}x{W}; use --set arch=dcgan (pads to a power of two)")
        G = InfoGenerator(z_dim, C, (H, W), ngf, fc)
        D = ShallowAutoencoder(C, (H, W), ndf, code_dim, batch_norm=d_batch_norm)
        pad_to = None
    elif arch == "dcgan":
        pad_to = padded_size(max(H, W))
        G = ConvDecoder(z_dim, C, pad_to, ngf, batch_norm=g_batch_norm)
        D = AutoencoderDiscriminator(C, pad_to, ndf, code_dim, batch_norm=d_batch_norm)
    else:
        raise ValueError(f"unknown architecture {arch!r}: {' or '.join(ARCHS)}")
    return dcgan_init_(G), dcgan_init_(D), pad_to
