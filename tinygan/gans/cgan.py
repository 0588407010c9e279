"""`cgan` — Mirza & Osindero 2014, Conditional Generative Adversarial Nets.

Both players see the class label y: G(z, y) and D(x, y).  D must now reject a real-looking
digit with the wrong label, so G has to draw the digit it is asked for.

    G(z, y)   the one-hot y concatenated to z (MLP nets, as in the paper; with
              `arch="dcgan"` to G's 1×1 input)
    D(x, y)   the one-hot y concatenated to the flattened image (`arch="dcgan"`: as 10
              constant feature maps beside the image channels), giving hidden features
              φ(x, y) and the logit  w·φ + b  — the paper's D — plus, with `projection`
              (the default), the projection term  ⟨e_y, φ⟩  of Miyato & Koyama 2018 (one
              learned vector e_k per class; for conv nets φ is summed over space first).

Why the projection: with the label as 10 of D's 794 inputs, D learns "is this a digit?"
well before "is this the digit labelled y?", and G, which only follows D, learns class
control late.  The inner product puts the label at D's output, where a mismatch moves the
logit directly.  (The optimal logit is log q(x|y)/p(x|y) = log q(x)/p(x) + log q(y|x)/p(y|x),
data q, model p; with both class posteriors log-linear in φ, the second term is ⟨e_y, φ⟩ up
to a y-free part — Miyato & Koyama's derivation.)  Both players are still conditioned, as
Mirza & Osindero asked; `--set projection=false` gives the paper's D alone.

Measured on the 5,000 shipped digits (class agreement: the shipped classifier reads the
asked-for class, 2,000 samples, classes 0..9 in turn; `tinygan eval`):
    paper's D, 2,000 steps (the old default)      24 %  (seed 0)
    projection, 2,000 steps                       63 %, 78 %  (seeds 0, 1; 1,000 samples)
    paper's D, 6,000 steps                        92.2 %, FD 47.7  (seed 0)
    projection, 6,000 steps (the default)         96.5 / 95.5 / 95.0 %, FD 30.4 / 32.6 / 37.9
                                                  (seeds 0 / 1 / 2)
so most of the gap was training length, and the projection gets there sooner and with
better digits.  `python -m bench.quality --only cgan --seeds 3` reproduces the last row
(on a quiet machine: 95.5 % (94.3–96.5), FD 32.1).

On the 2-D toys (ring8, grid25) the label is the index of the Gaussian a point came from
(the toy datasets carry it), and both players are small ReLU MLPs.

Accepts the tricks of Salimans et al. 2016 as options (see tricks.py): feature_matching,
minibatch_disc, historical_avg, virtual_bn, label_smoothing (real target; 0.9 = one-sided).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..backend import get_array_module
from . import losses, tricks
from .base import Variant
from .registry import register


def one_hot(y: Tensor, num_classes: int, dtype) -> Tensor:
    xp = get_array_module(y.data)
    return Tensor(xp.eye(num_classes, dtype=dtype)[y.data.astype(int)])


class ConditionalGenerator(nn.Module):
    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        self.net, self.num_classes = net, num_classes

    def forward(self, z, y):
        return self.net(F.cat([z, one_hot(y, self.num_classes, z.dtype)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y): the one-hot label joins the input (Mirza & Osindero) and, with `projection`,
    also the output, as ⟨e_y, φ(x, y)⟩ added to the logit (Miyato & Koyama 2018)."""

    def __init__(self, net: nn.Module, num_classes: int, conv: bool, projection: bool = False,
                 feature_dim: int | None = None):
        super().__init__()
        self.net, self.num_classes, self.conv = net, num_classes, conv
        self.embed = None
        if projection:
            # One vector e_k per class; small init (as a Linear's) so the projection term
            # starts on the scale of the unconditional logit rather than swamping it.
            self.embed = nn.Embedding(num_classes, feature_dim)
            nn.init.uniform_(self.embed.weight, -feature_dim ** -0.5, feature_dim ** -0.5)

    def joint_input(self, x, y):
        h = one_hot(y, self.num_classes, x.dtype)
        if self.conv:     # the label as constant feature maps beside the image channels
            h = h.reshape(x.shape[0], -1, 1, 1).expand(x.shape[0], self.num_classes, *x.shape[2:])
            return F.cat([x, h], dim=1)
        return F.cat([F.flatten(x, 1), h], dim=1)

    def features(self, x, y):
        """D's last hidden layer on (x, y) — what feature matching compares."""
        return self.net.features(self.joint_input(x, y))

    def forward(self, x, y):
        h = self.features(x, y)
        logit = self.net.head(h).reshape(x.shape[0])
        if self.embed is None:
            return logit
        phi = h.sum(dim=(2, 3)) if self.conv else h        # conv: global sum pooling, as SNGAN
        return logit + (self.embed(Tensor(y.data.astype(np.int64))) * phi).sum(dim=1)


