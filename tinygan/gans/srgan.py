"""`srgan` — Ledig et al. 2017, Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network.

G maps a low-resolution image (×4 smaller) to a high-resolution one; D tells G's outputs from
real HR images.  A pixel MSE alone gives the blurry mean of all plausible HR images; SRGAN's
perceptual loss compares images in a feature space instead and adds a small adversarial term
that pulls G's outputs onto the manifold of real images.

    pretraining (the paper's SRResNet), steps 1 … pretrain_steps:
        L_G = mean (G(lr) − hr)²                                    one Adam step on G
    then, each step:
        D:  L_D = BCE(D(hr), 1) + BCE(D(G(lr)), 0)                   one Adam step on D
        G:  L_G = mean (φ(G(lr)) − φ(hr))²  +  10⁻³ · BCE(D(G(lr)), 1)
            (content loss in feature space φ  +  non-saturating adversarial loss)
                                                                     one Adam step on G
    Adam(lr 1e-4, β1 0.9); for the second half of the adversarial steps lr ÷ 10 (the paper:
    10⁵ steps at 1e-4, 10⁵ at 1e-5).

φ: the paper's φ is VGG19's fourth conv block (VGG54), which is not available offline.  Here
φ is the shipped MNIST classifier's (tinygan/classifier.py, frozen, eval mode) second conv
layer after its ReLU, before its last max-pool (64 maps, 14×14 of the 28×28 centre crop): the
same kind of feature — deep in a net trained to recognise the images, before its last pooling.
The paper rescales its VGG loss by 1/12.75² so it lands on the scale of a pixel MSE;
`content_scale` does the same for these features.  The classifier reads grey digits: on RGB data
the content loss falls back to the pixel MSE.

Nets (the paper's, scaled for 8×8 → 32×32 digits on a 2-core CPU):
    G   SRResNet: conv k×k → nf, PReLU; `n_blocks` residual blocks [conv 3×3, BN, PReLU, conv
        3×3, BN] + skip; conv 3×3, BN, + the skip from before the blocks; twice [conv 3×3 →
        4nf, PixelShuffle ×2, PReLU]; conv k×k → C, tanh (HR images live in [-1, 1]).
        Scaled: nf 32 (paper 64), 4 residual blocks (paper 16), k = 5 (paper 9: its 9×9
        window would be wider than the whole 8×8 input, and at 32×32 output the 9×9 conv's
        unfolded columns made it most of G's time).
    D   conv 3×3 → ndf, LReLU(0.2); then conv 3×3 blocks (BN, LReLU) alternating stride 1
        and 2, doubling the width at each stride-1 conv: 32 → 4 px; dense → 8·ndf, LReLU,
        dense → 1 logit.  Scaled: ndf 16 (paper 64), 6 conv blocks after the first (paper 7,
        at 96 px), dense 128 (paper 1024).
    Batch 16 (paper 16).

Data: a two-domain dataset (N, 2C, 32, 32) of (LR, HR) pairs whose LR half is stored at HR
size by nearest repetition (mnist_x4: A = downscale(digit, 4), B = digit); the LR image is
recovered losslessly as a[..., ::4, ::4].  `evaluate` compares, on the held-out pairs, G with
bicubic upscaling (PIL): PSNR, and the shipped classifier's accuracy on each.

Measured (`tinygan train srgan --seed S`, then `tinygan eval`; 500 held-out digits): PSNR
18.46 / 18.67 dB against bicubic's 15.62, classifier accuracy 89.8 / 90.6 % against bicubic's
52.8 % (seeds 0 / 1); the MSE-only SRResNet (the first 500 steps) had 19.03 dB and 84.2 %:
docs/image_to_image_cyclegan_srgan.md.
"""
from __future__ import annotations

import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import Tensor, no_grad
from . import losses
from .base import Variant
from .registry import register
from .translation import digit_accuracy, held_out, l1, psnr, shrink, split, translate_all, triplets

SCALE = 4


class SRResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.PReLU(),
                                  nn.Conv2d(ch, ch, 3, padding=1), nn.BatchNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


