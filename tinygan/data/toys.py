"""2-D toy distributions: where mode collapse can be seen and counted.

    ring8      8 Gaussians, centres evenly spaced on a circle of radius 2, std 0.02
               (the unrolled-GAN benchmark, Metz et al. 2017)
    grid25     25 Gaussians on a 5×5 grid, centres at {-4, -2, 0, 2, 4}², std 0.05
               (PacGAN / VEEGAN)
    swissroll  a noisy 2-D Swiss roll, t ∈ [1.5π, 4.5π], (t cos t, t sin t) / 7 ≈ [-2, 2]²

Samples are float32 (N, 2), not rescaled (they are points, not pixels). The mixtures carry
their `mode_centers` and `mode_std`, which the mode-coverage metric needs, and the index of
the Gaussian each point came from as its label. The same (n, seed) gives the same points.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset

DEFAULT_N = 100_000


def ring_centers(k: int = 8, radius: float = 2.0) -> np.ndarray:
    angle = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def grid_centers(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    coords = spacing * (np.arange(side) - (side - 1) / 2)        # 5, 2 → -4, -2, 0, 2, 4
    gx, gy = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def mixture(name: str, centers: np.ndarray, std: float, n: int, seed: int) -> Dataset:
    """n points from the equal-weight Gaussian mixture N(centers[k], std² I)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(len(centers), size=n)
    x = centers[k] + std * rng.standard_normal((n, 2))
    return Dataset(name, x.astype(np.float32), labels=k, num_classes=len(centers),
                   mode_centers=centers, mode_std=std, source="generated")


def ring8(n: int = DEFAULT_N, seed: int = 0) -> Dataset:
    return mixture("ring8", ring_centers(8, 2.0), 0.02, n, seed)


def grid25(n: int = DEFAULT_N, seed: int = 0) -> Dataset:
    return mixture("grid25", grid_centers(5, 2.0), 0.05, n, seed)


def swissroll(n: int = DEFAULT_N, seed: int = 0, noise: float = 0.25) -> Dataset:
    """Points along the spiral r = t (t from 1.5π to 4.5π), jittered by `noise`, scaled by 1/7."""
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + noise * rng.standard_normal((n, 2))
    return Dataset("swissroll", (x / 7.0).astype(np.float32), source="generated")


TOYS = {"ring8": ring8, "grid25": grid25, "swissroll": swissroll}
