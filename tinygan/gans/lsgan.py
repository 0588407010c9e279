"""`lsgan` — Mao et al. 2017, Least Squares Generative Adversarial Networks.

The sigmoid cross-entropy is replaced by squared distances to the labels (a-b-c = 0-1-1):
    D minimises  ½E[(D(x) - 1)²] + ½E[D(G(z))²],   G minimises  ½E[(D(G(z)) - 1)²].
Fakes far on the correct side of the boundary still get gradient, which steadies training.

Accepts the tricks of Salimans et al. 2016 as options (see tricks.py); `label_smoothing`
here is the real target b of ½E[(D(x) − b)²].
"""
from __future__ import annotations

from . import losses, tricks
from .base import Variant
from .registry import register


@register
class LSGAN(Variant):
    name = "lsgan"
    paper = "Mao et al. 2017, Least Squares Generative Adversarial Networks"
    summary = "DCGAN nets, least-squares losses (0-1-1), Adam(2e-4, 0.5)"
    defaults = dict(z_dim=100, arch="dcgan", ngf=64, ndf=64, lr=2e-4, beta1=0.5, beta2=0.999,
                    toy_hidden=128, **tricks.OPTIONS)
    limits = tricks.LIMITS

    def build(self):
        c = self.config
        self.G, self.D = self.apply_tricks(*self.make_nets(c["arch"], toy_hidden=c["toy_hidden"]))
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def train_step(self, x, y=None):
        n, x = x.shape[0], self.to_net(x)
        fake = self.G(self.sample_z(n)).detach()
        loss_D = losses.d_loss_least_squares(self.D(x), self.D(fake), self.config["label_smoothing"])
        logs = self.update("D", loss_D)

        loss_G = self.generator_loss((x,), (self.G(self.sample_z(n)),), losses.g_loss_least_squares)
        return {**logs, **self.update("G", loss_G)}
