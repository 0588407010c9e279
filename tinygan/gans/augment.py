"""DiffAugment (Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient
GAN Training") — the fix for a discriminator that memorises a small folder.

With a few hundred images D soon tells every real image from every fake by heart; its loss
goes to zero and G's gradient carries nothing.  Augmenting only the reals would teach G to draw
augmented images, so DiffAugment applies the SAME random transforms T to the reals and to the
fakes, in both players' steps:

    D:  L(D(T(x)), 1) + L(D(T(G(z))), 0)          G:  L(D(T(G(z))), 1)

and since G's step back-propagates through T(G(z)), every T must be differentiable.  The
paper's three transforms, each drawn independently per image (images in [-1, 1]):

    color        brightness + U(-0.5, 0.5);  saturation: (x - channel mean)·U(0, 2) + mean;
                 contrast: (x - image mean)·U(0.5, 1.5) + mean
    translation  a shift of up to 1/8 of the side each way, zero-filled (functional.translate)
    cutout       a square of half the side, anywhere (it may hang off the edge), set to 0

The random numbers come from the library's CPU generator, so a resumed run draws the same
augmentations as an unbroken one.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import backend, distributed
from .. import functional as F
from ..autograd import Tensor

TRANSFORMS = ("color", "translation", "cutout")
# The policies an option may name: "none", or any of the transforms in this order, e.g.
# "color,translation,cutout" (the paper's choice for 100-shot data).
POLICIES = ("none",) + tuple(",".join(names) for r in (1, 2, 3)
                             for names in itertools.combinations(TRANSFORMS, r))


def _uniform(n: int, low: float, high: float, like: Tensor) -> Tensor:
    """n draws of U(low, high) shaped (n, 1, 1, 1), on x's device and in its dtype."""
    rng = backend.get_rng("cpu")
    u = distributed.per_sample(n, lambda m: rng.uniform(low, high, size=(m, 1, 1, 1)))
    u = u.astype(like.dtype)
    return Tensor(backend.to_device(u, like.device))


def color(x: Tensor) -> Tensor:
    n = x.shape[0]
    x = x + _uniform(n, -0.5, 0.5, x)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _uniform(n, 0.0, 2.0, x) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(n, 0.5, 1.5, x) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rng = backend.get_rng("cpu")
    dy, dx = distributed.per_sample(n, lambda m: (rng.integers(-sy, sy + 1, m),
                                                  rng.integers(-sx, sx + 1, m)))
    return F.translate(x, dy, dx)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rng = backend.get_rng("cpu")
    cy, cx = distributed.per_sample(n, lambda m: (     # the square's centre, as the paper draws it
        rng.integers(0, h + (1 - ch % 2), m), rng.integers(0, w + (1 - cw % 2), m)))
    mask = np.ones((n, 1, h, w), dtype=x.dtype)
    for i in range(n):
        mask[i, :, max(cy[i] - ch // 2, 0):max(cy[i] - ch // 2 + ch, 0),
             max(cx[i] - cw // 2, 0):max(cx[i] - cw // 2 + cw, 0)] = 0
    return x * Tensor(backend.to_device(mask, x.device))


def diff_augment(x: Tensor, policy: str) -> Tensor:
    """x with the transforms of `policy` ("none" or e.g. "color,translation") applied, each
    with fresh random draws per image; differentiable in x."""
    if policy not in POLICIES:
        raise ValueError(f"diff_augment: unknown policy {policy!r}; one of {', '.join(POLICIES)}")
    if policy == "none":
        return x
    for name in policy.split(","):
        x = {"color": color, "translation": translation, "cutout": cutout}[name](x)
    return x
