"""Sample-quality metrics.

2-D toys (the protocol of the Unrolled-GAN / VEEGAN / PacGAN papers): a sample is
*high quality* when it lies within 3 standard deviations of its nearest mode centre; a mode
is *covered* when it receives at least 20 % of the high-quality samples a perfect generator
would put there (PacGAN's 20-of-100 rule for grid25 at 2,500 samples).

MNIST-like images: a small CNN trained with tinygan itself (`scripts/train_classifier.py`,
weights shipped in the package) is the feature extractor, as Inception is for FID/IS:
  - Fréchet distance between Gaussians fitted to its penultimate features of real and
    generated digits (lower is better);
  - an Inception-Score analogue exp(E_x KL(p(y|x) ‖ p(y))) over its 10 classes (10 is best);
  - the histogram of predicted classes (mode collapse shows as missing digits).
"""
from __future__ import annotations

import numpy as np
from scipy import linalg


def toy_mode_metrics(samples: np.ndarray, centers: np.ndarray, std: float,
                     coverage_fraction: float = 0.2) -> dict:
    samples, centers = np.asarray(samples, np.float64), np.asarray(centers, np.float64)
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)   # (n, K)
    nearest, dist = d.argmin(1), d.min(1)
    high_quality = dist < 3 * std
    per_mode = np.bincount(nearest[high_quality], minlength=len(centers))
    needed = coverage_fraction * len(samples) / len(centers)
    return {"modes_covered": int((per_mode >= needed).sum()), "modes_total": int(len(centers)),
            "high_quality_pct": round(100.0 * float(high_quality.mean()), 2),
            "samples_per_mode": per_mode.tolist(), "n_samples": int(len(samples))}


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """‖μa - μb‖² + Tr(Σa + Σb - 2 (Σa Σb)^½) between Gaussian fits of two feature sets."""
    mu_a, mu_b = feat_a.mean(0), feat_b.mean(0)
    cov_a, cov_b = np.cov(feat_a, rowvar=False), np.cov(feat_b, rowvar=False)
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():          # near-singular product: nudge the diagonal
        off = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + off) @ (cov_b + off))
    covmean = np.real(covmean)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) from class probabilities (n, K)."""
    p_y = probs.mean(0, keepdims=True)
    kl = (probs * (np.log(probs + eps) - np.log(p_y + eps))).sum(1)
    return float(np.exp(kl.mean()))
