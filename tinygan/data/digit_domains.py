"""Second domains made from the shipped digits, for the variants that translate or pair domains.

CoGAN, pix2pix, CycleGAN and SRGAN need two kinds of image. With no download allowed, tinygan
makes the second kind from the 5,000 shipped MNIST digits by a fixed, documented transform:

    negative     255 − v                       (CoGAN's digits ↔ negatives)
    thicken      grey dilation by a (2r+1)² box (CycleGAN's digits ↔ thick digits)
    outline      thicken(v, 1) − v, a line drawing (CoGAN's digits ↔ edges, pix2pix's edges → digits)
    downscale    mean of each f×f block         (SRGAN's 8×8 inputs of 32×32 digits)

Every function takes and returns uint8 images (N, 1, H, W), the way a `Dataset` stores them, and
is deterministic: the same digits always give the same second domain.  `halves` and `held_out`
split the digits so that no pair is ever seen (each domain from its own half) and a test set is
never trained on.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def _check(u8: np.ndarray) -> np.ndarray:
    if not (isinstance(u8, np.ndarray) and u8.dtype == np.uint8 and u8.ndim == 4):
        got = f"{u8.dtype} {u8.shape}" if isinstance(u8, np.ndarray) else type(u8).__name__
        raise TypeError(f"expected uint8 images (N, C, H, W), got {got}")
    return u8


def negative(u8: np.ndarray) -> np.ndarray:
    """White strokes on black become black strokes on white."""
    return 255 - _check(u8)


def thicken(u8: np.ndarray, radius: int = 1) -> np.ndarray:
    """Each pixel becomes the brightest within `radius` of it: strokes grow 2·radius wider."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    side = 2 * radius + 1
    return ndimage.grey_dilation(_check(u8), size=(1, 1, side, side), mode="constant")


def outline(u8: np.ndarray) -> np.ndarray:
    """A line drawing of each digit: the one-pixel rim just outside its strokes.

    The rim is what a 3×3 dilation adds, thicken(v) − v, so its brightness is how much brighter
    the nearest stroke pixel is.  Not a Sobel magnitude, the usual edge map of photographs: on
    MNIST's 2–3 pixel strokes a 3×3 Sobel filter reaches across the whole stroke and across
    the gaps between strokes, and its map is a filled blob, not a drawing.
    """
    return thicken(u8, 1) - u8


def downscale(u8: np.ndarray, factor: int = 4) -> np.ndarray:
    """Each factor×factor block averaged to one pixel (what a camera's larger pixels would see)."""
    n, c, h, w = _check(u8).shape
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"factor {factor} must divide the image size {h}×{w}")
    blocks = u8.reshape(n, c, h // factor, factor, w // factor, factor).astype(np.float32)
    return np.round(blocks.mean(axis=(3, 5))).astype(np.uint8)


def pad_to(u8: np.ndarray, size: int) -> np.ndarray:
    """Black borders around each image up to size×size (28×28 digits → 32×32, a power of 2)."""
    n, c, h, w = _check(u8).shape
    if h > size or w > size:
        raise ValueError(f"images {h}×{w} are larger than {size}×{size}")
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((n, c, size, size), np.uint8)
    out[:, :, top:top + h, left:left + w] = u8
    return out


def held_out(n: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) of n samples: n_test drawn by `seed`, both sorted."""
    if not 0 <= n_test <= n:
        raise ValueError(f"cannot hold out {n_test} of {n} samples")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def halves(indices: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`indices` dealt into two disjoint halves by `seed` (domain A's digits, domain B's)."""
    perm = np.random.default_rng(seed).permutation(np.asarray(indices))
    mid = len(perm) // 2
    return np.sort(perm[:mid]), np.sort(perm[mid:])


__all__ = ["negative", "outline", "thicken", "downscale", "pad_to", "held_out", "halves"]
