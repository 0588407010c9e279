"""The digit metrics behave as they should on inputs whose answer is known.

Real held-out digits (the 30 last of each class, which the shipped classifier never trained
on), 300 digits of one class, and 300 images of uniform noise, each scored by FD, the IS
analogue, the class histogram and class agreement.  The ranges, with the values measured
when they were set (300 samples; `python -m pytest tests/test_digit_metrics.py`):

    held-out real    FD 21.8 (vs all 5,000)   IS 9.28 (real 5,000: 9.49)   10 classes   agreement 0.967
    one class (3s)   FD 1260                  IS 1.09                      1 class      agreement 0.99
    uniform noise    FD 2342                  IS 1.00                      1 class      agreement 0.10
    held-out, labels shuffled                                                           agreement 0.10
"""
import numpy as np
import pytest

from tinygan import data
from tinygan.metrics import (class_agreement, evaluate_samples, frechet_distance, image_metrics,
                             real_digit_features)

N_PER_CLASS = 30


@pytest.fixture(scope="module")
def digits():
    return data.load("mnist-subset")


@pytest.fixture(scope="module")
def held_out(digits):
    """(images, labels, mask): the last 30 digits of each class, outside the classifier's
    training set (it held out the last 50 of each)."""
    mask = np.zeros(len(digits.labels), bool)
    for c in range(10):
        mask[np.flatnonzero(digits.labels == c)[-N_PER_CLASS:]] = True
    return digits.x[mask], digits.labels[mask], mask


def test_real_held_out_digits_score_like_real_data(held_out):
    x, y, mask = held_out
    m = image_metrics(x, labels=y)
    real_is = m["real_reference"]["inception_score"]
    assert m["frechet_distance"] < 50                 # measured 21.8; one class: > 1000
    assert abs(m["inception_score"] - real_is) < 0.6  # 9.28 against 9.49
    assert m["classes_present"] == 10 and sum(m["class_histogram"]) == len(x)
    assert min(m["class_histogram"]) >= 0.6 * N_PER_CLASS
    assert m["class_agreement"] >= 0.93               # the classifier's held-out accuracy
    # The same features, disjoint sets: held-out against the classifier's training digits.
    _, _, feats = real_digit_features()
    assert frechet_distance(feats[mask], feats[~mask]) < 50


def test_one_class_has_is_near_one_and_one_bin(digits):
    threes = digits.x[digits.labels == 3][:300]
    m = image_metrics(threes, labels=np.full(len(threes), 3))
    assert m["inception_score"] < 1.3                 # measured 1.09: p(y|x) ≈ p(y)
    assert max(m["class_histogram"]) >= 0.95 * len(threes) and m["classes_present"] == 1
    assert m["frechet_distance"] > 500                # a tenth of the data's variety: far
    assert m["class_agreement"] >= 0.95
    per = m["class_agreement_per_class"]
    assert per[3] == m["class_agreement"] and all(p is None for k, p in enumerate(per) if k != 3)


def test_noise_is_far_and_agrees_at_chance(held_out):
    noise = np.random.default_rng(0).uniform(-1, 1, (300, 1, 28, 28)).astype(np.float32)
    m = image_metrics(noise, labels=np.arange(300) % 10)
    real = image_metrics(held_out[0])
    assert m["frechet_distance"] > 1000 and m["frechet_distance"] > 20 * real["frechet_distance"]
    assert m["inception_score"] < 1.5 and m["classes_present"] <= 2
    assert m["class_agreement"] <= 0.2                # asked 0..9 in turn, read as one class


def test_shuffled_labels_agree_at_chance(held_out):
    x, y, _ = held_out
    shuffled = np.random.default_rng(1).permutation(y)
    assert image_metrics(x, labels=shuffled)["class_agreement"] <= 0.2   # measured 0.10
    assert image_metrics(x, labels=y)["class_agreement"] >= 0.93


def test_class_agreement_counts_and_checks():
    out = class_agreement(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 4)
    assert out["class_agreement"] == 0.75
    assert out["class_agreement_per_class"] == [1.0, 1.0, 0.5, None]
    with pytest.raises(ValueError, match="equal"):
        class_agreement(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(ValueError, match="labels for"):
        evaluate_samples(np.zeros((3, 1, 28, 28), np.float32), labels=np.zeros(2))


def test_toy_class_agreement_is_the_nearest_mode():
    ring = data.load("ring8")
    labels = np.arange(80) % 8
    at_centres = ring.mode_centers[labels] + 0.01
    assert evaluate_samples(at_centres, ring, labels=labels)["class_agreement"] == 1.0
    wrong = evaluate_samples(at_centres, ring, labels=(labels + 1) % 8)
    assert wrong["class_agreement"] == 0.0 and wrong["modes_covered"] == 8
