"""Sample-quality metrics.

2-D toys (the protocol of the Unrolled-GAN / VEEGAN / PacGAN papers): a sample is
*high quality* when it lies within 3 standard deviations of its nearest mode centre; a mode
is *covered* when it receives at least 20 % of the high-quality samples a perfect generator
would put there (PacGAN's 20-of-100 rule for grid25 at 2,500 samples).  Also reported:
*modes reached* (the same 20 % rule on all samples by nearest centre, no quality cut), the
*modes with a high-quality sample* (at least one: the count PacGAN's published code reports as
its "mode coverage", and VEEGAN's rule) and the median distance to the nearest centre in
units of std.  The three counts differ most where samples are spread thin: 15 % high quality
over 25 modes is 15 a mode at 2,500 samples, under the 20 that *covered* asks for, while
nearly every mode has one.

MNIST-like images: a small CNN trained with tinygan itself (`scripts/train_classifier.py`,
weights shipped in the package) is the feature extractor, as Inception is for FID/IS:
  - Fréchet distance between Gaussians fitted to its penultimate features of real and
    generated digits (lower is better);
  - an Inception-Score analogue exp(E_x KL(p(y|x) ‖ p(y))) over its 10 classes (10 is best);
  - the histogram of predicted classes (mode collapse shows as missing digits);
  - for class-conditional generators, *class agreement*: the fraction of samples the
    classifier reads as the class they were asked for (chance: 1/10).  On the 2-D toys the
    "classifier" is the nearest mode centre, the label being the index of a point's Gaussian.

Two domains (CoGAN, Liu & Tuzel 2016 §5): *pixel agreement*, the share of pixels where G2(z)
agrees with T(G1(z)), T the transform that made domain 2 (negative, outline), both images
binarised at mid-grey; beside it the same figure for unrelated pairs, G2(z) against T(G1(z'))
for another z' — what two uncoupled GANs would score, mostly from the shared background.
As the background is most of a digit's pixels (unrelated real digits agree on 85-87 % of
them), also the *ink IoU*: of the pixels that are strokes (not background) in either image,
the share that are strokes in both (unrelated real digits: about 0.2).
"""
from __future__ import annotations

import warnings

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
    # Without the 3-std cut: which modes does the generator aim at at all?  A short run that
    # spreads over every mode but is not yet precise to 3 std (0.06 on ring8) covers none by
    # the strict count; this count and the median distance tell the two failures apart.
    per_mode_any = np.bincount(nearest, minlength=len(centers))
    return {"modes_covered": int((per_mode >= needed).sum()), "modes_total": int(len(centers)),
            "high_quality_pct": round(100.0 * float(high_quality.mean()), 2),
            "modes_reached": int((per_mode_any >= needed).sum()),
            "modes_with_hq_sample": int((per_mode > 0).sum()),
            "median_distance_in_std": round(float(np.median(dist)) / std, 2),
            "samples_per_mode": per_mode.tolist(), "n_samples": int(len(samples))}


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """‖μa - μb‖² + Tr(Σa + Σb - 2 (Σa Σb)^½) between Gaussian fits of two feature sets."""
    mu_a, mu_b = feat_a.mean(0), feat_b.mean(0)
    cov_a, cov_b = np.cov(feat_a, rowvar=False), np.cov(feat_b, rowvar=False)
    with warnings.catch_warnings():     # dead ReLU features make Σ singular: handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():          # near-singular product: nudge the diagonal
        off = np.eye(len(cov_a)) * 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            covmean = linalg.sqrtm((cov_a + off) @ (cov_b + off))
    covmean = np.real(covmean)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def inception_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """exp(E_x KL(p(y|x) ‖ p(y))) from class probabilities (n, K)."""
    p_y = probs.mean(0, keepdims=True)
    kl = (probs * (np.log(probs + eps) - np.log(p_y + eps))).sum(1)
    return float(np.exp(kl.mean()))


def class_histogram(probs: np.ndarray, num_classes: int = 10) -> list[int]:
    return np.bincount(probs.argmax(1), minlength=num_classes).tolist()


