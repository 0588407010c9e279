"""`aae` — Makhzani et al. 2015, Adversarial Autoencoders.

An autoencoder whose code distribution q(z) = E_x[δ(z - E(x))] is matched to a prior p(z)
by a GAN played in code space: E is the generator, D tells prior samples from codes.

Algorithm (one step on a minibatch x, the paper's two phases):
    1. reconstruction phase:  minimise -log p(x | G(E(x)))       over E and G (the decoder);
    2. regularisation phase:  D ascends  log D(z') + log(1 - D(E(x))),   z' ~ p(z);
                              E ascends  log D(E(x))   (non-saturating; E moves, G does not).

Priors (`prior`): "gaussian" N(0, I) (default), "mixture10": 10 2-D Gaussians on a circle of
radius 4, std 0.5 (the paper's Figure 4; needs `--set z_dim=2`).  z_dim = 8 by default: on
the digits a 2-D code decodes to blurred, lopsided samples (seed 0, 2,000 steps: FD 691, the
largest class 18–40 % over seeds 0–2; at 6,000 steps the adversarial phase ran away, FD 885,
7 classes) where 8-D gives FD 213 with 10 classes, none above 17 %.  z_dim = 2 is the paper's
visualisation setting: `code_scatter` draws the codes of a labelled batch over the prior.
Nets (the paper's MNIST ones): E, G and D are MLPs with two hidden layers of 1000 ReLU units;
G ends in Bernoulli logits (images).  Optimiser: Adam — 1e-3 for the reconstruction phase and
(2e-4, β1 0.5) for the adversarial phase (the paper used SGD with momentum; Adam is the
common, faster substitute).
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend, optim
from ..autograd import Tensor
from ..tensor_factories import randn
from . import losses
from .base import Variant
from .encoders import (Autoencoding, decode_mean, mlp_decoder, mlp_encoder, reconstruction_loss,
                       resolve_likelihood)
from .registry import register

MIXTURE_RADIUS, MIXTURE_STD, MIXTURE_K = 4.0, 0.5, 10


def mixture_centers(k: int = MIXTURE_K, radius: float = MIXTURE_RADIUS) -> np.ndarray:
    """(k, 2) centres evenly spaced on a circle."""
    angle = 2 * math.pi * np.arange(k) / k
    return (radius * np.stack([np.cos(angle), np.sin(angle)], 1)).astype(np.float32)


def sample_mixture(n: int, rng, std: float = MIXTURE_STD, xp=np) -> tuple:
    """(points (n, 2), components (n,)): pick a centre uniformly, add N(0, std² I)."""
    k = rng.integers(0, MIXTURE_K, n)
    centers = xp.asarray(mixture_centers())
    return centers[k] + std * rng.standard_normal((n, 2), dtype=np.float32), k


@register
class AAE(Autoencoding, Variant):
    name = "aae"
    paper = "Makhzani et al. 2015, Adversarial Autoencoders"
    summary = "autoencoder + GAN on the codes (prior gaussian or mixture10), MLPs 1000-1000"
    defaults = dict(z_dim=8, prior="gaussian", hidden=(1000, 1000), d_hidden=(1000, 1000),
                    lr_recon=1e-3, lr_adv=2e-4, beta1=0.5, beta2=0.999, likelihood="auto")
    limits = dict(prior=("gaussian", "mixture10"), lr_recon="> 0", lr_adv="> 0")

    def build(self):
        c = self.config
        if c["prior"] not in ("gaussian", "mixture10"):
            raise ValueError(f"aae: prior must be 'gaussian' or 'mixture10', got {c['prior']!r}")
        if c["prior"] == "mixture10" and self.z_dim != 2:
            raise ValueError(f"aae: the mixture10 prior lives in 2-D; set z_dim=2, not {self.z_dim}")
        self.likelihood = resolve_likelihood(c["likelihood"], self.is_toy)
        self.E = mlp_encoder(self.data_shape, self.z_dim, c["hidden"])
        self.G = mlp_decoder(self.z_dim, self.data_shape, c["hidden"])
        self.D = mlp_encoder((self.z_dim,), 1, c["d_hidden"])        # code → logit
        self.opt_AE = optim.Adam(list(self.E.parameters()) + list(self.G.parameters()),
                                 lr=c["lr_recon"])
        self.opt_D = self.adam(self.D, lr=c["lr_adv"])
        self.opt_E = self.adam(self.E, lr=c["lr_adv"])

    # -- the prior ------------------------------------------------------------------------------
    def sample_z(self, n):
        """z ~ p(z), the prior the codes are matched to (and G decodes from)."""
        if self.config["prior"] == "gaussian":
            return self.per_sample(n, lambda m: randn(m, self.z_dim, device=self.device))
        rng, xp = backend.get_rng(self.device), backend.xp_for(self.device)
        return Tensor(self.per_sample(n, lambda m: sample_mixture(m, rng, xp=xp)[0]))

    def fixed_noise(self, n, seed=1234):
        if self.config["prior"] == "gaussian":
            return super().fixed_noise(n, seed)
        rng = np.random.default_rng(seed)
        centers = mixture_centers()[np.arange(n) % MIXTURE_K]   # every component, in turn
        z = centers + MIXTURE_STD * rng.standard_normal((n, 2)).astype(np.float32)
        return Tensor(backend.to_device(z, self.device))

    def code(self, x):
        return self.E(x)

    def generate(self, z, y=None):
        return decode_mean(self.G(z), self.likelihood)

    def train_step(self, x, y=None):
        n = x.shape[0]
        # 1. Reconstruction phase: E and G as an ordinary autoencoder.
        loss_recon = reconstruction_loss(self.G(self.E(x)), x, self.likelihood)
        self.opt_AE.zero_grad()
        loss_recon.backward()
        self.opt_AE.step()
        # 2a. Regularisation phase, D: prior samples → 1, codes of the data → 0.
        loss_D = losses.d_loss_gan(self.D(self.sample_z(n)), self.D(self.E(x).detach()))
        self.opt_D.zero_grad()
        loss_D.backward()
        self.opt_D.step()
        # 2b. E as the generator: make its codes look like prior samples to the updated D.
        loss_E = losses.g_loss_nonsaturating(self.D(self.E(x)))
        self.opt_E.zero_grad()
        loss_E.backward()
        self.opt_E.step()
        return {"loss_recon": loss_recon.data, "loss_D": loss_D.data, "loss_E": loss_E.data}

    def code_scatter(self, path: str, x, labels, size: int = 400, lim: float | None = None) -> str:
        """The codes E(x) of 2-D AAEs as a scatter coloured by class (the paper's Figures 2, 4)."""
        from PIL import Image, ImageDraw

        from ..viz import PALETTE, _atomic_save
        if self.z_dim != 2:
            raise ValueError(f"aae.code_scatter: needs z_dim = 2, this model has {self.z_dim}")
        codes, labels = self.encode(x), np.asarray(labels)
        lim = lim or float(max(np.abs(codes).max(), 1e-3)) * 1.05
        img = Image.new("RGB", (size, size), "white")
        d = ImageDraw.Draw(img)
        for (u, v), c in zip(codes, labels):
            px, py = (u + lim) / (2 * lim) * (size - 1), (lim - v) / (2 * lim) * (size - 1)
            d.ellipse([px - 1.5, py - 1.5, px + 1.5, py + 1.5], fill=PALETTE[int(c) % len(PALETTE)])
        for k, color in enumerate(PALETTE):                 # legend: class k in its colour
            d.text((6, 6 + 12 * k), str(k), fill=color)
        _atomic_save(img, path)
        return path
