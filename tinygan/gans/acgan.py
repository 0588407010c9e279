"""`acgan` — Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs".

Every fake has a class c ~ p_c besides its noise z: X_fake = G(z, c).  D answers two
questions from one body, P(S | X) (real or fake) and P(C | X) (which class), and both players
use the class answer (the paper's §3):

    L_S = E[log P(S = real | X_real)] + E[log P(S = fake | X_fake)]
    L_C = E[log P(C = c | X_real)]    + E[log P(C = c | X_fake)]
    1. D ascends  L_S + L_C     (fakes detached);
    2. G ascends  L_C − L_S     with fresh fakes and the updated D — here with the
       non-saturating form of −L_S (log D(G(z)), as `gan` does) for the usual reason: early
       fakes are easy to reject and log(1 − D) would give G no gradient.

Unlike `cgan`, D never sees the label as an input: the label only enters through the class
head's cross-entropy, so G must draw a digit that a classifier — D's own head — recognises.

Nets: the DCGAN ones (nets.py), G's 1×1 input is [z, one-hot c] (the paper's ImageNet G takes
110 = 100 noise + a one-hot class, the same construction), D's last conv has 1 + K outputs: the
source logit and K class logits.  Adam(2e-4, β = (0.5, 0.999)) as in the paper.  Scaled
down for a 2-core CPU: the 4-layer DCGAN nets at 32×32 instead of the paper's larger nets, no
dropout in D, and 2,400 steps of batch 64 (class agreement rises to ≥ 90 % only after
about 2,000 steps: docs/reading_list.md has the curve).
"""
from __future__ import annotations

from .. import backend
from ..autograd import Tensor
from . import losses
from .base import Variant
from .cgan import ConditionalGenerator
from .nets import DCGANDiscriminator, DCGANGenerator, dcgan_init_, padded_size
from .registry import register


@register
class ACGAN(Variant):
    name = "acgan"
    paper = "Odena et al. 2017, Conditional Image Synthesis with Auxiliary Classifier GANs"
    summary = "G(z, c); D with a real/fake head and a class head, both players add the class CE"
    needs_labels = True
    data_kinds = ("image",)
    # 2,400 steps: class agreement 60 % at 600, 78 % at 1,200, 91 % at 2,100, 93 % at 2,400
    # (seed 0, one run evaluated every 300 steps: docs/reading_list.md).
    default_steps = {"image": 2400}
    defaults = dict(z_dim=100, ngf=64, ndf=64, lr=2e-4, beta1=0.5, beta2=0.999)

    def build(self):
        c, k, C = self.config, self.num_classes, self.data_shape[0]
        self.pad_to = padded_size(max(self.data_shape[1:]))
        G = DCGANGenerator(self.z_dim, C, self.pad_to, c["ngf"], in_dim=self.z_dim + k)
        self.G = ConditionalGenerator(dcgan_init_(G), k)
        self.D = dcgan_init_(DCGANDiscriminator(C, self.pad_to, c["ndf"], out_dim=1 + k))
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def random_labels(self, n: int) -> Tensor:
        rng = backend.get_rng(self.device)
        return Tensor(self.per_sample(n, lambda m: rng.integers(0, self.num_classes, m)))

    def heads(self, x):
        """(source logits (N,), class logits (N, K)) of D on x."""
        out = self.D(x)
        return out[:, 0], out[:, 1:]

    def train_step(self, x, y=None):
        if y is None:
            raise ValueError("acgan.train_step needs the labels y of the real batch")
        n, x = x.shape[0], self.to_net(x)
        # 1. D: real → real and its class; G(z, c) → fake and class c.
        c_fake = self.random_labels(n)
        fake = self.G(self.sample_z(n), c_fake).detach()
        (s_real, c_real_logits), (s_fake, c_fake_logits) = self.heads(x), self.heads(fake)
        class_real = losses.class_loss(c_real_logits, y)
        loss_D = (losses.d_loss_gan(s_real, s_fake)
                  + class_real + losses.class_loss(c_fake_logits, c_fake))
        logs = self.update("D", loss_D)
        # 2. G: fresh fakes that the updated D calls real AND of the asked-for class.
        c_fake = self.random_labels(n)
        s, c_logits = self.heads(self.G(self.sample_z(n), c_fake))
        loss_G = losses.g_loss_nonsaturating(s) + losses.class_loss(c_logits, c_fake)
        return {**logs, **self.update("G", loss_G), "class_real": class_real.data}
