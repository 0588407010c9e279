"""`gan` — Goodfellow et al. 2014, with the MLP nets of the classic Keras MNIST example.

Algorithm (one step, k = 1):
    1. D ascends  log D(x) + log(1 - D(G(z)))        on a real batch and a fake batch;
    2. G ascends  log D(G(z))                          (the non-saturating generator loss),
       with D(G(z)) recomputed after D's update (never stale activations).
"""
from __future__ import annotations

from .. import optim
from . import losses
from .base import Variant
from .registry import register


@register
class GAN(Variant):
    name = "gan"
    paper = "Goodfellow et al. 2014, Generative Adversarial Nets"
    summary = "MLP G and D, BCE (non-saturating G loss), Adam"
    defaults = dict(z_dim=100, lr=2e-4, beta1=0.5, beta2=0.999, label_smoothing=1.0,
                    toy_hidden=128)

    def build(self):
        c = self.config
        self.G, self.D = self.make_nets("mlp", toy_hidden=c["toy_hidden"])
        betas = (c["beta1"], c["beta2"])
        self.opt_G = optim.Adam(self.G.parameters(), lr=c["lr"], betas=betas)
        self.opt_D = optim.Adam(self.D.parameters(), lr=c["lr"], betas=betas)

    def train_step(self, x, y=None):
        n = x.shape[0]
        # 1. Discriminator: real vs. fake (G's output detached: this step moves D only).
        fake = self.G(self.sample_z(n)).detach()
        loss_D = losses.d_loss_gan(self.D(x), self.D(fake), self.config["label_smoothing"])
        self.opt_D.zero_grad()
        loss_D.backward()
        self.opt_D.step()
        # 2. Generator: fool the updated D.
        loss_G = losses.g_loss_nonsaturating(self.D(self.G(self.sample_z(n))))
        self.opt_G.zero_grad()
        loss_G.backward()
        self.opt_G.step()
        return {"loss_D": loss_D.item(), "loss_G": loss_G.item()}
