"""`pggan` — Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation".

G and D start at 4×4 and grow together, one resolution at a time, 4 → 8 → 16 → 32 (28×28
digits are padded to 32×32).  Each new resolution first *fades in*, then *stabilises*:

    for phase in [stabilise 4×4,  fade-in 8×8, stabilise 8×8,  ...,  fade-in 32×32, stabilise 32×32]:
        for each of its steps_per_phase minibatches:      (the paper: 600k real images a phase)
            α = t / steps_per_phase during fade-in, 1 when stabilising
            reals x_R = x downsampled (2×2 average pooling) to the current resolution R,
                  blended during fade-in as  lerp(up(down(x_R)), x_R, α)
            D step (WGAN-GP with drift, §A.1):
                L_D = E[D(G(z))] - E[D(x_R)] + λ E[(‖∇x̂ D(x̂)‖ - 1)²] + ε_drift E[D(x_R)²]
            G step:  L_G = -E[D(G(z))]                           (n_critic = 1)

During fade-in the new block enters as a residual branch whose weight α grows from 0 to 1 (§2):
    G(z) = lerp( up(toRGB_{R/2}(h)),  toRGB_R(block_R(h)),  α )
    D(x) = ... lerp( fromRGB_{R/2}(down(x)),  block_R(fromRGB_R(x)),  α ) ...
The paper's other tools (see pg_layers.py): equalized learning rate on every layer, pixelwise
feature normalisation after each conv in G (and on the latent), a minibatch-stddev channel before
D's last block (group size 4).  Adam(lr 1e-3, β = (0, 0.99), ε = 1e-8), λ = 10, ε_drift = 1e-3,
LeakyReLU 0.2, nearest-neighbour upsampling, average-pool downsampling, linear toRGB (no tanh).

Scaled-down defaults: 128 feature maps at every resolution (`fmaps`; the paper's 1024×1024 nets
use 512 up to 64×64) and a 128-d latent (the paper's latent size equals its fmaps), so G and D
have matched capacity — `param_table()` prints the per-resolution counts like the paper's
Table 2.  `steps_per_phase=250` takes a default 2000-step run through all seven phases.

All nets (every resolution) exist from the start, so checkpoints and optimizers have a fixed
parameter set; the optimizer skips parameters a step did not reach (grad None), so Adam's
state of a block starts when the block does.  The current resolution and α are functions of
`steps_done` (`schedule()`), which the checkpoint holds: resume is exact mid-fade-in.
"""
from __future__ import annotations

import math

from .. import functional as F
from .. import nn, optim
from . import losses
from .base import Variant
from .nets import padded_size
from .pg_layers import EqualizedConv2d, EqualizedLinear, minibatch_stddev, pixel_norm
from .registry import register


def _lrelu(x):
    return F.leaky_relu(x, 0.2)


def lerp(a, b, alpha: float):
    """a + α (b - a): a at α = 0, b at α = 1."""
    return a + (b - a) * alpha


def downsample(x, factor: int = 2):
    return x if factor == 1 else F.avg_pool2d(x, factor)


def upsample(x, factor: int = 2):
    return x if factor == 1 else F.interpolate(x, scale_factor=factor)


class PGGenerator(nn.Module):
    """blocks[0]: z → pixelnorm → dense to 4×4 → conv 3×3;  blocks[k]: up ×2 → conv 3×3 → conv 3×3
    (each conv followed by LeakyReLU 0.2 and pixelnorm);  to_rgb[k]: 1×1 conv, linear."""

    def __init__(self, z_dim: int, channels: int, max_res: int, fmaps: int):
        super().__init__()
        self.fmaps = fmaps
        self.resolutions = [4 * 2 ** k for k in range(int(math.log2(max_res)) - 1)]
        # The 4×4 "conv" from the latent is a dense layer; gain sqrt(2)/4 as in the official code.
        self.blocks = nn.ModuleList(
            [nn.ModuleList([EqualizedLinear(z_dim, fmaps * 16, gain=math.sqrt(2) / 4),
                            EqualizedConv2d(fmaps, fmaps, 3)])]
            + [nn.ModuleList([EqualizedConv2d(fmaps, fmaps, 3), EqualizedConv2d(fmaps, fmaps, 3)])
               for _ in self.resolutions[1:]])
        self.to_rgb = nn.ModuleList([EqualizedConv2d(fmaps, channels, 1, gain=1.0)
                                     for _ in self.resolutions])

    def block(self, k: int, h):
        if k == 0:
            dense, conv = self.blocks[0]
            h = dense(pixel_norm(h)).reshape(h.shape[0], self.fmaps, 4, 4)
            h = pixel_norm(_lrelu(h))
            return pixel_norm(_lrelu(conv(h)))
        h = upsample(h)
        for conv in self.blocks[k]:
            h = pixel_norm(_lrelu(conv(h)))
        return h

    def forward(self, z, res: int, alpha: float = 1.0):
        k = self.resolutions.index(res)
        h = z
        for i in range(k):
            h = self.block(i, h)
        new = self.to_rgb[k](self.block(k, h))
        if k == 0 or alpha >= 1.0:
            return new
        return lerp(upsample(self.to_rgb[k - 1](h)), new, alpha)


