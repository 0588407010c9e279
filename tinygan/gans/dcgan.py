"""`dcgan` — Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with DCGANs".

Same game as `gan`, with all-convolutional nets (see nets.py), N(0, 0.02) init and
Adam(2e-4, β1 = 0.5).  28×28 digits are padded to 32×32 with the background value, and
samples are cropped back, so the nets are the 4-layer ones of the benchmark.

Accepts the tricks of Salimans et al. 2016 as options (see tricks.py): feature_matching,
minibatch_disc, historical_avg, virtual_bn, label_smoothing (real target; 0.9 = one-sided).
And DiffAugment (augment.py) for small data sets: `diffaugment=color,translation,cutout` puts
the same random, differentiable transforms on the reals and the fakes that D sees.

`r1=γ > 0` adds Mescheder et al.'s R1 penalty γ/2·E‖∇x D(x)‖² on real data to D's loss
(losses.r1_penalty).
"""
from __future__ import annotations

from . import losses, tricks
from .augment import POLICIES, diff_augment
from .base import Variant
from .registry import register


@register
class DCGAN(Variant):
    name = "dcgan"
    paper = "Radford et al. 2015, Unsupervised Representation Learning with Deep Convolutional GANs"
    summary = "conv G/D with BN, ReLU/LeakyReLU(0.2), BCE, Adam(2e-4, 0.5)"
    data_kinds = ("image",)
    # `tinygan train dcgan` (the README's main job): recognisable digits in minutes on 2 cores.
    default_steps = {"image": 600}
    defaults = dict(z_dim=100, ngf=64, ndf=64, lr=2e-4, beta1=0.5, beta2=0.999, r1=0.0,
                    diffaugment="none", **tricks.OPTIONS)
    limits = dict(tricks.LIMITS, r1=">= 0", diffaugment=POLICIES)

    def build(self):
        self.G, self.D = self.apply_tricks(*self.make_nets("dcgan"))
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def train_step(self, x, y=None):
        n, x = x.shape[0], self.to_net(x)
        T = lambda images: diff_augment(images, self.config["diffaugment"])   # noqa: E731
        # 1. D: real → 1, fake → 0 (fake detached: this step moves D only).
        fake = self.G(self.sample_z(n)).detach()
        loss_D = losses.d_loss_gan(self.D(T(x)), self.D(T(fake)), self.config["label_smoothing"])
        if self.config["r1"]:
            loss_D = loss_D + losses.r1_penalty(self.D, x, self.config["r1"])
        logs = self.update("D", loss_D)
        # 2. G: make the updated D call fresh fakes real (or match its mean real features).
        loss_G = self.generator_loss((T(x),), (T(self.G(self.sample_z(n))),),
                                     losses.g_loss_nonsaturating)
        return {**logs, **self.update("G", loss_G)}
