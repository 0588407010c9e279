"""`python -m tinygan.demo`: a few steps end to end (the full run is the main job, not a test)."""
import math

import numpy as np
from PIL import Image

from tinygan import demo


def test_main_writes_the_png_and_prints_accuracy(tmp_path, capsys):
    out = tmp_path / "sub" / "boundary.png"
    assert demo.main(["--steps", "5", "--out", str(out), "--quiet", "--hidden", "16"]) == 0
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (400, 400) and im.mode == "RGB"
    text = capsys.readouterr().out
    assert "train accuracy" in text and "test accuracy" in text and str(out) in text


def test_train_returns_numbers_and_is_reproducible(tmp_path):
    a = demo.train(steps=3, out=str(tmp_path / "a.png"), hidden=8, progress=False)
    b = demo.train(steps=3, out=str(tmp_path / "b.png"), hidden=8, progress=False)
    for r in (a, b):
        assert 0.0 <= r["train_accuracy"] <= 1.0 and 0.0 <= r["test_accuracy"] <= 1.0
        assert math.isfinite(r["loss"]) and r["steps"] == 3
    assert a["loss"] == b["loss"] and a["test_accuracy"] == b["test_accuracy"]   # manual_seed
    np.testing.assert_array_equal(np.asarray(Image.open(a["out"])), np.asarray(Image.open(b["out"])))


def test_default_output_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--steps", "0", "--quiet", "--hidden", "4"]) == 0
    assert (tmp_path / "runs" / "demo" / "decision_boundary.png").is_file()


def test_two_spirals_data():
    x, y = demo.two_spirals(50, seed=0)
    assert x.shape == (100, 2) and x.dtype == np.float32
    assert y.dtype == np.int64 and (y == 0).sum() == (y == 1).sum() == 50
    assert np.abs(x).max() < demo.EXTENT
    np.testing.assert_array_equal(demo.two_spirals(50, seed=0)[0], x)