@register
class CGAN(Variant):
    name = "cgan"
    paper = "Mirza & Osindero 2014, Conditional Generative Adversarial Nets"
    summary = "G(z, y) and D(x, y) with one-hot labels, BCE, Adam(2e-4, 0.5)"
    needs_labels = True
    # `tinygan train cgan` on digits: the MLP nets take ~15 ms a step on 2 idle cores (6,000
    # steps: ~1.5 min).  Class agreement passed 90 % at 4,000 steps (93.8 %, 90.5 %: seeds 0,
    # 1); 6,000 leaves a margin (95.0-96.5 %, seeds 0-2).
    default_steps = {"image": 6000}
    defaults = dict(z_dim=100, arch="mlp", ngf=64, ndf=64, lr=2e-4, beta1=0.5, beta2=0.999,
                    toy_hidden=128, projection=True, **tricks.OPTIONS)
    limits = tricks.LIMITS

    def build(self):
        c, k = self.config, self.num_classes
        G, D = self.make_nets(c["arch"], g_extra=k, d_extra=k, toy_hidden=c["toy_hidden"])
        feature_dim = D.head.weight.shape[1]     # Linear (1, d) or the conv head (1, C, 4, 4)
        ref = None
        if c["virtual_bn"]:   # G's net sees [z, one-hot y]: the reference batch cycles the classes
            n_ref = int(c["vbn_ref_size"])
            z_ref = np.random.default_rng(4321).standard_normal((n_ref, self.z_dim))
            ref = np.concatenate([z_ref, np.eye(k)[np.arange(n_ref) % k]], axis=1).astype(np.float32)
        G, D = self.apply_tricks(G, D, g_ref_input=ref)
        self.G = ConditionalGenerator(G, k)
        self.D = ConditionalDiscriminator(D, k, conv=not self.is_toy and c["arch"] == "dcgan",
                                          projection=c["projection"], feature_dim=feature_dim)
        self.opt_G, self.opt_D = self.adam(self.G), self.adam(self.D)

    def random_labels(self, n: int) -> Tensor:
        from ..backend import get_rng
        rng = get_rng(self.device)
        return Tensor(self.per_sample(n, lambda m: rng.integers(0, self.num_classes, m)))

    def train_step(self, x, y=None):
        if y is None:
            raise ValueError("cgan.train_step needs the labels y of the real batch")
        n, x = x.shape[0], self.to_net(x)
        # 1. D: (real x, its label) → 1, (G(z, y'), y') → 0.
        y_fake = self.random_labels(n)
        fake = self.G(self.sample_z(n), y_fake).detach()
        loss_D = losses.d_loss_gan(self.D(x, y), self.D(fake, y_fake), self.config["label_smoothing"])
        logs = self.update("D", loss_D)
        # 2. G: draw the asked-for class well enough to pass the updated D.  (With feature
        #    matching the real batch keeps its labels and the fakes are drawn for those labels.)
        y_fake = y if self.config["feature_matching"] else self.random_labels(n)
        loss_G = self.generator_loss((x, y), (self.G(self.sample_z(n), y_fake), y_fake),
                                     losses.g_loss_nonsaturating)
        return {**logs, **self.update("G", loss_G)}
