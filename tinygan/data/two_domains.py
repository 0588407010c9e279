"""Two domains of digits side by side, no pair ever seen: CoGAN's training data.

    digits-negative   left: a digit of half 1;  right: the negative of a digit of half 2
    digits-edges      left: a digit of half 1;  right: the outline of a digit of half 2

The 5,000 shipped digits are dealt into two disjoint halves (`digit_domains.halves`); domain 1
is half 1 as it is, domain 2 is T(half 2) with T = negative or outline.  Each sample is one
32×64 image, domain 1's 32×32 digit on the left and domain 2's on the right (28×28 digits
padded to 32×32 *before* T, so a negative's border is white like the rest of its background),
so the usual loader, shuffle and resume serve both domains at once and a grid of samples
shows the two domains side by side.  The two panels of a sample are different digits: half 2
is shuffled once more before it is placed beside half 1 (the file is sorted by class, and
two sorted halves would put a 3 next to a 3), so a model trained on these learns the two
marginals only — what CoGAN needs to show that it finds the correspondence itself.
"""
from __future__ import annotations

import numpy as np

from . import digit_domains as dd
from .dataset import Dataset
from .mnist import load_subset

SIZE = 32                                             # each domain's side, in pixels
TRANSFORMS = {"digits-negative": dd.negative, "digits-edges": dd.outline}


def transform_of(name: str):
    """T of the two-domain dataset `name` (uint8 images → uint8 images)."""
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"unknown two-domain dataset {name!r}; known: "
                         f"{', '.join(TRANSFORMS)}") from None


def domain_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(indices of domain 1's digits, of domain 2's): disjoint halves of range(n), the second
    in a shuffled order so that position i of each holds unrelated digits."""
    first, second = dd.halves(np.arange(n), seed=seed)
    return first, np.random.default_rng(seed + 1).permutation(second)


def load_two_domains(name: str, seed: int = 0) -> Dataset:
    """The dataset `name` (see the module docstring): uint8 (2,500, 1, 32, 64), no labels."""
    T = transform_of(name)
    digits = dd.pad_to(load_subset().data, SIZE)
    first, second = domain_halves(len(digits), seed)
    pairs = np.concatenate([digits[first], T(digits[second])], axis=3)
    return Dataset(name, pairs, source=f"shipped subset: half 1 | {T.__name__} of half 2")


def split_pair(images):
    """(domain 1, domain 2) of side-by-side samples (..., H, 2H): the left and right halves."""
    w = images.shape[-1] // 2
    return images[..., :w], images[..., w:]


__all__ = ["TRANSFORMS", "transform_of", "domain_halves", "load_two_domains", "split_pair"]
