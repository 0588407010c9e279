"""`sngan` — Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for GANs".

Algorithm 1 of the paper (SGD with spectral normalisation), for every weight W of D:
    1. one power iteration from the persistent ũ:  ṽ ← Wᵀũ / ‖Wᵀũ‖,  ũ ← Wṽ / ‖Wṽ‖;
    2. σ(W) = ũᵀWṽ  and  W_SN = W / σ(W);
    3. W ← W − α ∇_W ℓ(W_SN(W))   (ũ, ṽ constants: the gradient flows through W only).
This is `nn.utils.spectral_norm` (tinygan/nn/utils.py) on every conv of D: each layer is then
1-Lipschitz and D as a whole at most (LeakyReLU is 1-Lipschitz too), without weight clipping's
capacity loss or a gradient penalty's second backward.

Loss: the hinge loss the paper uses for its best results (eq. 17),
    D: E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))],   G: −E[D(G(z))],
Adam(2e-4, β = (0, 0.9)), n_dis = 5 D updates per G update, z ~ N(0, I) of 128 dims.  One
`train_step` = one D update; G moves on every n_dis-th step (as `wgan`).

Scaled down for a 2-core CPU: the 4-layer DCGAN nets (nets.py) at 32×32 instead of the
paper's 7-conv "standard CNN" / ResNets, D without batch norm (SN replaces it; the paper's D
has none either).

`r1=γ > 0` adds Mescheder et al.'s R1 penalty γ/2·E‖∇x D(x)‖² on real data to D's loss.
"""
from __future__ import annotations

from .. import functional as F
from .. import nn
from . import losses
from .base import Variant
from .nets import dcgan_init_
from .registry import register


def spectral_norm_all(net: nn.Module) -> nn.Module:
    """Every conv / linear weight of `net` spectrally normalised (after its initialisation)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.utils.spectral_norm(m)
    return net


@register
class SNGAN(Variant):
    name = "sngan"
    paper = "Miyato et al. 2018, Spectral Normalization for Generative Adversarial Networks"
    summary = "spectral norm on every D weight (power iteration), hinge loss, Adam 2e-4 (0, 0.9), n_dis 5"
    data_kinds = ("image",)
    # 3,000 D steps = 600 G steps: one pattern for all z at 300, 8 classes at 1,200, all 10
    # at 2,400 and 3,000 (FD 209, seed 0: docs/reading_list.md); 1,000 drew no digits.
    default_steps = {"image": 3000}
    defaults = dict(z_dim=128, ngf=64, ndf=64, lr=2e-4, beta1=0.0, beta2=0.9, n_dis=5, r1=0.0)
    limits = dict(n_dis=">= 1", r1=">= 0")

    def build(self):
        G, D = self.make_nets("dcgan", d_batch_norm=False)
        self.G, self.D = G, spectral_norm_all(dcgan_init_(D))
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def train_step(self, x, y=None):
        n, x, c = x.shape[0], self.to_net(x), self.config
        fake = self.G(self.sample_z(n)).detach()
        # Real and fake through D as ONE batch: D has no batch norm, so this is the same
        # function, and the layers' power iteration runs once per D step (once per forward).
        scores = self.D(F.cat([x, fake], dim=0))
        loss_D = losses.d_loss_hinge(scores[:n], scores[n:])
        out = {"loss_D": loss_D.data}
        if c["r1"]:
            penalty = losses.r1_penalty(self.D, x, c["r1"])
            loss_D = loss_D + penalty
            out["r1"] = penalty.data
        self.update("D", loss_D)
        if (self.steps_done + 1) % int(c["n_dis"]) == 0:
            loss_G = losses.g_loss_hinge(self.D(self.G(self.sample_z(n))))
            out.update(self.update("G", loss_G))
        return out
