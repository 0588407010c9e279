"""`infogan` — Chen et al. 2016, InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets (the MNIST setup of §7 and Appendix C.1).

G's input is split into incompressible noise z and a structured code c: here z ~ N(0, I)^62,
c1 ~ Cat(10) (one-hot), c2, c3 ~ U(-1, 1).  Nothing tells G what the code means; instead a Q
head on D's shared body predicts c from G(z, c), and the game gains the variational lower
bound L_I(G, Q) = E[log Q(c | G(z, c))] + H(c) ≤ I(c; G(z, c)):
        min_{G,Q} max_D  V(D, G) - λ L_I(G, Q),      λ = 1 for both kinds of code (paper).
-log Q(c | x) = cross-entropy of Q's 10 class logits against c1
              + Gaussian NLL of (c2, c3) under N(μ_Q(x), σ²):  ½ log 2π + log σ + (c - μ)² / 2σ²,
with σ = 1 fixed (`learn_std=False`, as the authors' code does for MNIST) or a learned log σ.

Algorithm (one step):
    1. D and Q: D ascends log D(x) + log(1 - D(G(z, c))), Q descends -log Q(c | G(z, c))
       (G's output detached);
    2. G and Q: G ascends log D(G(z, c)) and, with Q, descends λ·(-log Q(c | G(z, c))),
       on the updated D.

Nets (paper Table 1, tanh instead of sigmoid for data in [-1, 1]):
    G: FC 1024 BN ReLU · FC 7·7·128 BN ReLU · upconv 64 k4 s2 BN ReLU · upconv C k4 s2 tanh
    D: conv 64 k4 s2 lReLU · conv 128 k4 s2 BN lReLU · FC 1024 BN lReLU · FC 1 (D) /  (lReLU slope 0.1)
       Q: FC 128 BN lReLU · FC (10 logits, 2 means[, 2 log σ])
Adam β1 = 0.5, learning rate 2e-4 for D (and Q there), 1e-3 for G (and Q there).
`generate(z)` takes the full latent [z, one-hot c1, c2, c3] (74 wide); `code_grid` draws the
paper's Figure 2: rows = c1 = 0..9, columns = one continuous code swept from -2 to 2.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend, nn
from .. import functional as F
from ..autograd import Tensor
from ..tensor_factories import rand, randn
from . import losses
from .base import Variant
from .nets import InfoGenerator, dcgan_init_, sequential_keeping_keys
from .registry import register

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_nll(c: Tensor, mu: Tensor, log_std: Tensor | None = None) -> Tensor:
    """-log N(c; μ, σ²) per sample, summed over the code's dimensions, mean over the batch.
    `log_std=None` is σ = 1."""
    if log_std is None:
        nll = LOG_SQRT_2PI + 0.5 * (c - mu) ** 2
    else:
        nll = LOG_SQRT_2PI + log_std + 0.5 * ((c - mu) * (-log_std).exp()) ** 2
    return nll.sum() / c.shape[0]


class InfoDiscriminator(nn.Module):
    """`features(x)` is the body D and Q share; `forward(x)` the real/fake logits (N,)."""

    def __init__(self, channels: int, size: tuple, ndf: int = 64, fc: int = 1024):
        super().__init__()
        flat = 2 * ndf * (size[0] // 4) * (size[1] // 4)
        self.body = sequential_keeping_keys(
            nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1), nn.BatchNormAct2d(2 * ndf, "leaky_relu", 0.1),
            nn.Flatten(), nn.Linear(flat, fc), nn.BatchNormAct1d(fc, "leaky_relu", 0.1))
        self.head = nn.Linear(fc, 1)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x)).reshape(-1)


class QHead(nn.Module):
    """D's features → (class logits (N, K), means (N, M), log σ (N, M) or None)."""

    def __init__(self, fc: int, n_cat: int, n_cont: int, hidden: int = 128, learn_std=False):
        super().__init__()
        self.n_cat, self.n_cont, self.learn_std = n_cat, n_cont, learn_std
        out = n_cat + n_cont * (2 if learn_std else 1)
        self.net = sequential_keeping_keys(nn.Linear(fc, hidden),
                                           nn.BatchNormAct1d(hidden, "leaky_relu", 0.1),
                                           nn.Linear(hidden, out))

    def forward(self, h):
        q, k, m = self.net(h), self.n_cat, self.n_cont
        return q[:, :k], q[:, k:k + m], (q[:, k + m:] if self.learn_std else None)