class PGDiscriminator(nn.Module):
    """from_rgb[k]: 1×1 conv + LeakyReLU;  blocks[k] (k ≥ 1): conv 3×3 → conv 3×3 → avg-pool ×½;
    blocks[0]: minibatch stddev → conv 3×3 → dense 4×4 → dense to 1 score (linear)."""

    def __init__(self, channels: int, max_res: int, fmaps: int, group_size: int = 4):
        super().__init__()
        self.fmaps, self.group_size = fmaps, group_size
        self.resolutions = [4 * 2 ** k for k in range(int(math.log2(max_res)) - 1)]
        self.from_rgb = nn.ModuleList([EqualizedConv2d(channels, fmaps, 1)
                                       for _ in self.resolutions])
        self.blocks = nn.ModuleList(
            [nn.ModuleList([EqualizedConv2d(fmaps + 1, fmaps, 3), EqualizedLinear(fmaps * 16, fmaps),
                            EqualizedLinear(fmaps, 1, gain=1.0)])]
            + [nn.ModuleList([EqualizedConv2d(fmaps, fmaps, 3), EqualizedConv2d(fmaps, fmaps, 3)])
               for _ in self.resolutions[1:]])

    def block(self, k: int, h):
        if k == 0:
            conv, dense, out = self.blocks[0]
            h = _lrelu(conv(minibatch_stddev(h, self.group_size)))
            h = _lrelu(dense(F.flatten(h, 1)))
            return out(h).reshape(-1)
        for conv in self.blocks[k]:
            h = _lrelu(conv(h))
        return downsample(h)

    def forward(self, x, res: int, alpha: float = 1.0):
        k = self.resolutions.index(res)
        h = self.block(k, _lrelu(self.from_rgb[k](x)))
        if k > 0 and alpha < 1.0:
            h = lerp(_lrelu(self.from_rgb[k - 1](downsample(x))), h, alpha)
        for i in range(k - 1, -1, -1):
            h = self.block(i, h)
        return h


def _count(*modules) -> int:
    return int(sum(p.numel() for m in modules for p in m.parameters()))