def class_agreement(predicted: np.ndarray, asked: np.ndarray, num_classes: int) -> dict:
    """How often the predicted class equals the asked-for one: overall, and per asked class
    (a class G ignores shows as one low entry even when the overall figure looks fine)."""
    predicted, asked = np.asarray(predicted, np.int64), np.asarray(asked, np.int64)
    if predicted.shape != asked.shape or predicted.ndim != 1 or not len(asked):
        raise ValueError(f"class_agreement: predictions {predicted.shape} and asked-for labels "
                         f"{asked.shape} must be two equal, non-empty 1-D arrays")
    hit = predicted == asked
    per_class = [round(float(hit[asked == k].mean()), 4) if (asked == k).any() else None
                 for k in range(num_classes)]
    return {"class_agreement": round(float(hit.mean()), 4), "class_agreement_per_class": per_class}


_REAL_STATS: dict = {}


def real_digit_features(device: str = "cpu"):
    """Classifier features of the 5,000 shipped real digits: the fixed reference of the
    Fréchet distance, so scores stay comparable across runs, machines and versions."""
    if device not in _REAL_STATS:
        from . import data
        from .classifier import classify, load_classifier
        net = load_classifier(device=device)
        probs, feats = classify(net, data.load("mnist-subset").x)
        _REAL_STATS[device] = (net, probs, feats)
    return _REAL_STATS[device]


def image_metrics(images: np.ndarray, device: str = "cpu", labels: np.ndarray | None = None) -> dict:
    """FD, IS analogue and class histogram of digits (n, 1, 28, 28) in [-1, 1], with the same
    numbers for real digits alongside as the yardstick; with the asked-for `labels` of a
    conditional generator, also its class agreement."""
    from .classifier import classify
    net, real_probs, real_feats = real_digit_features(device)
    probs, feats = classify(net, np.clip(images, -1, 1))
    agreement = {} if labels is None else class_agreement(probs.argmax(1), labels, probs.shape[1])
    return {**agreement, "frechet_distance": round(frechet_distance(feats, real_feats), 3),
            "inception_score": round(inception_score(probs), 3),
            "class_histogram": class_histogram(probs),
            "classes_present": int((np.bincount(probs.argmax(1), minlength=10) >= 0.01 * len(probs)).sum()),
            "n_samples": int(len(images)),
            # The yardstick: 2,500 real digits (every other one; the file is sorted by class)
            # against all 5,000 — what a perfect generator would score at this sample size.
            "real_reference": {"frechet_distance_half_vs_all": round(frechet_distance(real_feats[::2], real_feats), 3),
                               "inception_score": round(inception_score(real_probs), 3)}}


def evaluate_samples(samples: np.ndarray, dataset=None, device: str = "cpu",
                     labels: np.ndarray | None = None) -> dict:
    """The metrics that apply to `samples` of `dataset` (a tinygan.data.Dataset or None);
    `labels`: the classes a conditional generator was asked for (adds class agreement)."""
    if labels is not None and len(labels) != len(samples):
        raise ValueError(f"{len(labels)} labels for {len(samples)} samples")
    if samples.ndim == 2:
        if dataset is None or dataset.mode_centers is None:
            raise ValueError("mode metrics need a mixture dataset (ring8 or grid25) with mode centres")
        out = toy_mode_metrics(samples, dataset.mode_centers, dataset.mode_std)
        if labels is not None:       # the label of a toy point is the index of its Gaussian
            d = np.linalg.norm(samples[:, None, :] - dataset.mode_centers[None], axis=-1)
            out.update(class_agreement(d.argmin(1), labels, len(dataset.mode_centers)))
        return out
    if samples.shape[1:] == (1, 28, 28):
        digits = dataset is None or dataset.name.startswith("mnist")
        # Class agreement means something only where the classifier's classes are the data's.
        out = image_metrics(samples, device=device, labels=labels if digits else None)
        if dataset is not None and dataset.name != "mnist" and not dataset.name.startswith("mnist"):
            out["note"] = (f"features from the MNIST classifier, applied to {dataset.name}: "
                           f"compare runs with each other, not with MNIST figures")
        return out
    raise ValueError(f"no metric for samples of shape {samples.shape[1:]}: the classifier metrics "
                     f"need 28×28 grey digits, the mode metrics 2-D points")