@register
class InfoGAN(Variant):
    name = "infogan"
    paper = "Chen et al. 2016, InfoGAN: Interpretable Representation Learning by Information Maximizing GANs"
    summary = "z 62 + Cat(10) + 2×U(-1,1) codes, Q head on D's body, λ=1, Adam D 2e-4 / G 1e-3"
    data_kinds = ("image",)
    defaults = dict(noise_dim=62, n_cat=10, n_cont=2, info_weight=1.0, learn_std=False,
                    ngf=64, ndf=64, fc=1024, q_hidden=128, lr_D=2e-4, lr_G=1e-3, beta1=0.5,
                    beta2=0.999)
    limits = dict(noise_dim=">= 1", n_cat=">= 1", n_cont=">= 0", info_weight=">= 0", fc=">= 1",
                  q_hidden=">= 1", lr_D="> 0", lr_G="> 0")

    def build(self):
        c = self.config
        C, H, W = self.data_shape
        if H % 4 or W % 4:
            raise ValueError(f"infogan: image sides must be multiples of 4, got {H}×{W}")
        self.G = dcgan_init_(InfoGenerator(self.z_dim, C, (H, W), c["ngf"], c["fc"]))
        self.D = dcgan_init_(InfoDiscriminator(C, (H, W), c["ndf"], c["fc"]))
        self.Q = dcgan_init_(QHead(c["fc"], c["n_cat"], c["n_cont"], c["q_hidden"], c["learn_std"]))
        self.opt_D = self.adam(self.D, self.Q, lr=c["lr_D"])
        self.opt_G = self.adam(self.G, self.Q, lr=c["lr_G"])

    # -- the latent: [noise z | one-hot c1 | continuous c2..] -----------------------------------
    @property
    def z_dim(self) -> int:
        """The full latent width G takes (noise + one-hot categorical + continuous codes)."""
        c = self.config
        return int(c["noise_dim"] + c["n_cat"] + c["n_cont"])

    def latent(self, noise, cat, cont) -> Tensor:
        """[z, one-hot(c1), c2...] from host or device arrays: noise (N, 62), cat (N,) ints, cont (N, 2)."""
        xp = backend.xp_for(self.device)
        onehot = xp.eye(self.config["n_cat"], dtype=np.float32)[xp.asarray(cat).astype(int)]
        parts = [xp.asarray(noise, np.float32), onehot, xp.asarray(cont, np.float32)]
        return Tensor(xp.concatenate(parts, axis=1))

    def sample_latent(self, n: int) -> tuple:
        """(latent (N, 74), c1 (N,) class indices, c2.. (N, 2) Tensor) drawn from the priors."""
        c = self.config
        noise, cat, cont = self.per_sample(n, lambda m: (
            randn(m, c["noise_dim"], device=self.device).data,
            backend.get_rng(self.device).integers(0, c["n_cat"], m),
            rand(m, c["n_cont"], device=self.device).data))
        cont = cont * 2.0 - 1.0
        return self.latent(noise, cat, cont), Tensor(cat), Tensor(cont)

    def sample_z(self, n):
        return self.sample_latent(n)[0]

    def fixed_noise(self, n, seed=1234):
        """Fixed noise, c1 = 0, 1, ..., 9, 0, ... in turn, continuous codes 0."""
        c, rng = self.config, np.random.default_rng(seed)
        return self.latent(rng.standard_normal((n, c["noise_dim"])), np.arange(n) % c["n_cat"],
                           np.zeros((n, c["n_cont"])))

    def generate(self, z, y=None):
        return self.G(z)

    # -- the losses --------------------------------------------------------------------------------
    def info_loss(self, features, cat, cont) -> tuple:
        """(-log Q(c1 | x), -log Q(c2.. | x)) for the codes (cat, cont) that made x."""
        logits, mu, log_std = self.Q(features)
        return F.cross_entropy(logits, cat), gaussian_nll(cont, mu, log_std)

    def train_step(self, x, y=None):
        lam = self.config["info_weight"]
        latent, cat, cont = self.sample_latent(x.shape[0])
        # 1. D (real → 1, fake → 0) and Q (recover c from the fake) on D's shared body.
        fake = self.G(latent).detach()
        h_fake = self.D.features(fake)
        info_cat, info_cont = self.info_loss(h_fake, cat, cont)
        loss_D = losses.d_loss_gan(self.D(x), self.D.head(h_fake).reshape(-1))
        self.opt_D.zero_grad()
        (loss_D + lam * (info_cat + info_cont)).backward()
        self.opt_D.step()
        # 2. G (fool the updated D) and Q: min -log D(G(z, c)) + λ (-log Q(c | G(z, c))).
        latent, cat, cont = self.sample_latent(x.shape[0])
        h_fake = self.D.features(self.G(latent))
        info_cat, info_cont = self.info_loss(h_fake, cat, cont)
        loss_G = losses.g_loss_nonsaturating(self.D.head(h_fake).reshape(-1))
        self.opt_G.zero_grad()
        (loss_G + lam * (info_cat + info_cont)).backward()
        self.opt_G.step()
        return {"loss_D": loss_D.data, "loss_G": loss_G.data,
                "loss_info_cat": info_cat.data, "loss_info_cont": info_cont.data}

    # -- the paper's Figure 2 ------------------------------------------------------------------------
    def code_grid(self, path: str, code: int = 0, steps: int = 10, lo: float = -2.0,
                  hi: float = 2.0, seed: int = 0) -> str:
        """PNG grid: row r has c1 = r, column j sets continuous code `code` to
        lo + j (hi - lo) / (steps - 1), the other continuous codes 0; one noise z throughout."""
        from ..viz import save_image_grid
        c = self.config
        if not 0 <= code < c["n_cont"]:
            raise ValueError(f"infogan.code_grid: code must be in [0, {c['n_cont']}), got {code}")
        k = c["n_cat"]
        noise = np.repeat(np.random.default_rng(seed).standard_normal((1, c["noise_dim"])), k * steps, 0)
        cont = np.zeros((k * steps, c["n_cont"]))
        cont[:, code] = np.tile(np.linspace(lo, hi, steps), k)
        images = self.sample(k * steps, z=self.latent(noise, np.repeat(np.arange(k), steps), cont))
        return save_image_grid(images, path, nrow=steps)

    def code_class_agreement(self, n_per_code: int = 200, seed: int = 0) -> dict:
        """How well c1 picks the digit: G(z, c1 = k, c2.. ~ U(-1, 1)) for each k, classified
        by the MNIST classifier of the metrics (`tinygan.classifier`).  `confusion[k][d]` counts class-d images drawn
        with c1 = k; `accuracy` is the share on the best one-to-one pairing of codes with
        digits (Hungarian matching; the paper's "c1 as a classifier" error is 1 − this, measured
        through Q on real digits instead); `digits_matched` lists the digit paired with each
        code.  For 10 codes on MNIST, 1.0 means every code draws one digit, each a different one."""
        from scipy.optimize import linear_sum_assignment

        from ..classifier import classify, load_classifier
        c = self.config
        if self.data_shape != (1, 28, 28):
            raise ValueError(f"infogan.code_class_agreement needs 28×28 digits, not {self.data_shape}")
        if int(n_per_code) < 1:
            raise ValueError(f"infogan.code_class_agreement: n_per_code must be >= 1, got {n_per_code}")
        k = int(c["n_cat"])
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((k * n_per_code, c["noise_dim"]))
        cat = np.repeat(np.arange(k), n_per_code)
        cont = rng.uniform(-1, 1, (k * n_per_code, c["n_cont"]))
        images = self.sample(k * n_per_code, z=self.latent(noise, cat, cont))
        probs, _ = classify(load_classifier(device=self.device), images)
        confusion = np.zeros((k, 10), dtype=int)
        np.add.at(confusion, (cat, probs.argmax(1)), 1)
        codes, digits = linear_sum_assignment(-confusion)
        return {"confusion": confusion.tolist(),
                "accuracy": round(float(confusion[codes, digits].sum()) / len(cat), 4),
                "digits_matched": [int(d) for d in digits[np.argsort(codes)]],
                "n_per_code": n_per_code}

    def code_grids(self, prefix: str, **kw) -> list:
        """One `code_grid` per continuous code: PREFIX_c2.png, PREFIX_c3.png, ..."""
        return [self.code_grid(f"{prefix}_c{j + 2}.png", code=j, **kw)
                for j in range(self.config["n_cont"])]
