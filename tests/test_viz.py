"""The loss plot's pieces: round ticks, the step axis from 1, smoothing, the panel rule."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from tinygan import viz
from tinygan.train import plot_log


def is_round(v, step):
    """v is a multiple of step and step is 1, 2, 2.5 or 5 times a power of ten."""
    k = math.floor(math.log10(step) + 1e-9)
    return (round(step / 10.0 ** k, 9) in (1, 2, 2.5, 5)
            and abs(v / step - round(v / step)) < 1e-6)


@pytest.mark.parametrize("lo,hi", [(-0.234, 3.44), (0, 1), (0.69, 0.7), (1e-4, 3e-4),
                                   (-2.51, 8.29), (3, 12345), (-1e6, 2e6), (5, 5), (0, 0)])
def test_nice_ticks_are_round_and_cover_the_range(lo, hi):
    ticks = viz.nice_ticks(lo, hi)
    step = ticks[1] - ticks[0]
    assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 12
    np.testing.assert_allclose(np.diff(ticks), step, rtol=1e-9)
    assert all(is_round(t, step) for t in ticks)


def test_nice_ticks_of_the_old_plot_and_non_finite_bounds():
    assert viz.nice_ticks(-0.234, 3.44) == [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    assert viz.nice_ticks(float("nan"), 1.0) == [0.0, 1.0]
    assert viz.nice_step(10) == 2 and viz.nice_step(12, 5) == 2.5 and viz.nice_step(0) == 1


def test_tick_labels_are_short_and_exact():
    assert [viz.tick_label(t, 0.25) for t in (0.25, 0.5, -0.75)] == ["0.25", "0.50", "-0.75"]
    assert [viz.tick_label(t, 2.5) for t in (0, 2.5, 5)] == ["0", "2.5", "5.0"]
    assert [viz.tick_label(t, 50) for t in (1, 50, 300)] == ["1", "50", "300"]
    assert [viz.tick_label(t, 2500) for t in (1, 2500, 10000)] == ["1", "2.5k", "10k"]
    assert [viz.tick_label(t, 5e-5) for t in (5e-5, 1e-4, 1.5e-4)] == ["5e-5", "10e-5", "15e-5"]


@pytest.mark.parametrize("last", [1, 2, 7, 300, 2000, 12345])
def test_step_axis_starts_at_step_1(last):
    x0, x1, ticks = viz.step_ticks(last)
    assert x0 == 1 and ticks[0] == 1 and x1 == max(2, last) and ticks[-1] <= x1
    assert all(t == int(t) for t in ticks)                      # whole steps only
    step = viz.nice_step(x1 - 1, 6)
    assert all(is_round(t, max(1.0, step)) for t in ticks[1:])
    assert 2 <= len(ticks) <= 9


def test_running_mean_keeps_length_starts_at_step_1_and_smooths():
    rng = np.random.default_rng(0)
    xs = np.arange(1, 1001)
    ys = 1.0 + rng.standard_normal(1000)
    sm = viz.running_mean(xs, ys, 10)
    assert sm.shape == ys.shape and np.isfinite(sm).all()
    assert sm[0] == pytest.approx(ys[0]) and sm[-1] == pytest.approx(ys[-1])   # window shrinks
    assert sm[100] == pytest.approx(ys[90:111].mean())     # centred: 21 steps around step 101
    assert sm[50:-50].var() < ys.var() / 10
    np.testing.assert_allclose(viz.running_mean(xs, np.full(1000, 3.0), 10), 3.0)
    # uneven steps (loss_G every 5th step) and non-finite values
    ys[7] = np.nan
    sm = viz.running_mean(xs, ys, 10)
    assert np.isnan(sm[7]) and np.isfinite(np.delete(sm, 7)).all()
    sparse = viz.running_mean(xs[::5], ys[::5] * 0 + 2.0, 10)
    np.testing.assert_allclose(sparse, 2.0)
    assert viz.smoothing_half_width(59) == 0 and viz.smoothing_half_width(300) == 5


def test_panel_rule():
    def series(**scales):
        return {k: [(1, s), (2, -s / 2)] for k, s in scales.items()}

    # the GAN's losses stay together; penalties far below them (>10x) get their own panel
    assert viz.split_panels(series(loss_D=1.4, loss_G=0.7, hist_G=1e-4, hist_D=3e-4)) == \
        [["loss_D", "loss_G"], ["hist_G", "hist_D"]]
    # a gradient penalty of the critic's size shares its panel, one 50x bigger does not
    assert viz.split_panels(series(loss_D=2.0, wasserstein=1.0, gp=8.0)) == \
        [["loss_D", "wasserstein", "gp"]]
    assert viz.split_panels(series(loss_D=2.0, loss_G=1.0, gp=100.0)) == \
        [["loss_D", "loss_G"], ["gp"]]
    # a family is never split, even when its members differ (lapgan's loss_D0, loss_D1)
    assert viz.split_panels(series(loss_D0=100.0, loss_D1=0.1)) == [["loss_D0", "loss_D1"]]
    # all-zero series fit anywhere
    assert viz.split_panels(series(loss_D=1.0, drift=0.0)) == [["loss_D", "drift"]]


def write_log(path, rows):
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("n", [1, 2, 300])
def test_plot_log_short_long_nan_and_constant(tmp_path, n):
    rng = np.random.default_rng(0)
    rows = [{"step": s, "loss_D": 0.7, "loss_G": float(rng.standard_normal()),
             "hist_G": 1e-4, "res": 8, "alpha": 0.5} for s in range(1, n + 1)]
    if n > 2:
        rows[10]["loss_G"] = float("nan")
        rows[11]["loss_G"] = float("inf")
    write_log(tmp_path / "log.jsonl", rows)
    path = plot_log(str(tmp_path / "log.jsonl"), str(tmp_path / "loss.png"), title="t")
    img = Image.open(path)
    assert img.width == 720 and img.height > 400                  # two panels: losses, hist_G


def test_plot_curves_empty_and_unsmoothed(tmp_path):
    assert Image.open(viz.plot_curves({}, str(tmp_path / "empty.png"))).size[0] == 720
    pts = [(s, float(s % 7)) for s in range(1, 200)]
    a = np.asarray(Image.open(viz.plot_curves({"loss": pts}, str(tmp_path / "a.png"))))
    b = np.asarray(Image.open(viz.plot_curves({"loss": pts}, str(tmp_path / "b.png"),
                                              smooth=False)))
    assert a.shape == b.shape and (a != b).any()
