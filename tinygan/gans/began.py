"""`began` — Berthelot, Schumm & Metz 2017, "BEGAN: Boundary Equilibrium GANs".

D is an autoencoder (autoencoder_nets.py); L(v) = mean |v - D(v)| is its L1 reconstruction
loss.  Instead of matching data and fake distributions, BEGAN matches the distributions of
their *losses*, and keeps the two players in equilibrium E[L(G(z))] = γ E[L(x)] with a
proportional controller k_t.  The paper's algorithm, per step:

    L_D = L(x) - k_t · L(G(z_D))                     D: reconstruct data, not fakes
    L_G = L(G(z_G))                                  G: make fakes D reconstructs
    k_{t+1} = clip(k_t + λ_k (γ L(x) - L(G(z_G))), 0, 1)
    M_global = L(x) + |γ L(x) - L(G(z_G))|           (convergence: falls as samples improve)

γ, the diversity ratio, trades diversity (high γ: D spends more effort on fakes' errors)
against sharpness (low γ).  k_0 = 0 and λ_k = 1e-3 are the paper's; γ = 1, the top of its
range (E[L(G(z))] = E[L(x)]), chosen on MNIST by the γ comparison in docs/energy_gans.md: at
lower γ G favours the digits D reconstructs easily (1s, 7s) and drops the hard ones (8s).  Scaled down for 2 cores: instead of the paper's 3×3 conv stacks with
ELU, the small nets of `ebgan` (`arch=small`, autoencoder_nets.py: InfoGAN's MNIST G, a
shallow autoencoder D with a 32-wide code and BN; `arch=dcgan` for DCGAN-style nets), and
Adam(2e-4, β1 = 0.5) with G five times faster (`g_lr_scale`): with the paper's BN-free nets
and one rate of 1e-4, G still drew flat grey after hundreds of steps here.

k_t is training state: saved in checkpoints and restored on resume.  Here the D update runs
first and the G update sees the updated D (the paper updates both from the same θ).
"""
from __future__ import annotations

import numpy as np

from .. import backend, distributed
from ..autograd import Tensor
from . import losses
from .autoencoder_nets import ARCHS, energy_gan_nets
from .base import Variant
from .registry import register


@register
class BEGAN(Variant):
    name = "began"
    paper = "Berthelot, Schumm & Metz 2017, BEGAN: Boundary Equilibrium Generative Adversarial Networks"
    summary = "autoencoder D, L1 losses, k_t equilibrium control (γ, λ_k), convergence measure M"
    data_kinds = ("image",)
    default_steps = {"image": 3000}
    defaults = dict(arch="small", z_dim=64, ngf=64, ndf=64, fc=1024, code_dim=32, gamma=1.0,
                    lambda_k=1e-3, k0=0.0, batch_norm=True, lr=2e-4, g_lr_scale=5.0, beta1=0.5,
                    beta2=0.999)
    limits = dict(arch=ARCHS, fc=">= 1", code_dim=">= 1", gamma="(0, 1]", lambda_k=">= 0",
                  k0="[0, 1]", g_lr_scale="> 0")

    def build(self):
        c = self.config
        bn = c["batch_norm"]        # both nets' BN (the small G always has it)
        self.G, self.D, self.pad_to = energy_gan_nets(
            c["arch"], self.z_dim, self.data_shape, c["ngf"], c["ndf"], c["code_dim"], c["fc"],
            g_batch_norm=bn, d_batch_norm=bn)
        self.opt_G = self.adam(self.G, lr=c["lr"] * c["g_lr_scale"])
        self.opt_D = self.adam(self.D)
        self.k = self._on_device(c["k0"])

    def _on_device(self, value):
        return backend.to_device(np.asarray(value, np.float32), self.device)

    def L(self, v):
        """The L1 reconstruction loss of the batch v (a scalar)."""
        return losses.reconstruction_energy(v, self.D(v), power=1).mean()

    def train_step(self, x, y=None):
        n, x, c = x.shape[0], self.to_net(x), self.config
        loss_real = self.L(x)
        loss_fake = self.L(self.G(self.sample_z(n)).detach())
        logs = self.update("D", losses.d_loss_began(loss_real, loss_fake, Tensor(self.k)))
        loss_G = self.L(self.G(self.sample_z(n)))
        logs.update(self.update("G", loss_G))
        # k follows the global batch's losses: on N ranks their mean (the same k everywhere)
        lx, lg = distributed.batch_mean(loss_real.data, loss_G.data)
        self.k = losses.began_k_update(self.k, lx, lg, c["gamma"], c["lambda_k"]).astype(np.float32)
        return {**logs, "k": self.k, "M": losses.began_convergence(lx, lg, c["gamma"])}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "k": backend.as_numpy(self.k).copy()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.k = self._on_device(state["k"])
