"""`cogan` — Liu & Tuzel 2016, "Coupled Generative Adversarial Networks".

Two GANs, one per domain, trained on samples of each domain alone (no pair is ever seen).
What couples them is weight sharing: G1 and G2 share their first layers (those that decode
the high-level content of z), D1 and D2 share their last layers (those that judge it).  With
the same z, G1 and G2 then draw the same content in each domain's own rendering, a joint
distribution learned from its two marginals.  The paper's training (its eq. 4 and the
algorithm of its supplementary material), one step:

    draw x1 ~ p_X1 (a batch of domain 1), x2 ~ p_X2 (of domain 2), z ~ N(0, I)
    1. D1, D2 ascend  V = E log f1(x1) + E log(1 − f1(g1(z)))
                        + E log f2(x2) + E log(1 − f2(g2(z)))      (fakes detached)
    2. g1, g2 descend V with fresh z — here the non-saturating −log f(g(z)) of each GAN, as
       `gan` and `dcgan` do, for the usual reason (log(1 − f) gives an early G no gradient).
    The same z feeds g1 and g2; the shared layers are one set of parameters, so their
    gradient is the sum of what both GANs ask of them.

Nets, for 32×32 digits on a 2-core CPU (the paper's MNIST nets: G four shared transposed
convolutions 1024-512-256-128 wide and one unshared output layer, BN + PReLU, sigmoid out; D
a LeNet, its first conv unshared and the rest shared, batch 128, Adam(2e-4, 0.5), 25,000
iterations).  Here: G shares four DCGAN up-convolutions z → 4ngf×4×4 → 2ngf×8×8 →
ngf×16×16 → ngf/2×32×32 (BN, ReLU) and each domain has its own last layer, a 5×5 stride-1
transposed convolution to 1×32×32 (a "same" convolution; the transposed form is the faster
one here for a single output channel), tanh;
D1, D2 each have their own first k4 s2 conv (1 → ndf, LeakyReLU 0.2) and share the rest,
ndf → 2ndf → 4ndf (BN, LeakyReLU 0.2) → 1 logit: DCGAN's D, split.  The shared BN layers
normalise each call's batch by its own statistics, so each domain is normalised by its own
(without BN in D the first runs here collapsed onto one pair by step 400).  ngf = ndf = 32,
Adam(2e-4, β = (0.5, 0.999)), batch 64 of each domain.

Data: `--data digits-negative` or `--data digits-edges` (tinygan/data/two_domains.py), one
32×64 image per sample, domain 1 on the left, domain 2 on the right, from disjoint halves of
the shipped digits.  A sample of this variant has the same layout: G1(z) | G2(z).  `tinygan
eval` scores it by the paper's pixel agreement of G2(z) with T(G1(z)) (metrics.py).
"""
from __future__ import annotations

from .. import nn
from .. import functional as F
from . import losses
from .base import Variant
from .nets import dcgan_init_, sequential_keeping_keys
from .registry import register

SIDE = 32          # each domain's image side (the two-domain datasets' 32×64 samples)


