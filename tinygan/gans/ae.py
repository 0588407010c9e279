"""`ae` — a plain autoencoder, the baseline the GAN papers compare against.

Algorithm (one step):
    z = E(x);  x̂ = G(z);  minimise  -log p(x | z)  (Bernoulli on images, Gaussian on toys;
    see encoders.py)  over E and G together with Adam(1e-3).

Nothing shapes the distribution of the codes, so `generate(z)` with z ~ N(0, I) decodes
points the decoder never saw: poor samples by nature — that is the point of the baseline.
Its reconstructions are blurry for another reason every likelihood model shares: the
per-pixel loss is minimised by the *average* of the plausible digits, not by one of them.
Nets: MLPs 784-512-512-20 and back, ReLU (the VAE's, so the two compare like for like).
"""
from __future__ import annotations

from .base import Variant
from .encoders import (Autoencoding, decode_mean, mlp_decoder, mlp_encoder, reconstruction_loss,
                       resolve_likelihood)
from .registry import register


@register
class AE(Autoencoding, Variant):
    name = "ae"
    paper = "baseline: deterministic autoencoder (Hinton & Salakhutdinov 2006)"
    summary = "MLP encoder/decoder, Bernoulli (BCE) reconstruction, Adam 1e-3; samples from N(0, I)"
    defaults = dict(z_dim=20, hidden=(512, 512), lr=1e-3, beta1=0.9, beta2=0.999,
                    likelihood="auto")

    def build(self):
        c = self.config
        self.likelihood = resolve_likelihood(c["likelihood"], self.is_toy)
        self.E = mlp_encoder(self.data_shape, self.z_dim, c["hidden"])
        self.G = mlp_decoder(self.z_dim, self.data_shape, c["hidden"])
        self.opt = self.adam(self.E, self.G)

    def code(self, x):
        return self.E(x)

    def generate(self, z, y=None):
        return decode_mean(self.G(z), self.likelihood)

    def train_step(self, x, y=None):
        loss = reconstruction_loss(self.G(self.E(x)), x, self.likelihood)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.data}