class SRResNet(nn.Module):
    def __init__(self, channels: int, nf: int = 32, n_blocks: int = 4, k: int = 5):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(channels, nf, k, padding=k // 2), nn.PReLU())
        self.blocks = nn.Sequential(*[SRResBlock(nf) for _ in range(n_blocks)],
                                    nn.Conv2d(nf, nf, 3, padding=1), nn.BatchNorm2d(nf))
        up = []
        for _ in range(2):      # ×2 twice: sub-pixel convolution (Shi et al. 2016)
            up += [nn.Conv2d(nf, 4 * nf, 3, padding=1), nn.PixelShuffle(2), nn.PReLU()]
        self.tail = nn.Sequential(*up, nn.Conv2d(nf, channels, k, padding=k // 2), nn.Tanh())

    def forward(self, x):
        h = self.head(x)
        return self.tail(h + self.blocks(h))


class SRDiscriminator(nn.Module):
    def __init__(self, channels: int, size: int = 32, ndf: int = 16, n_convs: int = 6):
        super().__init__()
        layers, ch = [nn.Conv2d(channels, ndf, 3, padding=1), nn.LeakyReLU(0.2)], ndf
        for i in range(n_convs):
            stride = 2 if i % 2 == 0 else 1
            out = ch if stride == 2 else 2 * ch
            layers += [nn.Conv2d(ch, out, 3, stride=stride, padding=1), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2)]
            ch, size = out, (size + 1) // 2 if stride == 2 else size
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(ch * size * size, 8 * ndf), nn.LeakyReLU(0.2),
                                  nn.Linear(8 * ndf, 1))

    def forward(self, x):
        return self.head(self.features(x)).reshape(x.shape[0])


class ClassifierFeatures(nn.Module):
    """φ: the frozen MNIST classifier's conv2 + ReLU maps of the centre 28×28 crop."""

    def __init__(self, device: str = "cpu"):
        super().__init__()
        from ..classifier import load_classifier
        self.net = load_classifier(device=device)     # eval mode; G's updates never reach it

    def forward(self, x):
        h, w = x.shape[2:]
        top, left = (h - 28) // 2, (w - 28) // 2
        x = x[:, :, top:top + 28, left:left + 28]
        h = F.max_pool2d(F.relu(self.net.conv1(x)), 2)
        return F.relu(self.net.conv2(h))


def bicubic_upscale(lr: np.ndarray, factor: int = SCALE) -> np.ndarray:
    """PIL's bicubic resize of each (C, h, w) image in [-1, 1], channel by channel, in float."""
    from PIL import Image
    n, c, h, w = lr.shape
    out = np.empty((n, c, h * factor, w * factor), np.float32)
    for i in range(n):
        for j in range(c):
            out[i, j] = np.asarray(Image.fromarray(lr[i, j].astype(np.float32), mode="F")
                                   .resize((w * factor, h * factor), Image.BICUBIC))
    return np.clip(out, -1.0, 1.0)


@register
class SRGAN(Variant):
    name = "srgan"
    paper = "Ledig et al. 2017, Photo-Realistic Single Image Super-Resolution (SRGAN)"
    summary = "SRResNet G (×4 by PixelShuffle), strided-conv D, feature content loss + 1e-3 · adversarial"
    data_kinds = ("image",)
    default_data = "mnist_x4"
    default_steps = {"image": 1000}
    default_batch_size = {"image": 16}
    defaults = dict(nf=32, n_blocks=4, kernel=5, ndf=16, d_convs=6, lr=1e-4, beta1=0.9, beta2=0.999,
                    pretrain_steps=500, adv_weight=1e-3, content_scale=1.0, size=None)
    limits = dict(size="int >= 4", nf=">= 1", n_blocks=">= 0", kernel=">= 1", d_convs=">= 0",
                  pretrain_steps=">= 0",
                  adv_weight=">= 0", content_scale="> 0")

    def build(self):
        c = self.config
        if self.data_shape[0] % 2:
            raise ValueError(f"srgan trains on (LR, HR) pairs stored as two-domain data (e.g. "
                             f"--data mnist_x4), got images of {self.data_shape[0]} channels")
        self.channels = C = self.data_shape[0] // 2
        if self.data_shape[1] % SCALE or self.data_shape[2] % SCALE:
            raise ValueError(f"srgan upscales ×{SCALE}: HR size must be a multiple of {SCALE}, got "
                             f"{self.data_shape[1:]}")
        if c["kernel"] % 2 == 0:
            raise ValueError(f"srgan: kernel must be odd (its convs keep the size), got {c['kernel']}")
        self.G = SRResNet(C, c["nf"], c["n_blocks"], c["kernel"])
        self.D = SRDiscriminator(C, self.data_shape[1], c["ndf"], c["d_convs"])
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)
        self.phi = ClassifierFeatures(self.device) if C == 1 else None

    def nets(self) -> dict:
        # φ is fixed (the shipped classifier): not trained, not saved with the run.
        return {k: v for k, v in super().nets().items() if k != "phi"}

    def split(self, x: Tensor) -> tuple:
        """(LR, HR) from a batch of stored pairs: LR is the nearest-repeated A, subsampled."""
        a, hr = split(x, self.channels)
        return a[:, :, ::SCALE, ::SCALE], hr

    def set_lr(self) -> float:
        """The paper's schedule: full rate for pretraining and the first half of the
        adversarial steps, a tenth for the rest."""
        c, t = self.config, self.steps_done
        pre = c["pretrain_steps"]
        late = self.total_steps and t >= pre + (self.total_steps - pre) // 2 and t >= pre
        lr = c["lr"] * (0.1 if late else 1.0)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    def content_loss(self, sr: Tensor, hr: Tensor) -> Tensor:
        if self.phi is None:          # not grey digits: no feature net, pixel MSE as SRResNet
            return F.mse_loss(sr, hr)
        with no_grad():
            target = self.phi(hr)
        return self.config["content_scale"] * F.mse_loss(self.phi(sr), target)

    def perceptual_loss(self, sr: Tensor, hr: Tensor) -> tuple:
        """(total, content, adversarial): G's objective l_X + 10⁻³ · l_Gen on SR outputs."""
        content = self.content_loss(sr, hr)
        adv = losses.g_loss_nonsaturating(self.D(sr))
        return content + self.config["adv_weight"] * adv, content, adv

    def train_step(self, x, y=None):
        lr_img, hr = self.split(x)
        lr = self.set_lr()
        if self.steps_done < self.config["pretrain_steps"]:
            # SRResNet pretraining: pixel MSE only, D untouched.
            return {**self.update("G", F.mse_loss(self.G(lr_img), hr)), "lr": lr}
        sr = self.G(lr_img)
        logs = self.update("D", losses.d_loss_gan(self.D(hr), self.D(sr.detach())))
        total, content, adv = self.perceptual_loss(sr, hr)
        logs.update(self.update("G", total))
        return {**logs, "loss_content": content.data, "loss_adv": adv.data, "lr": lr}

    # -- what a trained super-resolver does ----------------------------------------------------
    def translate(self, x: np.ndarray, direction: str = "AtoB") -> np.ndarray:
        """LR images (N, C, H, W) in [-1, 1] stored as the run's data stores them, each pixel
        repeated 4×4 (mnist_x4's A) → SR images of the same size H×W: G applied to
        x[..., ::4, ::4].  So outputs line up with inputs and targets in the triplet grids."""
        if direction != "AtoB":
            raise ValueError(f"srgan only translates AtoB (low to high resolution), got {direction!r}")
        x = np.asarray(x, np.float32)
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] % SCALE or x.shape[3] % SCALE:
            raise ValueError(f"srgan: expected images (N, {self.channels}, H, W), H and W multiples "
                             f"of {SCALE} (the LR image repeated {SCALE}×{SCALE}), got {x.shape}")
        lr_img = np.ascontiguousarray(shrink(x, SCALE))
        with self.evaluating():
            out = self.G(Tensor(backend.to_device(lr_img, self.device)))
        return backend.as_numpy(out.data)

    def evaluate(self, dataset) -> dict:
        """On the held-out pairs, G's SR outputs and PIL's bicubic upscales of the same LR
        images against the HR images: PSNR and L1 (psnr, l1 / psnr_bicubic, l1_bicubic) and,
        for digits, the shipped classifier's accuracy on each (digit_accuracy_output /
        digit_accuracy_bicubic; on the real HR images digit_accuracy_target)."""
        test, which = held_out(dataset)
        a, hr = split(test.x, self.channels)
        sr, bicubic = translate_all(self, a, "AtoB"), bicubic_upscale(shrink(a, SCALE))
        out = {"split": which, "n": int(len(a)),
               "psnr": round(psnr(sr, hr), 3), "psnr_bicubic": round(psnr(bicubic, hr), 3),
               "l1": round(l1(sr, hr), 4), "l1_bicubic": round(l1(bicubic, hr), 4)}
        labels = getattr(test, "labels", None)
        if labels is not None and self.channels == 1 and hr.shape[2:] in ((28, 28), (32, 32)):
            acc_sr, acc_hr = (digit_accuracy(sr, labels, self.device),
                              digit_accuracy(hr, labels, self.device))
            out.update(digit_accuracy_output=round(acc_sr, 4),
                       digit_accuracy_bicubic=round(digit_accuracy(bicubic, labels, self.device), 4),
                       digit_accuracy_target=round(acc_hr, 4),
                       accuracy_ratio=round(acc_sr / acc_hr, 4) if acc_hr else None)
        return out

    def sample_grid(self, dataset) -> tuple:
        """Held-out LR input (shown at HR size) | SR output | HR target, 16 triplets spread
        over the split."""
        return triplets(self, dataset, 16), 12
