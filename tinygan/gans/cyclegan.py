"""`cyclegan` — Zhu, Park, Isola & Efros 2017, Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks.

Two generators G: A → B and F: B → A, two discriminators D_B (is this a B?) and D_A, trained
on images of each domain that are never paired.  An adversarial loss alone would let G map
every x to *some* plausible B; the cycle loss asks F(G(x)) ≈ x and G(F(y)) ≈ y, so the
translation has to keep what identifies x.

    for each step, a batch a of domain A and a batch b of domain B (unrelated rows):
        fake_b, fake_a = G(a), F(b)
        # generators, least-squares GAN loss (Mao et al.): push D's output on fakes to 1
        L_G = (D_B(fake_b) − 1)² + (D_A(fake_a) − 1)²
              + λ_cyc · (|F(fake_b) − a|₁ + |G(fake_a) − b|₁)           (cycle consistency)
              + λ_id · λ_cyc · (|G(b) − b|₁ + |F(a) − a|₁)              (identity)
        one Adam step on G and F together
        # discriminators, each on real images and on a fake drawn from a 50-image replay
        # pool of past fakes (Shrivastava et al. 2017, image_pool.py)
        L_D_B = ½ [(D_B(b) − 1)² + D_B(pool_B(fake_b))²],  L_D_A likewise
        one Adam step on D_A and D_B
    Adam(2e-4, β = (0.5, 0.999)); lr held for the first half of the run, then decayed
    linearly towards 0 (the paper: 100 epochs held, 100 decayed).

Paper defaults kept: λ_cyc = 10, λ_id = 0.5 (the identity term weighs 0.5 · λ_cyc = 5), the
50-image pool, least squares, instance norm, reflection padding, Adam(2e-4, 0.5), the
lr schedule.

Nets (the paper's, scaled for 32×32 digits on a 2-core CPU):
    G   ReflectionPad 3, conv 7×7 → ngf, IN, ReLU;  two stride-2 convs 3×3 (ngf → 2ngf → 4ngf,
        IN, ReLU: 32 → 8 px);  `n_blocks` residual blocks [reflect-pad, conv 3×3, IN, ReLU,
        reflect-pad, conv 3×3, IN] + skip;  two transposed convs 3×3 stride 2 back to ngf;
        ReflectionPad 3, conv 7×7 → C, tanh.
        Scaled: ngf 16 (paper 64), 3 residual blocks (paper: 6 at 128 px, 9 at 256 px).
    D   PatchGAN: conv 4×4 stride 2 → ndf, LeakyReLU(0.2); (d_layers − 1) more stride-2 convs,
        doubling, IN, LReLU; one stride-1 conv 4×4 (IN, LReLU); a stride-1 conv 4×4 → 1 map of
        patch scores.  Scaled: ndf 16 (paper 64), d_layers 2 (paper 3): on 32×32 input a 6×6
        map of scores whose receptive fields are 34 px (the paper's 70×70 patches of 256 px).
    Batch 8 (paper 1): instance norm makes each image its own statistics either way.
    600 steps, about 2 epochs of each domain's 2,250 digits (paper: 200 epochs).
    Weights ~ N(0, 0.02) as the authors' code.

Data: a two-domain dataset (N, 2C, H, W) whose channels [:C] are domain A and [C:] domain B;
on `mnist2thick` A are digits of one half of the training digits, B dilated digits of the
other half, so no pair is ever seen.  `translate(x, "AtoB" | "BtoA")` applies G or F;
`evaluate` reports on the held-out pairs the label preservation of each direction (the
shipped classifier reads x's label in the translation) and the cycle L1.

Measured (`tinygan train cyclegan --seed S`, then `tinygan eval`; 500 held-out digits):
label preservation 92.4 % thin → thick and 96.0 % thick → thin (seed 0; the issue's target
is 80 %), with outputs 3× closer to the true translations than the inputs (L1 0.063 vs
0.201): docs/image_to_image_cyclegan_srgan.md.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import Tensor
from .base import Variant
from .image_pool import ImagePool
from .registry import register
from .translation import digit_accuracy, held_out, l1, psnr, split, translate_all, triplets


def _init_(module: nn.Module) -> nn.Module:
    """N(0, 0.02) conv weights, zero biases: the authors' "normal" init."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class ResnetBlock(nn.Module):
    """x + [reflect-pad 1, conv 3×3, IN, ReLU, reflect-pad 1, conv 3×3, IN](x)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch),
                                  nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3),
                                  nn.InstanceNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, channels: int, ngf: int = 16, n_blocks: int = 3, n_down: int = 2):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU()]
        ch = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * ch), nn.ReLU()]
            ch *= 2
        layers += [ResnetBlock(ch) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017): a map of scores, one per overlapping patch of the input."""

    def __init__(self, channels: int, ndf: int = 16, n_layers: int = 2):
        super().__init__()
        layers = [nn.Conv2d(channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        ch = ndf
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            out = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(ch, out, 4, stride=stride, padding=1), nn.InstanceNorm2d(out),
                       nn.LeakyReLU(0.2)]
            ch = out
        layers += [nn.Conv2d(ch, 1, 4, stride=1, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def lsgan_d_loss(real_out: Tensor, fake_out: Tensor) -> Tensor:
    """½ [mean (D(real) − 1)² + mean D(fake)²]: the ½ slows D relative to G, as the paper."""
    return 0.5 * (((real_out - 1.0) ** 2).mean() + (fake_out ** 2).mean())


def lsgan_g_loss(fake_out: Tensor) -> Tensor:
    return ((fake_out - 1.0) ** 2).mean()


def held_then_decayed(step: int, total: int | None, hold: float) -> float:
    """The lr factor at 0-based step `step` of `total`: 1 for the first `hold` of the run, then
    linear towards 0, reaching 1/(decay steps) at the last step (as the authors' code, whose
    last epoch still moves)."""
    if not total:
        return 1.0
    n_hold = int(round(hold * total))
    n_decay = total - n_hold
    if step < n_hold or n_decay <= 0:
        return 1.0
    return max(0.0, 1.0 - (step - n_hold) / n_decay)


@register
class CycleGAN(Variant):
    name = "cyclegan"
    paper = "Zhu et al. 2017, Unpaired Image-to-Image Translation (CycleGAN)"
    summary = "two ResNet G's, two PatchGAN D's, LSGAN + λ·cycle L1 + identity, replay pool"
    data_kinds = ("image",)
    default_data = "mnist2thick"
    default_steps = {"image": 600}
    default_batch_size = {"image": 8}
    defaults = dict(ngf=16, ndf=16, n_blocks=3, d_layers=2, lr=2e-4, beta1=0.5, beta2=0.999,
                    lambda_cyc=10.0, lambda_id=0.5, pool_size=50, hold=0.5, size=None,
                    direction="AtoB")
    limits = dict(n_blocks=">= 0", d_layers=">= 1", lambda_cyc=">= 0", lambda_id=">= 0",
                  pool_size=">= 0", hold="[0, 1]", size="int >= 8", direction=("AtoB", "BtoA"))

    def build(self):
        c = self.config
        if self.data_shape[0] % 2:
            raise ValueError(f"cyclegan trains on two-domain data (e.g. --data mnist2thick or "
                             f"unpaired:PATH), got images of {self.data_shape[0]} channels")
        self.channels = C = self.data_shape[0] // 2
        self.G_AB = _init_(ResnetGenerator(C, c["ngf"], c["n_blocks"]))
        self.G_BA = _init_(ResnetGenerator(C, c["ngf"], c["n_blocks"]))
        self.D_A = _init_(PatchDiscriminator(C, c["ndf"], c["d_layers"]))
        self.D_B = _init_(PatchDiscriminator(C, c["ndf"], c["d_layers"]))
        self.opt_G = self.adam(self.G_AB, self.G_BA)
        self.opt_D = self.adam(self.D_A, self.D_B)
        self.pool_A, self.pool_B = ImagePool(c["pool_size"]), ImagePool(c["pool_size"])

    def set_lr(self) -> float:
        scale = held_then_decayed(self.steps_done, self.total_steps, self.config["hold"])
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = self.config["lr"] * scale
        return self.config["lr"] * scale

    def generator_losses(self, a: Tensor, b: Tensor) -> tuple:
        """(total, parts, fake_a, fake_b): the generators' objective on one batch of each domain."""
        c = self.config
        lam, lam_id = c["lambda_cyc"], c["lambda_id"] * c["lambda_cyc"]
        fake_b, fake_a = self.G_AB(a), self.G_BA(b)
        adv = lsgan_g_loss(self.D_B(fake_b)) + lsgan_g_loss(self.D_A(fake_a))
        cyc = F.l1_loss(self.G_BA(fake_b), a) + F.l1_loss(self.G_AB(fake_a), b)
        total = adv + lam * cyc
        parts = {"loss_G_adv": adv.data, "loss_cycle": cyc.data}
        if lam_id > 0:
            idt = F.l1_loss(self.G_AB(b), b) + F.l1_loss(self.G_BA(a), a)
            total = total + lam_id * idt
            parts["loss_identity"] = idt.data
        return total, parts, fake_a, fake_b

    def train_step(self, x, y=None):
        a, b = split(x, self.channels)
        lr = self.set_lr()
        # 1. Both generators, against the current discriminators.
        loss_G, parts, fake_a, fake_b = self.generator_losses(a, b)
        logs = {**self.update("G", loss_G), **parts}
        # 2. Both discriminators, on real images and on fakes from the replay pools.
        loss_D = (lsgan_d_loss(self.D_A(a), self.D_A(self.pool_A.query(fake_a)))
                  + lsgan_d_loss(self.D_B(b), self.D_B(self.pool_B.query(fake_b))))
        logs.update(self.update("D", loss_D))
        logs["lr"] = lr
        return logs

    # -- what a trained translator does --------------------------------------------------------
    def translate(self, x: np.ndarray, direction: str = "AtoB") -> np.ndarray:
        """Images of the source domain (N, C, H, W) in [-1, 1] → the other domain's, by G_AB
        (AtoB) or G_BA (BtoA); eval mode, no graph."""
        net = {"AtoB": "G_AB", "BtoA": "G_BA"}.get(direction)
        if net is None:
            raise ValueError(f"cyclegan: direction must be AtoB or BtoA, got {direction!r}")
        x = np.asarray(x, np.float32)
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"cyclegan: expected images (N, {self.channels}, H, W), got {x.shape}")
        with self.evaluating():
            out = getattr(self, net)(Tensor(backend.to_device(np.ascontiguousarray(x), self.device)))
        return backend.as_numpy(out.data)

    def evaluate(self, dataset) -> dict:
        """On the held-out split:
            label_preservation_AtoB / _BtoA   how often the shipped classifier reads x's digit
                                              in G(x) (digits only)
            cycle_l1_A / _B                   mean |F(G(a)) − a|, |G(F(b)) − b| ([-1, 1] scale)
        and where the held-out rows are true pairs (mnist2thick's), the keys every translator
        reports for A→B (psnr, l1 of G(a) against b; digit_accuracy_output = the A→B label
        preservation, digit_accuracy_target on the real b, their ratio), the L1 of F(b) to a,
        and the input's own distance to its target: did G translate, or only copy (a copy
        keeps labels too)?"""
        test, which = held_out(dataset)
        a, b = split(test.x, self.channels)
        fake_b, fake_a = translate_all(self, a, "AtoB"), translate_all(self, b, "BtoA")
        out = {"split": which, "n": int(len(a)),
               "cycle_l1_A": round(l1(translate_all(self, fake_b, "BtoA"), a), 4),
               "cycle_l1_B": round(l1(translate_all(self, fake_a, "AtoB"), b), 4)}
        paired = bool(getattr(test, "paired", False))
        if paired:
            out.update(psnr=round(psnr(fake_b, b), 3), l1=round(l1(fake_b, b), 4),
                       psnr_input_as_output=round(psnr(a, b), 3),
                       l1_input_as_output=round(l1(a, b), 4),
                       l1_BtoA=round(l1(fake_a, a), 4))
        digits = self.channels == 1 and a.shape[2:] in ((28, 28), (32, 32))
        labels_a = test.labels
        labels_b = test.labels if paired else getattr(test, "labels_b", None)
        if digits and labels_a is not None:
            out["label_preservation_AtoB"] = round(digit_accuracy(fake_b, labels_a, self.device), 4)
        if digits and labels_b is not None:
            out["label_preservation_BtoA"] = round(digit_accuracy(fake_a, labels_b, self.device), 4)
            real_b = digit_accuracy(b, labels_b, self.device)
            out["digit_accuracy_real_A"] = round(digit_accuracy(a, labels_a, self.device), 4) \
                if labels_a is not None else None
            out["digit_accuracy_real_B"] = round(real_b, 4)
            if paired:
                out.update(digit_accuracy_output=out["label_preservation_AtoB"],
                           digit_accuracy_target=round(real_b, 4),
                           accuracy_ratio=round(out["label_preservation_AtoB"] / real_b, 4)
                           if real_b else None)
        return out

    def sample_grid(self, dataset) -> tuple:
        """Held-out input | output | target triplets, 8 A→B then 8 B→A, the rows spread over
        the split (the digits' held-out split is sorted by class)."""
        ab = triplets(self, dataset, 8, "AtoB")
        ba = triplets(self, dataset, 8, "BtoA")
        return np.concatenate([ab, ba]), 12

    # -- the replay pools are part of the training state ----------------------------------------
    def state_dict(self) -> dict:
        return {**super().state_dict(),
                "pools": {"A": self.pool_A.state_dict(), "B": self.pool_B.state_dict()}}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "pools" in state:
            self.pool_A.load_state_dict(state["pools"]["A"], self.device)
            self.pool_B.load_state_dict(state["pools"]["B"], self.device)
