"""The second domains made from the shipped digits (tinygan/data/digit_domains.py)."""
import numpy as np
import pytest

from tinygan.data import digit_domains as dd
from tinygan.data import load


def square(size=12, lo=4, hi=8, value=255):
    u8 = np.zeros((1, 1, size, size), np.uint8)
    u8[..., lo:hi, lo:hi] = value
    return u8


def test_negative_is_its_own_inverse_and_flips_the_range():
    digits = load("mnist-subset").data[:20]
    neg = dd.negative(digits)
    assert neg.dtype == np.uint8 and neg.shape == digits.shape
    assert np.array_equal(dd.negative(neg), digits)
    assert np.array_equal(neg[digits == 0], np.full((digits == 0).sum(), 255, np.uint8))


def test_outline_is_the_rim_around_the_strokes():
    rim = dd.outline(square())[0, 0]
    assert rim.dtype == np.uint8
    assert rim[4:8, 4:8].max() == 0                       # inside the square: nothing
    ring = np.zeros((12, 12), bool)
    ring[3:9, 3:9] = True
    ring[4:8, 4:8] = False
    assert (rim[ring] == 255).all() and rim[~ring].max() == 0
    digits = load("mnist-subset").data[:10]
    # a stroke pixel never lies on the rim at full strength: the rim surrounds, not covers
    assert (dd.outline(digits)[digits == 255] == 0).all() and dd.outline(digits).any()
    assert np.array_equal(dd.outline(np.zeros((2, 1, 8, 8), np.uint8)), np.zeros((2, 1, 8, 8)))


def test_thicken_grows_a_pixel_into_a_box_and_never_darkens():
    dot = np.zeros((1, 1, 9, 9), np.uint8)
    dot[0, 0, 4, 4] = 200
    grown = dd.thicken(dot, radius=1)[0, 0]
    assert (grown[3:6, 3:6] == 200).all() and grown.sum() == 9 * 200
    assert dd.thicken(dot, radius=2)[0, 0].astype(bool).sum() == 25
    digits = load("mnist-subset").data[:10]
    assert (dd.thicken(digits) >= digits).all()
    assert dd.thicken(digits).astype(bool).sum() > digits.astype(bool).sum()
    assert np.array_equal(dd.thicken(digits, radius=0), digits)


def test_downscale_averages_blocks():
    u8 = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
    assert np.array_equal(dd.downscale(u8, 2)[0, 0], [[2, 4], [10, 12]])   # 2.5 → 2, 4.5 → 4 (round half to even)
    assert dd.downscale(np.full((3, 1, 32, 32), 77, np.uint8), 4).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="divide"):
        dd.downscale(np.zeros((1, 1, 30, 30), np.uint8), 4)


def test_pad_to_centres_the_digit():
    digits = load("mnist-subset").data[:3]
    padded = dd.pad_to(digits, 32)
    assert padded.shape == (3, 1, 32, 32)
    assert np.array_equal(padded[:, :, 2:30, 2:30], digits) and padded.sum() == digits.sum()


def test_splits_are_disjoint_complete_and_seeded():
    train, test = dd.held_out(100, 20, seed=3)
    assert len(test) == 20 and len(train) == 80
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(100))
    a, b = dd.halves(train, seed=1)
    assert len(a) == len(b) == 40 and not set(a) & set(b) and set(a) | set(b) == set(train)
    assert np.array_equal(dd.halves(train, seed=1)[0], a)
    assert not np.array_equal(dd.held_out(100, 20, seed=4)[1], test)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="uint8"):
        dd.negative(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="hold out"):
        dd.held_out(10, 11)
