"""The autoencoder discriminator of the energy-based GANs (`ebgan`, `began`).

D is not a classifier but an autoencoder: its "energy" of an image is how badly it
reconstructs it.  It is built from the DCGAN pieces of nets.py, at the same resolutions:

    encoder   the DCGAN discriminator with `code_dim` outputs: k4 s2 p1 convolutions,
              LeakyReLU 0.2 (BN optional), a last k4 conv from 4×4 to the code (N, code_dim)
    decoder   a DCGAN generator from the code: a k4 transposed conv to 4×4, then k4 s2 p1
              doublings, BN optional, tanh out (the data lie in [-1, 1])

`encode(x)` is exposed because EBGAN's pulling-away term works on the codes of the fakes.
"""
from __future__ import annotations

from .. import nn
from .nets import DCGANDiscriminator, _n_strided, sequential_keeping_keys


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
