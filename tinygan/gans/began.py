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
against sharpness (low γ).  k_0 = 0, λ_k = 1e-3, γ = 0.5 are the paper's defaults; so are
no batch norm, N_z = N_h = 64 and Adam(1e-4) (β1 = 0.5, the DCGAN value: the paper gives
none).  Scaled down for 2 cores (docs/energy_gans.md): DCGAN-style k4 s2 strided convs and
ReLU instead of the paper's 3×3 conv stacks, ELU and nearest-neighbour upsampling; and
`batch_norm=true` (BN in both nets, DCGAN init) for runs of a few hundred steps, where the
paper's BN-free nets at lr 1e-4 still draw flat grey.

k_t is training state: saved in checkpoints and restored on resume.  Here the D update runs
first and the G update sees the updated D (the paper updates both from the same θ).
"""
from __future__ import annotations

import numpy as np

from .. import backend, distributed
from ..autograd import Tensor
from . import losses
from .autoencoder_nets import AutoencoderDiscriminator, ConvDecoder
from .base import Variant
from .nets import dcgan_init_, padded_size
from .registry import register


@register
class BEGAN(Variant):
    name = "began"
    paper = "Berthelot, Schumm & Metz 2017, BEGAN: Boundary Equilibrium Generative Adversarial Networks"
    summary = "autoencoder D, L1 losses, k_t equilibrium control (γ, λ_k), convergence measure M"
    data_kinds = ("image",)
    default_steps = {"image": 600}
    defaults = dict(z_dim=64, ngf=32, ndf=32, code_dim=64, gamma=0.5, lambda_k=1e-3, k0=0.0,
                    batch_norm=False, lr=1e-4, beta1=0.5, beta2=0.999)
    limits = dict(code_dim=">= 1", gamma="(0, 1]", lambda_k=">= 0", k0="[0, 1]")

    def build(self):
        c, C = self.config, self.data_shape[0]
        self.pad_to = padded_size(max(self.data_shape[1:]))
        bn = c["batch_norm"]
        self.G = ConvDecoder(self.z_dim, C, self.pad_to, c["ngf"], batch_norm=bn)
        self.D = AutoencoderDiscriminator(C, self.pad_to, c["ndf"], c["code_dim"], batch_norm=bn)
        if bn:      # the DCGAN recipe whole: BN with its N(0, 0.02) init
            self.G, self.D = dcgan_init_(self.G), dcgan_init_(self.D)
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)
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
