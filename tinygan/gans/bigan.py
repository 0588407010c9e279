"""`bigan` — Donahue, Krähenbühl & Darrell 2016, Adversarial Feature Learning (BiGAN);
the same game as Dumoulin et al. 2016, Adversarially Learned Inference (ALI).

Besides G: z → x, an encoder E: x → z; D never sees x or z alone but joint pairs, and must
tell (x, E(x)) from (G(z), z).  At the optimum the two joint distributions agree, which makes
E and G inverses of each other (G(E(x)) = x) without any reconstruction loss.

Algorithm (one step):
    1. D ascends   log D(x, E(x)) + log(1 - D(G(z), z))     (E(x), G(z) detached);
    2. G and E, jointly, ascend the flipped-label objective on the updated D:
                   log D(G(z), z) + log(1 - D(x, E(x)))      (the non-saturating form).

Defaults (the BiGAN paper's permutation-invariant MNIST setup): z ~ U(-1, 1)^50; G: MLP
1024-1024 with batch norm and ReLU, tanh out; E: MLP 1024-1024 with batch norm and LeakyReLU
0.2, tanh out (our one deviation — the paper's E ends linear; see `Encoder`); D(x, z): MLP on
the concatenation [flatten(x), z], 1024-1024, LeakyReLU 0.2, no batch norm (a batch of D's
input is all-encoder or all-generator pairs, so batch statistics would leak which one it is);
Adam(2e-4, β1 0.5) for D and for G and E together.
`reconstruct(x)` = G(E(x)); `encoders.reconstruction_quality` scores it on held-out digits.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import Tensor
from ..tensor_factories import rand
from . import losses
from .base import Variant
from .encoders import Autoencoding, mlp_encoder
from .nets import MLPGenerator, flat_size
from .registry import register


class Encoder(nn.Module):
    """E(x): flatten, hidden Linear → BatchNorm → LeakyReLU layers, Linear out, then tanh.

    The batch norm is the paper's and it matters here: MNIST digits in [-1, 1] are ~80 % the
    same -1 background, so without it every digit's hidden features (and code) are nearly the
    same vector and D's gradient moves all codes together instead of spreading them apart.
    The tanh is ours (the paper's E ends linear): it keeps the codes inside U(-1, 1)'s box, the
    only place G is ever trained; unbounded codes overshot to |E(x)| ~ 10 in a few dozen steps,
    where D rejected them trivially and the game oscillated instead of matching the joints."""

    def __init__(self, data_shape: tuple, z_dim: int, hidden=(1024, 1024), slope: float = 0.2,
                 bn_momentum: float = 0.1):
        super().__init__()
        self.main = MLPGenerator(z_dim, (z_dim,), hidden=hidden, batch_norm=True,
                                 bn_momentum=bn_momentum, slope=slope, out_tanh=True,
                                 in_dim=flat_size(data_shape))

    def forward(self, x):
        return self.main(F.flatten(x, 1))


class JointDiscriminator(nn.Module):
    """D(x, z): logits (N,) for pairs, from the concatenation [flatten(x), z]."""

    def __init__(self, data_shape: tuple, z_dim: int, hidden=(1024, 1024), slope: float = 0.2):
        super().__init__()
        self.net = mlp_encoder((flat_size(data_shape) + z_dim,), 1, hidden, slope=slope)

    def forward(self, x, z):
        return self.net(F.cat([F.flatten(x, 1), z], dim=1))


@register
class BiGAN(Autoencoding, Variant):
    name = "bigan"
    paper = "Donahue et al. 2016, Adversarial Feature Learning (= ALI, Dumoulin et al. 2016)"
    summary = "G(z), E(x), D on joint pairs (x, z); z ~ U(-1,1)^50; MLPs 1024-1024; Adam(2e-4, 0.5)"
    # digits, seed 0: FD 323 -> 113, largest class 26 % -> 17 % from 2,000 to 6,000 steps
    default_steps = {"image": 6000}
    defaults = dict(z_dim=50, hidden=(1024, 1024), lr=2e-4, beta1=0.5, beta2=0.999)

    def build(self):
        c = self.config
        hidden = tuple(c["hidden"])
        self.G = MLPGenerator(self.z_dim, self.data_shape, hidden=hidden, batch_norm=True,
                              bn_momentum=0.1, slope=0, out_tanh=not self.is_toy)
        self.E = Encoder(self.data_shape, self.z_dim, hidden, slope=0.2)
        self.D = JointDiscriminator(self.data_shape, self.z_dim, hidden)
        self.opt_D = self.adam(self.D)
        self.opt_GE = self.adam(self.G, self.E)

    def sample_z(self, n):
        """z ~ U(-1, 1)^z_dim, the BiGAN paper's prior."""
        return self.per_sample(n, lambda m: rand(m, self.z_dim, device=self.device)) * 2.0 - 1.0

    def fixed_noise(self, n, seed=1234):
        z = np.random.default_rng(seed).uniform(-1, 1, (n, self.z_dim)).astype(np.float32)
        return Tensor(backend.to_device(z, self.device))

    def code(self, x):
        return self.E(x)

    def generate(self, z, y=None):
        return self.G(z)

    def train_step(self, x, y=None):
        z = self.sample_z(x.shape[0])
        # 1. D: encoder pairs (x, E(x)) → 1, generator pairs (G(z), z) → 0.
        loss_D = losses.d_loss_gan(self.D(x, self.E(x).detach()), self.D(self.G(z).detach(), z))
        self.opt_D.zero_grad()
        loss_D.backward()
        self.opt_D.step()
        # 2. G and E together, labels flipped: each player's pairs should pass as the other's.
        loss_GE = losses.d_loss_gan(self.D(self.G(z), z), self.D(x, self.E(x)))
        self.opt_GE.zero_grad()
        loss_GE.backward()
        self.opt_GE.step()
        return {"loss_D": loss_D.data, "loss_GE": loss_GE.data}
