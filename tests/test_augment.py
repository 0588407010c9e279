"""DiffAugment (gans/augment.py) and the op under it, functional.translate.

translate: against a pixel-by-pixel loop, first and second order by finite differences
(float64).  The transforms: differentiable end to end with their random draws held fixed, the
ranges the paper gives, "none" the identity, and reproducible from the library's seed.  The
`diffaugment` option of dcgan: checked like every option, and a run resumes bit for bit.
"""
import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
from tinygan import Tensor
from tinygan.gans import augment
from tinygan.gans.dcgan import DCGAN
from tinygan.gradcheck import gradcheck, gradgradcheck


def shifted_by_loop(x, dy, dx):
    N, C, H, W = x.shape
    out = np.zeros_like(x)
    for n in range(N):
        for i in range(H):
            for j in range(W):
                si, sj = i - dy[n], j - dx[n]
                if 0 <= si < H and 0 <= sj < W:
                    out[n, :, i, j] = x[n, :, si, sj]
    return out


@pytest.mark.parametrize("dy,dx", [([0, 1, -2, 3], [0, -1, 2, 0]),
                                   ([5, -5, 0, 9], [0, 0, -6, 1])],   # wholly out of frame too
                         ids=["inside", "off-the-edge"])
def test_translate_matches_a_pixel_loop(dy, dx):
    x = np.random.default_rng(0).standard_normal((4, 2, 5, 6))
    got = F.translate(Tensor(x), np.array(dy), np.array(dx)).data
    np.testing.assert_array_equal(got, shifted_by_loop(x, dy, dx))


def test_translate_first_and_second_order():
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((3, 2, 4, 5)), requires_grad=True)
    dy, dx = np.array([1, -2, 0]), np.array([-1, 3, 2])
    fn = lambda t: F.translate(t, dy, dx) * F.translate(t, dx % 3, dy)   # noqa: E731  (not linear)
    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


def test_translate_backward_is_the_shift_back():
    x = Tensor(np.arange(2 * 1 * 3 * 3, dtype=np.float64).reshape(2, 1, 3, 3), requires_grad=True)
    F.translate(x, np.array([1, 0]), np.array([0, -1])).sum().backward()
    # image 0 moved down one row: its last row fell off and gets no gradient
    np.testing.assert_array_equal(x.grad.data[0, 0], [[1, 1, 1], [1, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(x.grad.data[1, 0], [[0, 1, 1]] * 3)


def test_translate_rejects_bad_offsets():
    x = tg.zeros(2, 1, 3, 3)
    with pytest.raises(ValueError, match="one offset per image"):
        F.translate(x, np.array([1]), np.array([1, 2]))
    with pytest.raises(TypeError, match="whole pixels"):
        F.translate(x, np.array([0.5, 1.0]), np.array([1, 2]))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.translate(tg.zeros(3, 3), np.array([1]), np.array([1]))


@pytest.mark.parametrize("policy", [p for p in augment.POLICIES if p != "none"])
def test_every_policy_is_differentiable(policy):
    x = Tensor(np.random.default_rng(2).uniform(-1, 1, (3, 2, 8, 8)), requires_grad=True)

    def fn(t):
        tg.manual_seed(7)                   # the same random draws on every evaluation
        return augment.diff_augment(t, policy) ** 2

    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


def test_none_is_the_identity_and_unknown_policies_are_refused():
    x = tg.randn(2, 1, 4, 4)
    assert augment.diff_augment(x, "none") is x
    with pytest.raises(ValueError, match="unknown policy 'colour'"):
        augment.diff_augment(x, "colour")


def test_draws_follow_the_library_seed():
    x = tg.randn(4, 3, 8, 8)
    runs = []
    for _ in range(2):
        tg.manual_seed(3)
        runs.append(augment.diff_augment(x, "color,translation,cutout").data)
    np.testing.assert_array_equal(*runs)
    tg.manual_seed(4)
    assert not np.array_equal(runs[0], augment.diff_augment(x, "color,translation,cutout").data)


def test_translation_stays_within_an_eighth_of_the_side():
    tg.manual_seed(0)
    x = tg.zeros(400, 1, 16, 16)
    x.data[:, :, 8, 8] = 1.0                 # one bright pixel, found again after the shift
    moved = augment.translation(x).data[:, 0]
    rows, cols = np.nonzero(moved.max(axis=2))[1], np.nonzero(moved.max(axis=1))[1]
    assert set(rows - 8) == set(range(-2, 3)) and set(cols - 8) == set(range(-2, 3))


def test_cutout_blanks_at_most_a_quarter_of_each_image():
    tg.manual_seed(0)
    out = augment.cutout(tg.ones(300, 1, 8, 8)).data
    blank = (out == 0).reshape(300, -1).sum(1)
    # The centre is uniform on 0..8 per axis; the 4×4 square lies wholly inside for 2..6 (5 of
    # 9 values), and at least a 2×2 corner of it always does.
    assert blank.max() == 16 and blank.min() >= 4
    assert abs((blank == 16).mean() - (5 / 9) ** 2) < 0.08
    # where the square was drawn whole it is one 4×4 block
    whole = out[blank == 16][0, 0] == 0
    r, c = np.nonzero(whole)
    assert r.max() - r.min() == 3 and c.max() - c.min() == 3


def test_color_moves_brightness_saturation_and_contrast_per_image():
    tg.manual_seed(0)
    x = Tensor(np.random.default_rng(0).uniform(-0.5, 0.5, (200, 3, 4, 4)).astype(np.float32))
    y = augment.color(x).data
    shift = (y - x.data).mean(axis=(1, 2, 3))
    assert shift.std() > 0.1                             # not one shift for the whole batch
    assert np.abs(shift).max() < 0.5 + 1e-5              # brightness U(-0.5, 0.5); means kept


def test_dcgan_option_is_checked_and_a_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    from tinygan.train import train
    with pytest.raises(ValueError, match="diffaugment"):
        DCGAN.check_config({"diffaugment": "flip"})
    cfg = dict(variant="dcgan", data="mnist-subset", batch_size=4, progress=False,
               options=dict(ngf=4, ndf=4, diffaugment="color,translation,cutout"))
    train(**cfg, steps=4, out=str(tmp_path / "straight"))
    train(**cfg, steps=2, out=str(tmp_path / "split"))
    train(**cfg, steps=4, out=str(tmp_path / "split"), resume=True)
    a, b = (np.load(tmp_path / d / "checkpoints" / "last.npz") for d in ("straight", "split"))
    assert a.files == b.files
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
