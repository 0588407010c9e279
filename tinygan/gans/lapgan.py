"""`lapgan` — Denton, Chintala, Szlam & Fergus 2015, "Deep Generative Image Models using a
Laplacian Pyramid of Adversarial Networks".

An image is its Laplacian pyramid: a coarse image plus, at each finer scale, the residual that
upsampling the coarser level cannot supply.  With d = 2×2 average pooling and u = nearest-
neighbour upsampling (the paper blurs then subsamples; average pooling is the 2×2 box blur
followed by subsampling, and makes  u(I_{k-1}) + h_k = I_k  hold by construction):

    I_K = x (28×28 padded to 32×32),  I_{k-1} = d(I_k)        Gaussian pyramid  32 → 16 → 8
    h_k = I_k - u(I_{k-1})                                     Laplacian residuals

One GAN per level (the paper's CIFAR-10 setup: 8×8 → 16×16 → 32×32):
    level 0:  an ordinary GAN on 8×8 images,  G_0(z_0),  D_0(I_0)
    level k:  a conditional GAN on residuals: G_k(z_k, l_k) = h̃_k  and  D_k(h, l_k),
              where l_k = u(I_{k-1}) is the upsampled coarser image (the condition).

Training (Algorithm of §3): for each real batch build its pyramid; at every level, D_k sees
(h_k, l_k) as real and (G_k(z_k, l_k), l_k) as fake, with the *real* coarse image as the
condition — so given the real pyramid the levels are independent GANs, trained side by side.
Summing their losses and taking one optimizer step per player is exactly one step of each GAN
(their parameters are disjoint).  BCE on logits, non-saturating G loss.

Sampling runs the pyramid coarse to fine:  Ĩ_0 = G_0(z_0),  Ĩ_k = u(Ĩ_{k-1}) + G_k(z_k, u(Ĩ_{k-1})).

Nets (the paper's CIFAR-10 nets, from the authors' released Torch code): G_0 an MLP
z_0 (100) → 1200 → 1200 → 8×8 (ReLU), D_0 an MLP 8×8 → 600 → 600 → 1 (ReLU, dropout 0.5);
G_k: noise plane z_k as an extra channel of l_k, conv 7×7 → conv 7×7 → conv 5×5 ('same',
128 maps, ReLU, linear out); D_k: (h, l) as channels, conv 5×5 → conv 5×5 stride 2 (128 maps,
ReLU) → dropout 0.5 → linear.  Noise U(-1, 1).  SGD(lr 0.02, momentum 0.5) as in the paper; its
per-epoch momentum ramp to 0.8 and lr decay are left out (`optimizer="adam"` is an option).
`lr0` (default: `lr`) is level 0's own learning rate: the 8×8 MLP GAN is the level that decides
the digit.  Trained alone (batch 64, 2,000 Adam steps), it reaches 109 distinct nearest real
digits out of 1,000 samples at 2e-4, 38 % of them one class; at 1e-3 it reaches 508, none
above 23 %.  The residual conv GANs keep `lr`.

The latent of one sample is the whole set of noises, flattened and concatenated:
z = [z_0 (100), z_1 (16×16 plane), z_2 (32×32 plane)], so `fixed_noise` fixes every level.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn, optim
from ..autograd import Tensor, no_grad
from . import losses
from .base import Variant
from .nets import flat_size, padded_size
from .registry import register


def down(x):
    """One pyramid level down: 2×2 average pooling (box blur + subsample)."""
    return F.avg_pool2d(x, 2)


def up(x):
    """One level up: nearest-neighbour ×2 (each pixel copied into a 2×2 block)."""
    return F.interpolate(x, scale_factor=2)


def gaussian_pyramid(x, levels: int) -> list:
    """[I_0 (coarsest), ..., I_{levels-1} = x]."""
    pyr = [x]
    for _ in range(levels - 1):
        pyr.insert(0, down(pyr[0]))
    return pyr


def laplacian_pyramid(x, levels: int) -> list:
    """[I_0, h_1, ..., h_{levels-1}] with h_k = I_k - up(I_{k-1});  `reconstruct` inverts it."""
    g = gaussian_pyramid(x, levels)
    return [g[0]] + [g[k] - up(g[k - 1]) for k in range(1, levels)]


def reconstruct(pyr: list):
    """I_k = up(I_{k-1}) + h_k, coarse to fine."""
    img = pyr[0]
    for h in pyr[1:]:
        img = up(img) + h
    return img


class BaseGenerator(nn.Module):
    """Level 0: z_0 → 1200 → 1200 → C×S×S (ReLU, linear out)."""

    def __init__(self, z_dim: int, shape: tuple, hidden: int = 1200):
        super().__init__()
        self.shape = tuple(shape)
        self.main = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                  nn.ReLU(), nn.Linear(hidden, flat_size(shape)))

    def forward(self, z):
        return self.main(z).reshape(z.shape[0], *self.shape)


class BaseDiscriminator(nn.Module):
    """Level 0: C×S×S → 600 → 600 → 1 logit (ReLU, dropout)."""

    def __init__(self, shape: tuple, hidden: int = 600, dropout: float = 0.5):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(flat_size(shape), hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, x):
        return self.main(F.flatten(x, 1)).reshape(-1)


class ResidualGenerator(nn.Module):
    """Level k: (z_k plane, l_k) → residual h̃_k, same size.  3 'same' convs, ReLU, linear out."""

    def __init__(self, channels: int, ngf: int = 128):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(channels + 1, ngf, 7, padding=3), nn.ReLU(),
                                  nn.Conv2d(ngf, ngf, 7, padding=3), nn.ReLU(),
                                  nn.Conv2d(ngf, channels, 5, padding=2))

    def forward(self, z_plane, cond):
        return self.main(F.cat([cond, z_plane], dim=1))


class ResidualDiscriminator(nn.Module):
    """Level k: (h, l_k) → logit.  conv 5×5 → conv 5×5 stride 2 (ReLU) → dropout → linear."""

    def __init__(self, channels: int, size: int, ndf: int = 128, dropout: float = 0.5):
        super().__init__()
        s = ((size - 4) - 5) // 2 + 1
        self.main = nn.Sequential(nn.Conv2d(2 * channels, ndf, 5), nn.ReLU(),
                                  nn.Conv2d(ndf, ndf, 5, stride=2), nn.ReLU(),
                                  nn.Flatten(), nn.Dropout(dropout), nn.Linear(ndf * s * s, 1))

    def forward(self, h, cond):
        return self.main(F.cat([h, cond], dim=1)).reshape(-1)


@register
class LAPGAN(Variant):
    name = "lapgan"
    paper = ("Denton et al. 2015, Deep Generative Image Models using a Laplacian Pyramid of "
             "Adversarial Networks")
    summary = ("Laplacian pyramid 8→16→32: MLP GAN at 8×8, conditional conv GANs on the residuals, "
               "BCE, SGD(0.02, momentum 0.5)")
    data_kinds = ("image",)
    defaults = dict(z_dim=100, levels=3, g0_hidden=1200, d0_hidden=600, ngf=128, ndf=128,
                    dropout=0.5, optimizer="sgd", lr=0.02, lr0=None, momentum=0.5, beta1=0.5,
                    beta2=0.999)
    limits = dict(levels=">= 1", g0_hidden=">= 1", d0_hidden=">= 1", dropout="[0, 1)",
                  optimizer=("sgd", "adam"), lr0="float > 0", momentum="[0, 1)")

    def build(self):
        c = self.config
        self.pad_to = padded_size(max(self.data_shape[1:]))
        L, C = int(c["levels"]), self.data_shape[0]
        self.sizes = [self.pad_to // 2 ** (L - 1 - k) for k in range(L)]
        if L < 1 or self.sizes[0] < 4:
            raise ValueError(f"lapgan: {L} levels below {self.pad_to}×{self.pad_to} give a "
                             f"coarsest level of {self.sizes[0]} pixels; need >= 4")
        coarse = (C, self.sizes[0], self.sizes[0])
        self.G = nn.ModuleList([BaseGenerator(c["z_dim"], coarse, c["g0_hidden"])]
                               + [ResidualGenerator(C, c["ngf"]) for _ in self.sizes[1:]])
        self.D = nn.ModuleList([BaseDiscriminator(coarse, c["d0_hidden"], c["dropout"])]
                               + [ResidualDiscriminator(C, s, c["ndf"], c["dropout"])
                                  for s in self.sizes[1:]])
        self.opt_G = self._optimizer(self.G)
        self.opt_D = self._optimizer(self.D)

    def _optimizer(self, nets):
        """One optimizer per player over all levels; level 0 in its own group at `lr0`."""
        c = self.config
        lr0 = c["lr"] if c["lr0"] is None else c["lr0"]
        if isinstance(lr0, bool) or not isinstance(lr0, (int, float)) or not lr0 > 0:
            raise ValueError(f"lapgan: lr0 must be a positive number (or unset: lr), got {lr0!r}")
        groups = [{"params": list(nets[0].parameters()), "lr": lr0},
                  {"params": [p for net in list(nets)[1:] for p in net.parameters()]}]
        groups = [g for g in groups if g["params"]]
        if c["optimizer"] == "sgd":
            return optim.SGD(groups, lr=c["lr"], momentum=c["momentum"])
        if c["optimizer"] == "adam":
            return optim.Adam(groups, lr=c["lr"], betas=(c["beta1"], c["beta2"]))
        raise ValueError(f"lapgan: optimizer must be 'sgd' or 'adam', got {c['optimizer']!r}")

    # -- the latent: every level's noise in one vector -----------------------------------------
    @property
    def z_dim(self) -> int:
        return int(self.config["z_dim"]) + sum(s * s for s in self.sizes[1:])

    def sample_z(self, n: int) -> Tensor:
        """z ~ U(-1, 1), as the paper's noise, from the library's seeded generator."""
        from ..tensor_factories import rand
        return self.per_sample(n, lambda m: rand(m, self.z_dim, device=self.device)) * 2.0 - 1.0

    def fixed_noise(self, n: int, seed: int = 1234) -> Tensor:
        z = np.random.default_rng(seed).uniform(-1, 1, (n, self.z_dim)).astype(np.float32)
        return Tensor(backend.to_device(z, self.device))

    def split_z(self, z) -> list:
        """[z_0 (N, z_dim), z_1 (N, 1, 16, 16), z_2 (N, 1, 32, 32)]."""
        n, start = z.shape[0], int(self.config["z_dim"])
        parts = [z[:, :start]]
        for s in self.sizes[1:]:
            parts.append(z[:, start:start + s * s].reshape(n, 1, s, s))
            start += s * s
        return parts

    # -- Algorithm ---------------------------------------------------------------------------------
    def train_step(self, x, y=None):
        L = len(self.sizes)
        real = gaussian_pyramid(self.to_net(x), L)          # I_0 (8×8), I_1 (16×16), I_2 (32×32)
        n = x.shape[0]
        cond = [None] + [up(real[k - 1]) for k in range(1, L)]                  # l_k = u(I_{k-1})
        target = [real[0]] + [real[k] - cond[k] for k in range(1, L)]           # I_0, h_k

        def fakes(z):
            zs = self.split_z(z)
            return [self.G[0](zs[0])] + [self.G[k](zs[k], cond[k]) for k in range(1, L)]

        def score(k, img):
            return self.D[k](img) if k == 0 else self.D[k](img, cond[k])

        # 1. Every D_k: the real (h_k, l_k) → 1, (G_k(z_k, l_k), l_k) → 0.
        fake = [f.detach() for f in fakes(self.sample_z(n))]
        loss_Dk = [losses.d_loss_gan(score(k, target[k]), score(k, fake[k])) for k in range(L)]
        loss_D = sum(loss_Dk[1:], loss_Dk[0])
        self.update("D", loss_D)
        # 2. Every G_k: make the updated D_k call fresh residuals real.
        fake = fakes(self.sample_z(n))
        loss_Gk = [losses.g_loss_nonsaturating(score(k, fake[k])) for k in range(L)]
        loss_G = sum(loss_Gk[1:], loss_Gk[0])
        self.update("G", loss_G)
        out = {"loss_D": loss_D.data, "loss_G": loss_G.data}
        for k in range(L):
            out[f"loss_D{k}"], out[f"loss_G{k}"] = loss_Dk[k].data, loss_Gk[k].data
        return out

    def generate_pyramid(self, z) -> list:
        """[Ĩ_0, Ĩ_1, ..., Ĩ_K]: each level's image, coarse to fine (padded size at the top)."""
        zs = self.split_z(z)
        imgs = [self.G[0](zs[0])]
        for k in range(1, len(self.sizes)):
            l = up(imgs[-1])
            imgs.append(l + self.G[k](zs[k], l))
        return imgs

    def generate(self, z, y=None):
        return self.from_net(self.generate_pyramid(z)[-1]).clip(-1.0, 1.0)

    def save_pyramid(self, path: str, n: int = 8, z: Tensor | None = None) -> str:
        """A PNG with one row per sample: Ĩ_0, Ĩ_1, ..., Ĩ_K (each nearest-upsampled to the top
        size), then the generated residuals h̃_1 ... h̃_K (shown with mid-grey = 0)."""
        from .. import viz
        z = self.fixed_noise(n) if z is None else z
        modes = {k: m.training for k, m in self.nets().items()}
        self.eval()
        try:
            with no_grad():
                imgs = self.generate_pyramid(z)
                res = [imgs[k] - up(imgs[k - 1]) for k in range(1, len(imgs))]
                top = self.pad_to
                cols = [F.interpolate(t, size=top) for t in imgs + res]
        finally:
            for k, m in self.nets().items():
                m.train(modes[k])
        tiles = np.stack([backend.as_numpy(c.data) for c in cols], axis=1)      # (n, cols, C, H, W)
        tiles = np.clip(tiles, -1, 1).reshape(-1, *tiles.shape[2:])
        return viz.save_image_grid(tiles, path, nrow=len(cols))
