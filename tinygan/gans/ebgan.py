"""`ebgan` — Zhao, Mathieu & LeCun 2017, "Energy-based Generative Adversarial Network".

D is an autoencoder (autoencoder_nets.py) and its output is an energy, the reconstruction
error D(v) = mean over pixels of (Dec(Enc(v)) - v)²: low on data, high elsewhere.  Per step:

    1. D:  L_D = D(x) + [m - D(G(z))]⁺          (push real energy down, fake energy up to m)
    2. G:  L_G = D(G(z')) + λ_PT · PT(Enc(G(z')))
           PT = 1/(N(N-1)) Σ_{i≠j} cos²(s_i, s_j)   (the pulling-away term: fakes whose codes
                                                   point the same way are penalised)

Once a fake's energy passes the margin, D no longer pushes on it: the hinge keeps D from
spending its capacity on making bad fakes ever worse.  The real and fake energies are logged
(`energy_real`, `energy_fake`); their gap is what D is paid to keep open.

Defaults: λ_PT = 0.1 (the paper's).  Nets (`arch=small`, autoencoder_nets.py): InfoGAN's
MNIST generator and a shallow autoencoder D (one k4 s2 conv, a fully connected code of 32,
BN); `arch=dcgan` is the DCGAN generator and a DCGAN autoencoder.  Adam(β1 = 0.5), D at
2e-4, G five times faster (`g_lr_scale`: the paper grid-searched the two rates apart).  The
paper's margin (10 on MNIST) is for its energy ‖Dec(Enc(x)) - x‖ over the whole image; here
the energy is a per-pixel mean of squares (at most 4 for data in [-1, 1]), and m = 0.3 lies
about twice as high as the real energies D reaches (docs/energy_gans.md has the runs that chose
it: with m = 1 D pushed the fakes up faster than G could follow).
"""
from __future__ import annotations

from . import losses
from .autoencoder_nets import ARCHS, energy_gan_nets
from .base import Variant
from .registry import register


@register
class EBGAN(Variant):
    name = "ebgan"
    paper = "Zhao, Mathieu & LeCun 2017, Energy-based Generative Adversarial Network"
    summary = "autoencoder D, energy = reconstruction MSE, margin hinge, pulling-away term"
    data_kinds = ("image",)
    default_steps = {"image": 2000}
    defaults = dict(arch="small", z_dim=100, ngf=64, ndf=64, fc=1024, code_dim=32, margin=0.3,
                    pt_weight=0.1, lr=2e-4, g_lr_scale=5.0, d_batch_norm=True, beta1=0.5,
                    beta2=0.999)
    limits = dict(arch=ARCHS, fc=">= 1", code_dim=">= 2", margin="> 0", pt_weight=">= 0",
                  g_lr_scale="> 0")

    def build(self):
        c = self.config
        self.G, self.D, self.pad_to = energy_gan_nets(
            c["arch"], self.z_dim, self.data_shape, c["ngf"], c["ndf"], c["code_dim"], c["fc"],
            d_batch_norm=c["d_batch_norm"])
        self.opt_G = self.adam(self.G, lr=c["lr"] * c["g_lr_scale"])
        self.opt_D = self.adam(self.D)

    def energy(self, v):
        """D's energy of each image in v: (N,)."""
        return losses.reconstruction_energy(v, self.D(v), power=2)

    def train_step(self, x, y=None):
        n, x, c = x.shape[0], self.to_net(x), self.config
        # 1. D: real energy down, fake energy up to the margin (fakes detached).
        e_real = self.energy(x)
        e_fake = self.energy(self.G(self.sample_z(n)).detach())
        logs = self.update("D", losses.d_loss_ebgan(e_real, e_fake, c["margin"]))
        # 2. G: low energy under the updated D, codes pulled apart.
        fake = self.G(self.sample_z(n))
        codes = self.D.encode(fake)
        e_g = losses.reconstruction_energy(fake, self.D.decoder(codes), power=2)
        loss_G = losses.g_loss_ebgan(e_g) + c["pt_weight"] * losses.pulling_away_term(codes)
        logs.update(self.update("G", loss_G))
        return {**logs, "energy_real": e_real.data.mean(), "energy_fake": e_fake.data.mean()}
