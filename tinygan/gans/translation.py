"""What the image-to-image variants (pix2pix, cyclegan, srgan) share: splitting a two-domain
batch, translating a dataset in batches, their metrics and their sample grids.

Metrics, on images in [-1, 1]:
    PSNR   10·log10(peak² / MSE) per image, averaged over images, with the peak-to-peak range 2
           of [-1, 1] — the same number as on [0, 255] pixels with peak 255
    L1     mean |output − target| on the [-1, 1] scale (pix2pix's reconstruction term)
    digit accuracy   how often the shipped MNIST classifier (tinygan/classifier.py) reads the
           digit's true label; 32×32 digits are cropped back to the classifier's 28×28 (the
           tasks pad 28×28 digits by 2 pixels each side)
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Tensor

PEAK = 2.0                      # max − min of the [-1, 1] pixel range


def split(x, channels: int):
    """A two-domain batch (N, 2C, H, W) → (A, B)."""
    return x[:, :channels], x[:, channels:]


def shrink(a: np.ndarray, scale: int) -> np.ndarray:
    """A's images as they are, when stored at B's size by repeating each pixel scale×scale."""
    return a if scale == 1 else a[..., ::scale, ::scale]


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """Mean over images of 10·log10(PEAK² / MSE) (dB); identical images count as 100 dB."""
    diff = np.asarray(output, np.float64) - np.asarray(target, np.float64)
    if diff.ndim < 2 or not len(diff):
        raise ValueError(f"psnr: expected a batch of images, got shape {diff.shape}")
    mse = (diff.reshape(len(diff), -1) ** 2).mean(1)
    per = 10 * np.log10(PEAK ** 2 / np.maximum(mse, PEAK ** 2 * 1e-10))
    return float(per.mean())


def l1(output: np.ndarray, target: np.ndarray) -> float:
    return float(np.abs(np.asarray(output, np.float64) - np.asarray(target, np.float64)).mean())


_CLASSIFIER: dict = {}


def digit_accuracy(images: np.ndarray, labels: np.ndarray, device: str = "cpu") -> float:
    """Fraction of grey digits (n, 1, 28|32, 28|32) in [-1, 1] the shipped classifier reads as
    `labels`."""
    from ..classifier import classify, load_classifier
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[2:] not in ((28, 28), (32, 32)):
        raise ValueError(f"digit_accuracy: expected grey 28×28 or 32×32 digits, got {images.shape}")
    if images.shape[2] == 32:
        images = images[:, :, 2:30, 2:30]
    if device not in _CLASSIFIER:
        _CLASSIFIER[device] = load_classifier(device=device)
    probs, _ = classify(_CLASSIFIER[device], np.clip(images, -1, 1))
    return float((probs.argmax(1) == np.asarray(labels)).mean())


def translate_all(variant, x: np.ndarray, direction: str = "AtoB", batch_size: int = 100):
    """`variant.translate` over x in batches (bounded memory), concatenated."""
    return np.concatenate([variant.translate(x[i:i + batch_size], direction)
                           for i in range(0, len(x), batch_size)])


def to_device(variant, x: np.ndarray) -> Tensor:
    return Tensor(backend.to_device(np.ascontiguousarray(x, np.float32), variant.device))


def held_out(dataset):
    """(the split to evaluate on, its name): the held-out split when there is one."""
    if getattr(dataset, "test", None) is not None:
        return dataset.test, "held-out"
    return dataset, "training (no held-out split)"


def triplets(variant, dataset, n: int = 16, direction: str = "AtoB") -> np.ndarray:
    """(3n, C, H, W): input | output | target of n held-out examples spread evenly over the
    split (the offline tasks' held-out digits are sorted by class: the first n would all be 0s)."""
    split_ds, _ = held_out(dataset)
    c = dataset.channels
    x = split_ds.x[np.linspace(0, len(split_ds) - 1, min(n, len(split_ds))).round().astype(int)]
    src, tgt = split(x, c) if direction == "AtoB" else split(x, c)[::-1]
    out = variant.translate(src, direction)
    if out.shape[2:] != src.shape[2:]:
        raise ValueError(f"triplets: outputs {out.shape} and inputs {src.shape} differ in size")
    return np.stack([src, out, tgt], axis=1).reshape(-1, *src.shape[1:])


def triplet_grid(variant, dataset, n: int = 16, per_row: int = 4, direction: str = "AtoB"):
    """(images, nrow): `triplets`, `per_row` triplets side by side in each row of the grid."""
    return triplets(variant, dataset, n, direction), 3 * per_row
