"""`gan` — Goodfellow et al. 2014, with the MLP nets of the classic Keras MNIST example.

Algorithm (one step, k = 1):
    1. D ascends  log D(x) + log(1 - D(G(z)))        on a real batch and a fake batch;
    2. G ascends  log D(G(z))                          (the non-saturating generator loss),
       with D(G(z)) recomputed after D's update (never stale activations).

Accepts the tricks of Salimans et al. 2016 as options (see tricks.py): feature_matching,
minibatch_disc, historical_avg, virtual_bn, label_smoothing (real target; 0.9 = one-sided).
"""
from __future__ import annotations

from . import losses, tricks
from .base import Variant
from .registry import register


@register
class GAN(Variant):
    name = "gan"
    paper = "Goodfellow et al. 2014, Generative Adversarial Nets"
    summary = "MLP G and D, BCE (non-saturating G loss), Adam"
    defaults = dict(z_dim=100, lr=2e-4, beta1=0.5, beta2=0.999, toy_hidden=128, r1=0.0,
                    **tricks.OPTIONS)
    limits = dict(tricks.LIMITS, r1=">= 0")    # r1=γ: R1 penalty γ/2·E‖∇x D(x)‖² (losses.py)

    def build(self):
        c = self.config
        self.G, self.D = self.apply_tricks(*self.make_nets("mlp", toy_hidden=c["toy_hidden"]))
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def train_step(self, x, y=None):
        n = x.shape[0]
        # 1. Discriminator: real vs. fake (G's output detached: this step moves D only).
        fake = self.G(self.sample_z(n)).detach()
        loss_D = losses.d_loss_gan(self.D(x), self.D(fake), self.config["label_smoothing"])
        if self.config["r1"]:
            loss_D = loss_D + losses.r1_penalty(self.D, x, self.config["r1"])
        logs = self.update("D", loss_D)
        # 2. Generator: fool the updated D (or match its mean features on real data).
        loss_G = self.generator_loss((x,), (self.G(self.sample_z(n)),), losses.g_loss_nonsaturating)
        return {**logs, **self.update("G", loss_G)}