def pixel_agreement(a: np.ndarray, b: np.ndarray, threshold: float = 0.0) -> float:
    """The share of pixels on the same side of `threshold` in a and b (images in [-1, 1]:
    0 is mid-grey), over all pixels of all pairs."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or not a.size:
        raise ValueError(f"pixel_agreement: two equal, non-empty image batches needed, got "
                         f"{a.shape} and {b.shape}")
    return float(((a > threshold) == (b > threshold)).mean())


def ink_iou(a: np.ndarray, b: np.ndarray, background: bool, threshold: float = 0.0) -> float:
    """Of the pixels that are ink (binarised at `threshold`, not equal to `background`: True
    for a bright background) in a or in b, the share that are ink in both."""
    ink_a, ink_b = (np.asarray(a) > threshold) != background, (np.asarray(b) > threshold) != background
    union = (ink_a | ink_b).sum()
    return float((ink_a & ink_b).sum() / union) if union else 1.0


def coupled_metrics(first: np.ndarray, second: np.ndarray, transform) -> dict:
    """CoGAN's score of pairs (G1(z), G2(z)) in [-1, 1]: agreement of G2(z) with T(G1(z)), T a
    uint8 → uint8 transform (tinygan.data.digit_domains), pixel by pixel and by ink IoU, and
    the same of unrelated pairs (G1's samples rolled by one) as the yardstick."""
    from .data.dataset import to_float
    u8 = np.round((np.clip(first, -1, 1) + 1) * 127.5).astype(np.uint8)
    target = to_float(transform(u8))
    unrelated = np.roll(target, 1, axis=0)
    background = bool(transform(np.zeros((1, 1, 1, 1), np.uint8))[0, 0, 0, 0] > 127)
    return {"pixel_agreement": round(pixel_agreement(second, target), 4),
            "pixel_agreement_unpaired": round(pixel_agreement(second, unrelated), 4),
            "ink_iou": round(ink_iou(second, target, background), 4),
            "ink_iou_unpaired": round(ink_iou(second, unrelated, background), 4),
            "transform": transform.__name__, "n_pairs": int(len(first))}


def evaluate_checkpoint(path: str, n: int = 2000, seed: int = 0, device: str = "cpu") -> dict:
    """`tinygan eval`: sample n points/images from a checkpoint and score them; a translator
    (pix2pix, cyclegan, srgan) is scored by its own `evaluate` on its held-out pairs instead."""
    from . import backend, data
    from .autograd import Tensor
    from .checkpoint import build_from_checkpoint
    if n < 2:
        raise ValueError(f"--n must be >= 2, got {n}")
    variant, meta, _ = build_from_checkpoint(path, device=device)
    head = {"variant": meta["variant"], "data": meta["data"], "step": meta.get("step")}
    if data.is_two_domain(meta["data"]):       # translators: their own metrics (Variant.evaluate)
        dataset = data.load(meta["data"], download=False, **data.data_options(variant.config))
        own = variant.evaluate(dataset)
        if own is not None:
            return {**head, **own}
    backend.manual_seed(seed)
    labels = asked_labels(variant, n)
    samples = variant.sample(n, y=None if labels is None else Tensor(backend.to_device(labels, device)))
    if meta["data"] in data.TWO_DOMAINS:             # pairs side by side: G1(z) | G2(z)
        from .data.two_domains import split_pair, transform_of
        return {"variant": meta["variant"], "data": meta["data"], "step": meta.get("step"),
                **coupled_metrics(*split_pair(samples), transform_of(meta["data"]))}
    known = variant.is_toy or meta["data"].startswith("mnist")   # data the metrics understand
    known = known and not data.is_two_domain(meta["data"])
    dataset = data.load(meta["data"], download=False) if known else None
    result = dict(head)
    result.update(evaluate_samples(samples, dataset, device=device,
                                   labels=labels if known else None))
    if hasattr(variant, "classifier_report"):   # a variant whose product is a classifier (sgan)
        dataset = dataset or data.load(meta["data"], download=False)
        result.update(variant.classifier_report(dataset, steps=int(meta["step"]), seed=meta["seed"]))
    return result


def asked_labels(variant, n: int) -> np.ndarray | None:
    """The classes a conditional variant is asked for when sampling n: 0, 1, ..., K-1, 0, 1, ...
    (equal counts; one class per column of a K-wide grid).  None for unconditional variants."""
    if not variant.needs_labels:
        return None
    return np.arange(n, dtype=np.int64) % variant.num_classes