@register
class PGGAN(Variant):
    name = "pggan"
    paper = "Karras et al. 2018, Progressive Growing of GANs for Improved Quality, Stability, and Variation"
    summary = ("progressive growing 4→32 with fade-in, equalized LR, pixelnorm, minibatch stddev, "
               "WGAN-GP (λ=10) + drift 1e-3, Adam(1e-3, (0, 0.99)), n_critic 1")
    data_kinds = ("image",)
    defaults = dict(z_dim=128, fmaps=128, lr=1e-3, beta1=0.0, beta2=0.99, adam_eps=1e-8,
                    gp_weight=10.0, drift=1e-3, n_critic=1, steps_per_phase=250, mbstd_group=4)
    limits = dict(fmaps=">= 1", adam_eps="> 0", drift=">= 0", steps_per_phase=">= 1",
                  mbstd_group=">= 1")

    def build(self):
        c = self.config
        self.pad_to = padded_size(max(self.data_shape[1:]))
        C = self.data_shape[0]
        self.G = PGGenerator(self.z_dim, C, self.pad_to, c["fmaps"])
        self.D = PGDiscriminator(C, self.pad_to, c["fmaps"], c["mbstd_group"])
        self.resolutions = self.G.resolutions
        kw = dict(lr=c["lr"], betas=(c["beta1"], c["beta2"]), eps=c["adam_eps"])
        self.opt_G = optim.Adam(self.G.parameters(), **kw)
        self.opt_D = optim.Adam(self.D.parameters(), **kw)

    # -- the growth schedule -------------------------------------------------------------------
    def schedule(self, step: int | None = None) -> tuple:
        """(resolution, α, "fade-in" | "stabilise") for training step `step` (default: the next).

        Phase p = step // steps_per_phase: 0 stabilises 4×4; odd p = 2k-1 fades in resolution k,
        with α = t / steps_per_phase at its t-th step (0 at the first, never quite 1); even p = 2k
        stabilises it.  After the last phase the top resolution trains on, α = 1.
        """
        step = self.steps_done if step is None else step
        spp = int(self.config["steps_per_phase"])
        phase, t = divmod(step, spp)
        if phase >= 2 * (len(self.resolutions) - 1):
            return self.resolutions[-1], 1.0, "stabilise"
        k = (phase + 1) // 2
        if phase % 2:
            return self.resolutions[k], t / spp, "fade-in"
        return self.resolutions[k], 1.0, "stabilise"

    def reals_at(self, x, res: int, alpha: float):
        """The real batch as D sees it at `res`: 2×2-average-pooled down from full size, and
        during fade-in blended with its own blurrier half-resolution version, like the fakes."""
        x = downsample(x, x.shape[-1] // res)
        if alpha >= 1.0:
            return x
        return lerp(upsample(downsample(x)), x, alpha)

    # -- Algorithm ---------------------------------------------------------------------------------
    def train_step(self, x, y=None):
        c = self.config
        res, alpha, phase = self.schedule()
        x = self.reals_at(self.to_net(x), res, alpha)
        n = x.shape[0]

        def D(img):
            return self.D(img, res, alpha)

        # 1. Critic: WGAN-GP, plus the drift term that keeps E[D(x)] near 0.
        fake = self.G(self.sample_z(n), res, alpha).detach()
        real_scores, fake_scores = D(x), D(fake)
        wasserstein_loss = losses.d_loss_wasserstein(real_scores, fake_scores)
        penalty = losses.gradient_penalty(D, x, fake, c["gp_weight"])
        drift = c["drift"] * (real_scores ** 2).mean()
        loss_D = wasserstein_loss + penalty + drift
        self.update("D", loss_D)
        out = {"loss_D": loss_D.data, "wasserstein": -wasserstein_loss.data,
               "gp": penalty.data, "drift": drift.data, "res": float(res), "alpha": float(alpha)}
        # 2. Generator, every n_critic-th step (the paper: every step).
        if (self.steps_done + 1) % int(c["n_critic"]) == 0:
            loss_G = losses.g_loss_wasserstein(D(self.G(self.sample_z(n), res, alpha)))
            self.update("G", loss_G)
            out["loss_G"] = loss_G.data
        return out

    def generate(self, z, y=None, res: int | None = None, alpha: float | None = None):
        """Samples at the current (or given) resolution, nearest-upsampled to the padded size,
        cropped to the data size, clipped to [-1, 1] (toRGB is linear)."""
        cur_res, cur_alpha, _ = self.schedule()
        res = cur_res if res is None else res
        alpha = (cur_alpha if res == cur_res else 1.0) if alpha is None else alpha
        img = upsample(self.G(z, res, alpha), self.pad_to // res)
        return self.from_net(img).clip(-1.0, 1.0)

    # -- the paper's Table 2, for this config ----------------------------------------------------
    def param_table(self) -> str:
        """Parameters per resolution: each new block with its toRGB / fromRGB, and the totals
        active at that resolution once stabilised."""
        rows = [f"{'res':>7} | {'G block':>9} {'toRGB':>6} {'G total':>9} | "
                f"{'D block':>9} {'fromRGB':>7} {'D total':>9}"]
        g_tot = d_tot = 0
        for k, r in enumerate(self.resolutions):
            gb, db = _count(self.G.blocks[k]), _count(self.D.blocks[k])
            tr, fr = _count(self.G.to_rgb[k]), _count(self.D.from_rgb[k])
            g_tot, d_tot = g_tot + gb, d_tot + db
            rows.append(f"{f'{r}x{r}':>7} | {gb:>9,} {tr:>6,} {g_tot + tr:>9,} | "
                        f"{db:>9,} {fr:>7,} {d_tot + fr:>9,}")
        rows.append(f"{'all':>7} | {'':>9} {'':>6} {_count(self.G):>9,} | {'':>9} {'':>7} "
                    f"{_count(self.D):>9,}   (every resolution's toRGB/fromRGB included)")
        return "\n".join(rows)

    def describe(self) -> str:
        res, alpha, phase = self.schedule()
        return (f"{super().describe()}\nnext step: {res}x{res}, {phase}, alpha={alpha:.3f}\n"
                f"{self.param_table()}")
