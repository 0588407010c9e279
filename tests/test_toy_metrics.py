"""The 2-D toy metrics against counts made by hand on constructed samples.

The rule (tinygan/metrics.py): a sample is high quality within 3 std of its nearest centre; a
mode is covered when it holds at least 20 % of the n / K high-quality samples a perfect
generator would give it.  Each expected figure below is worked out in the comments, not by
calling the function under test.
"""
import math

import numpy as np
import pytest

from tinygan import data
from tinygan.metrics import evaluate_samples, toy_mode_metrics

RING = data.load("ring8", n=16)        # centres (2 cos(kπ/4), 2 sin(kπ/4)), std 0.02
GRID = data.load("grid25", n=16)       # centres {-4, -2, 0, 2, 4}², std 0.05


def test_the_toys_are_what_the_hand_counts_assume():
    assert RING.mode_std == 0.02 and GRID.mode_std == 0.05
    assert np.allclose(RING.mode_centers[2], [0, 2]) and len(RING.mode_centers) == 8
    assert len(GRID.mode_centers) == 25 and np.allclose(GRID.mode_centers.min(0), [-4, -4])


def test_every_sample_on_one_mode_covers_one_mode():
    # 800 samples, all on the centre (2, 0): every one within 3 std, 800 of them in mode 0,
    # where 0.2 * 800 / 8 = 20 are needed; the other seven modes get nothing.
    samples = np.tile([2.0, 0.0], (800, 1)) + 0.01 * np.random.default_rng(0).standard_normal((800, 2))
    r = toy_mode_metrics(samples, RING.mode_centers, RING.mode_std)
    # 0.01 noise: a sample is 3 std (0.06) away only past 6 of its own std: none of 800
    assert r["modes_covered"] == 1 and r["modes_reached"] == 1 and r["high_quality_pct"] == 100.0
    assert r["samples_per_mode"] == [800, 0, 0, 0, 0, 0, 0, 0] and r["modes_total"] == 8
    assert r["modes_with_hq_sample"] == 1


@pytest.mark.parametrize("toy", [RING, GRID], ids=["ring8", "grid25"])
def test_samples_exactly_on_every_centre_cover_every_mode(toy):
    # 40 samples on each centre: distance 0, all high quality; 40 >= 0.2 * 40 = 8 per mode
    k = len(toy.mode_centers)
    samples = np.repeat(toy.mode_centers, 40, axis=0)
    r = toy_mode_metrics(samples, toy.mode_centers, toy.mode_std)
    assert r["modes_covered"] == k and r["high_quality_pct"] == 100.0
    assert r["samples_per_mode"] == [40] * k and r["median_distance_in_std"] == 0.0


def test_the_3_std_line_and_the_20_percent_line():
    # 80 samples, needed = 0.2 * 80 / 8 = 2 per mode.  Mode 0 gets 2 samples at 2.9 std
    # (high quality, covered: 2 >= 2); mode 1 gets 1 at 2.9 std and 1 at 3.1 std (1 high
    # quality: not covered); the other 76 lie at 3.1 std from mode 2 (none high quality).
    c, s = RING.mode_centers, RING.mode_std
    up = np.array([0.0, 1.0])                    # a direction, distance measured along it
    samples = np.array([c[0] + 2.9 * s * up, c[0] - 2.9 * s * up,
                        c[1] + 2.9 * s * up, c[1] + 3.1 * s * up] + [c[2] + 3.1 * s * up] * 76)
    r = toy_mode_metrics(samples, c, s)
    assert r["samples_per_mode"] == [2, 1, 0, 0, 0, 0, 0, 0]
    assert r["modes_covered"] == 1
    assert r["high_quality_pct"] == round(100 * 3 / 80, 2) == 3.75
    # reached (no quality cut): mode 0 has 2, mode 1 has 2, mode 2 has 76: three modes
    assert r["modes_reached"] == 3 and r["median_distance_in_std"] == 3.1
    # at least one high-quality sample: modes 0 and 1 (mode 2's 76 are all past 3 std)
    assert r["modes_with_hq_sample"] == 2


def test_uniform_noise_over_the_plane_covers_nothing():
    # Uniform on [-3, 3]²: a sample is high quality with probability
    # 8 discs of radius 3 std = 0.06, over the square's area 36: 8 π 0.06² / 36 = 0.2513 %.
    # Per mode that is n π 0.06² / 36 = 31.4 of n = 100,000 samples, far below the
    # 0.2 * 100,000 / 8 = 2,500 needed: no mode covered.  Without the cut the square splits
    # into 8 equal sectors around the ring (its symmetry), 12,500 each: all 8 reached.
    n = 100_000
    samples = np.random.default_rng(1).uniform(-3, 3, size=(n, 2))
    r = toy_mode_metrics(samples, RING.mode_centers, RING.mode_std)
    p = 8 * math.pi * 0.06 ** 2 / 36
    sd = math.sqrt(p * (1 - p) / n)             # binomial spread of the fraction: 0.016 %
    assert abs(r["high_quality_pct"] / 100 - p) < 4 * sd
    assert r["modes_covered"] == 0 and r["modes_reached"] == 8
    assert max(r["samples_per_mode"]) < 100
    # ... but ~31 high-quality samples a mode: every mode has one (Poisson(31.4) is 0 with
    # probability e^-31): the count of PacGAN's code calls this 8 of 8 modes captured
    assert r["modes_with_hq_sample"] == 8


def test_eval_scores_with_the_datasets_own_std():
    # `tinygan eval` scores through evaluate_samples(samples, dataset): the dataset's std.
    # grid25 at std 0.05: a sample 0.1 off a centre is 2 std (high quality); on ring8's
    # 0.02 the same offset would be 5 std.  25 samples per centre, offset 0.1: all 25 covered.
    samples = np.repeat(GRID.mode_centers, 25, axis=0) + [0.1, 0.0]
    r = evaluate_samples(samples.astype(np.float32), GRID)
    assert r["modes_covered"] == 25 and r["high_quality_pct"] == 100.0
    assert r["median_distance_in_std"] == 2.0
    with pytest.raises(ValueError, match="mode centres"):
        evaluate_samples(samples, data.load("swissroll", n=16))


def test_thin_high_quality_spread_over_grid25_has_every_mode_and_covers_none():
    # 2,500 samples: 15 on each of the 25 centres (375 = 15 % high quality), the other 2,125
    # on the midpoints between neighbouring centres (1 from each: 20 std, not high quality).
    # covered needs 0.2 * 2,500 / 25 = 20 high-quality samples a mode: none has them; each
    # mode has 15 >= 1 high-quality samples: 25 by the one-sample count.
    c = GRID.mode_centers
    mids = c[c[:, 0] < 4] + [1.0, 0.0]            # 20 midpoints of horizontal neighbours
    samples = np.concatenate([np.repeat(c, 15, axis=0), np.resize(mids, (2125, 2))])
    r = toy_mode_metrics(samples, c, GRID.mode_std)
    assert r["high_quality_pct"] == 15.0
    assert r["modes_covered"] == 0 and r["modes_with_hq_sample"] == 25