class CoupledGenerator(nn.Module):
    """z → (G1(z), G2(z)): `shared` (one Module, so one set of parameters) feeds two heads."""

    def __init__(self, z_dim: int, ngf: int):
        super().__init__()
        self.shared = sequential_keeping_keys(
            nn.ConvTranspose2d(z_dim, 4 * ngf, 4, 1, 0, bias=False), nn.BatchNormAct2d(4 * ngf),
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 4, 2, 1, bias=False), nn.BatchNormAct2d(2 * ngf),
            nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1, bias=False), nn.BatchNormAct2d(ngf),
            nn.ConvTranspose2d(ngf, ngf // 2, 4, 2, 1, bias=False), nn.BatchNormAct2d(ngf // 2))
        # Each domain's own layer works at full resolution, stride 1, like the paper's 6×6 one:
        # an outline is a local function of the strokes around each pixel (dilation minus the
        # strokes), which a stride-2 up-convolution, seeing a 2×2 patch of 16×16 features,
        # did not learn (the first edges runs drew hatching beside the digits of G1).
        self.head1, self.head2 = (nn.Sequential(nn.ConvTranspose2d(ngf // 2, 1, 5, 1, 2, bias=False),
                                                nn.Tanh()) for _ in range(2))

    def g1(self, z):
        return self.head1(self.shared(z.reshape(z.shape[0], -1, 1, 1)))

    def g2(self, z):
        return self.head2(self.shared(z.reshape(z.shape[0], -1, 1, 1)))

    def forward(self, z):
        # Both generators get the same z, so the shared layers' output is the same for both:
        # computed once, it feeds both heads, and backward adds the two heads' gradients in it
        # (the same sum as two calls of `shared`, g1 and g2, each with its own backward).
        h = self.shared(z.reshape(z.shape[0], -1, 1, 1))
        return self.head1(h), self.head2(h)


class CoupledDiscriminator(nn.Module):
    """(x1, x2) → (logits of D1 on x1, of D2 on x2): own first layers, `shared` last ones."""

    def __init__(self, ndf: int):
        super().__init__()
        self.first1, self.first2 = (nn.Sequential(nn.Conv2d(1, ndf, 4, 2, 1), nn.LeakyReLU(0.2))
                                    for _ in range(2))
        self.shared = sequential_keeping_keys(
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False), nn.BatchNormAct2d(2 * ndf, "leaky_relu", 0.2),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1, bias=False), nn.BatchNormAct2d(4 * ndf, "leaky_relu", 0.2),
            nn.Conv2d(4 * ndf, 1, 4, 1, 0, bias=False))

    def d1(self, x1):
        return self.shared(self.first1(x1)).reshape(-1)

    def d2(self, x2):
        return self.shared(self.first2(x2)).reshape(-1)

    def forward(self, x1, x2):
        return self.d1(x1), self.d2(x2)


@register
class CoGAN(Variant):
    name = "cogan"
    paper = "Liu & Tuzel 2016, Coupled Generative Adversarial Networks"
    summary = ("two GANs, one per domain, G's first layers and D's last layers shared: "
               "a joint distribution from unpaired samples (--data digits-negative|digits-edges)")
    data_kinds = ("image",)
    # 1,500 steps, about 6 minutes idle: negatives agree at 0.988 by step 375 and 0.992 at
    # 1,500; edges are at 0.86 then and need --steps 4500 for 0.917 (docs/reading_list.md#cogan).
    default_steps = {"image": 1500}
    defaults = dict(z_dim=100, ngf=32, ndf=32, lr=2e-4, beta1=0.5, beta2=0.999)

    def build(self):
        if self.data_shape != (1, SIDE, 2 * SIDE):
            raise ValueError(f"cogan trains on two domains side by side, 1×{SIDE}×{2 * SIDE} "
                             f"images (--data digits-negative or digits-edges), got "
                             f"{'×'.join(map(str, self.data_shape))}")
        c = self.config
        self.G = dcgan_init_(CoupledGenerator(self.z_dim, c["ngf"]))
        self.D = dcgan_init_(CoupledDiscriminator(c["ndf"]))
        # One Adam per player: a shared parameter appears once, its gradient is the sum.
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def split(self, x):
        """(domain 1's images, domain 2's) of side-by-side samples."""
        return x[:, :, :, :SIDE], x[:, :, :, SIDE:]

    def generate(self, z, y=None):
        """G1(z) | G2(z): each pair side by side, the layout of the data."""
        return F.cat(list(self.G(z)), dim=3)

    def train_step(self, x, y=None):
        n = x.shape[0]
        x1, x2 = self.split(x)
        # 1. D1 and D2: each domain's real batch → 1, its generator's fakes → 0.
        f1, f2 = (f.detach() for f in self.G(self.sample_z(n)))
        r1, r2 = self.D(x1, x2)
        q1, q2 = self.D(f1, f2)
        loss_D1, loss_D2 = losses.d_loss_gan(r1, q1), losses.d_loss_gan(r2, q2)
        logs = self.update("D", loss_D1 + loss_D2)
        # 2. G1 and G2, the same fresh z for both: each makes its updated D call its fakes real.
        q1, q2 = self.D(*self.G(self.sample_z(n)))
        loss_G1, loss_G2 = losses.g_loss_nonsaturating(q1), losses.g_loss_nonsaturating(q2)
        return {**logs, **self.update("G", loss_G1 + loss_G2),
                "loss_D1": loss_D1.data, "loss_D2": loss_D2.data,
                "loss_G1": loss_G1.data, "loss_G2": loss_G2.data}
