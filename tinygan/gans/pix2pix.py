"""`pix2pix` — Isola, Zhu, Zhou & Efros 2017, Image-to-Image Translation with Conditional
Adversarial Networks.

G learns a map from an input image a (domain A) to an output image b (domain B) from pairs
(a, b); D judges pairs, so it can reject an output that looks real but does not fit its input.

    data      pairs (a, b): a two-domain dataset, A in channels [:C], B in [C:]
              (default: edges2mnist, a digit's outline → the digit)
    G(a)      a U-Net: stride-2 4×4 convs down to 1×1, transposed convs back up, each level's
              encoder features concatenated to the decoder's (the skips carry the input's
              layout, which an output must share, past the bottleneck); dropout 0.5 in the
              three innermost decoder levels is the only noise, as in the paper (a noise
              vector z was ignored by G)
    D(a, b)   a PatchGAN: a small conv net on the channel-stacked pair whose output is a map
              of logits, one per overlapping patch (16×16 pixels at d_layers=1), each judged
              real or fake; the loss averages over patches — a texture/style loss that leaves
              the low frequencies to L1

    for each step, on a batch of pairs (a, b):
        1. D:  min  ½ [ BCE(D(a, b), 1) + BCE(D(a, G(a)), 0) ]        (halved, as in the paper)
        2. G:  min  BCE(D(a, G(a)), 1) + λ · mean |G(a) − b|            λ = lambda_l1 = 100
    Adam(2e-4, β = (0.5, 0.999)) for both; weights ~ N(0, 0.02).

Sized for 32×32: five down levels (32 → 1), channels ngf·(1, 2, 4, 8, 8); the paper's 256×256
net has eight.  Batch norm everywhere but the first encoder layer and the 1×1 bottleneck
(whose statistics over a 1×1 map would be degenerate), as in the authors' code.  The paper
keeps dropout on and batch statistics at test time; `translate` and `tinygan eval` run the
nets in eval mode (dropout off, running statistics), so a translation is deterministic.

Sample grids (samples/step_N.png) and `tinygan translate --grid` show input | output | target
triplets of held-out pairs.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend, nn
from .. import functional as F
from . import losses, translation
from .base import Variant
from .nets import dcgan_init_
from .registry import register


class UNetGenerator(nn.Module):
    """(N, in_ch, S, S) → (N, out_ch, S, S) in [-1, 1]; S a power of two, log2(S) levels."""

    def __init__(self, in_ch: int, out_ch: int, size: int, ngf: int = 64, dropout: float = 0.5,
                 n_dropout: int = 3):
        super().__init__()
        depth = int(round(math.log2(size)))
        widths = [ngf * min(2 ** i, 8) for i in range(depth)]
        down = []
        for i in range(depth):
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_ch if i == 0 else widths[i - 1], widths[i], 4, 2, 1))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(widths[i]))
            down.append(nn.Sequential(*layers))
        up = []                                   # up[j] undoes down[depth - 1 - j]
        for j, i in enumerate(reversed(range(depth))):
            c_in = widths[i] if i == depth - 1 else 2 * widths[i]     # skip concatenated
            c_out = widths[i - 1] if i > 0 else out_ch
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
                if j < n_dropout and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            else:
                layers.append(nn.Tanh())
            up.append(nn.Sequential(*layers))
        self.down, self.up = nn.ModuleList(down), nn.ModuleList(up)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()                               # the bottleneck itself: not a skip
        for block in self.up:
            x = block(x)
            if skips:
                x = F.cat([skips.pop(), x], dim=1)
        return x


class PatchDiscriminator(nn.Module):
    """D(a, b): logits (N, 1, P, P), one per patch of the channel-stacked pair.  `layers`
    stride-2 convs then two stride-1 convs: patches of 16, 34, 70 pixels for 1, 2, 3 layers."""

    def __init__(self, in_ch: int, ndf: int = 64, layers: int = 1):
        super().__init__()
        mods = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, layers):
            nxt = ndf * min(2 ** n, 8)
            mods += [nn.Conv2d(width, nxt, 4, 2, 1), nn.BatchNorm2d(nxt), nn.LeakyReLU(0.2)]
            width = nxt
        nxt = ndf * min(2 ** layers, 8)
        mods += [nn.Conv2d(width, nxt, 4, 1, 1), nn.BatchNorm2d(nxt), nn.LeakyReLU(0.2),
                 nn.Conv2d(nxt, 1, 4, 1, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, a, b):
        return self.net(F.cat([a, b], dim=1))


@register
class Pix2Pix(Variant):
    name = "pix2pix"
    paper = "Isola et al. 2017, Image-to-Image Translation with Conditional Adversarial Networks"
    summary = "U-Net G(a) with dropout, PatchGAN D(a, b), BCE + 100·L1, Adam(2e-4, 0.5); edges → digits"
    data_kinds = ("image",)
    default_data = "edges2mnist"
    # On edges2mnist, 2,000 steps at batch 16: held-out PSNR 28.4-28.7 dB and the classifier
    # reads 97.8-98.4 % of G's digits right against 98.6 % of the real ones (seeds 0-2); 300
    # steps gave 84.8 % (docs/image_to_image.md, `python -m bench.quality --only pix2pix`).
    default_steps = {"image": 2000}
    default_batch_size = {"image": 16}
    defaults = dict(ngf=32, ndf=32, lr=2e-4, beta1=0.5, beta2=0.999, lambda_l1=100.0,
                    dropout=0.5, d_layers=1, size=32, direction="AtoB")
    limits = dict(lambda_l1=">= 0", dropout="[0, 1)", d_layers=">= 1", size=">= 4",
                  direction=("AtoB", "BtoA"))

    def build(self):
        c = self.config
        two_c, h, w = self.data_shape
        if two_c % 2 or h != w or h < 4 or h & (h - 1):
            raise ValueError(f"pix2pix needs square pairs (N, 2C, S, S), S a power of two >= 4 "
                             f"(a two-domain dataset, e.g. --data edges2mnist or paired:PATH); "
                             f"got samples of shape {self.data_shape}")
        self.channels = two_c // 2
        self.G = dcgan_init_(UNetGenerator(self.channels, self.channels, h, c["ngf"], c["dropout"]))
        self.D = dcgan_init_(PatchDiscriminator(two_c, c["ndf"], c["d_layers"]))
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def train_step(self, x, y=None):
        a, b = translation.split(x, self.channels)
        fake = self.G(a)
        # 1. D: real pairs → 1, (a, G(a)) → 0; the paper halves D's objective, slowing D
        #    relative to G.
        loss_D = 0.5 * losses.d_loss_gan(self.D(a, b), self.D(a, fake.detach()))
        logs = self.update("D", loss_D)
        # 2. G: pass the updated D, and stay within L1 of the true output.
        adversarial = losses.g_loss_nonsaturating(self.D(a, fake))
        l1 = F.l1_loss(fake, b)
        logs.update(self.update("G", adversarial + self.config["lambda_l1"] * l1))
        return {**logs, "loss_G_gan": adversarial.data, "loss_L1": l1.data}

    # -- using the trained G ------------------------------------------------------------------
    def translate(self, x, direction="AtoB"):
        if direction != "AtoB":
            raise ValueError("pix2pix translates only the way it was trained (AtoB); for the "
                             "other way train a run with --set direction=BtoA")
        x = np.asarray(x, np.float32)
        if x.ndim != 4 or x.shape[1:] != (self.channels, *self.data_shape[1:]):
            raise ValueError(f"pix2pix: expected inputs (N, {self.channels}, "
                             f"{self.data_shape[1]}, {self.data_shape[2]}), got {x.shape}")
        with self.evaluating():
            out = self.G(translation.to_device(self, x))
        return backend.as_numpy(out.data)

    def sample(self, n, z=None, y=None):
        raise ValueError("pix2pix draws no samples from noise: it translates images "
                         "(use `tinygan translate RUN --input ...`)")

    def sample_grid(self, dataset):
        return translation.triplet_grid(self, dataset)

    def evaluate(self, dataset):
        """PSNR and L1 of G(a) against b on the held-out pairs; for digits, also how often the
        shipped classifier reads G(a) as the digit's label, against real b."""
        split, which = translation.held_out(dataset)
        a, b = translation.split(split.x, self.channels)
        out = translation.translate_all(self, a)
        result = {"split": which, "n_pairs": int(len(a)),
                  "psnr": round(translation.psnr(out, b), 3), "l1": round(translation.l1(out, b), 4),
                  "psnr_input_as_output": round(translation.psnr(a, b), 3)}
        if split.labels is not None and self.channels == 1:
            acc_fake = translation.digit_accuracy(out, split.labels, self.device)
            acc_real = translation.digit_accuracy(b, split.labels, self.device)
            result.update(digit_accuracy_output=round(acc_fake, 4),
                          digit_accuracy_target=round(acc_real, 4),
                          accuracy_ratio=round(acc_fake / acc_real, 4) if acc_real else None)
        return result
