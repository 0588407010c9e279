"""Latent tools (tinygan/latent.py): interpolation paths, strips, vector arithmetic, commands."""
import argparse

import numpy as np
import pytest
from PIL import Image

from tinygan import latent
from tinygan.gans import create


@pytest.fixture(scope="module")
def dcgan():
    """A tiny image generator (the MLP nets: no conv kernels to compile in this file)."""
    return create("gan", (1, 8, 8), config=dict(z_dim=6))


def test_lerp_endpoints_and_midpoint():
    z0, z1 = np.array([1.0, -2.0, 0.0]), np.array([3.0, 2.0, 4.0])
    np.testing.assert_allclose(latent.lerp(z0, z1, 0.0), z0)
    np.testing.assert_allclose(latent.lerp(z0, z1, 1.0), z1)
    np.testing.assert_allclose(latent.lerp(z0, z1, 0.5), [2.0, 0.0, 2.0])
    assert latent.lerp(z0, z1, np.linspace(0, 1, 5)).shape == (5, 3)


def test_slerp_endpoints_and_constant_norm():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal(8), rng.standard_normal(8)
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)              # equal norms
    path = latent.slerp(z0, z1, np.linspace(0, 1, 11))
    np.testing.assert_allclose(path[0], z0, atol=1e-12)
    np.testing.assert_allclose(path[-1], z1, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(z0), rtol=1e-12)


def test_slerp_by_hand_quarter_circle():
    # from e1 to e2: the midpoint is (cos 45°, sin 45°), not lerp's (0.5, 0.5)
    np.testing.assert_allclose(latent.slerp([1.0, 0.0], [0.0, 1.0], 0.5), [2 ** -0.5, 2 ** -0.5])


def test_slerp_near_parallel_and_opposite_and_zero_fall_back_to_lerp():
    z0 = np.array([1.0, 2.0, 3.0])
    for z1 in (z0 * (1 + 1e-12), 2.0 * z0, -z0, np.zeros(3)):
        out = latent.slerp(z0, z1, 0.3)
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out, latent.lerp(z0, z1, 0.3), atol=1e-9)


def test_interpolate_shape_and_endpoints(dcgan):
    out = latent.interpolate(dcgan, n_steps=4, mode="linear", rows=3, seed=1)
    assert out.shape == (3, 4, 1, 8, 8)
    rng = np.random.default_rng(1)
    z0 = rng.standard_normal((3, 6))
    np.testing.assert_allclose(out[:, 0], dcgan.sample(3, z=latent.Tensor(z0.astype(np.float32))),
                               atol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        latent.interpolate(dcgan, mode="cubic")


def test_interpolation_strip_png_size(dcgan, tmp_path):
    path = latent.interpolation_strip(dcgan, str(tmp_path / "strip.png"), n_steps=5, rows=2)
    img = Image.open(path)
    # 8-pixel tiles upscaled ×8 by viz.image_grid, 2-pixel padding (also scaled)
    scale, pad = 8, 2
    assert img.size == ((5 * (8 + pad) + pad) * scale, (2 * (8 + pad) + pad) * scale)


def test_interpolation_on_toys_and_conditional_labels(tmp_path):
    cg = create("cgan", (2,), num_classes=8, config=dict(toy_hidden=8, z_dim=3))
    out = latent.interpolate(cg, n_steps=3, rows=2, y=5)
    assert out.shape == (2, 3, 2)
    assert latent.interpolation_strip(cg, str(tmp_path / "toy.png"), n_steps=3, rows=2)


def test_mean_latent_and_arithmetic_shape(dcgan):
    zs = np.arange(18, dtype=np.float64).reshape(3, 6)
    np.testing.assert_allclose(latent.mean_latent(dcgan, zs, [0, 2]), zs[[0, 2]].mean(0))
    with pytest.raises(ValueError, match="z_dim"):
        latent.mean_latent(dcgan, np.zeros((2, 5)))
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 6)), rng.standard_normal((2, 6)), rng.standard_normal(6)
    out = latent.latent_arithmetic(dcgan, a, b, c, n_noise=4)
    assert out.shape == (5, 1, 8, 8)
    r = (a.mean(0) - b.mean(0) + c).astype(np.float32)
    np.testing.assert_allclose(out[0], dcgan.sample(1, z=latent.Tensor(r[None]))[0], atol=1e-6)


def test_arithmetic_figure_png(dcgan, tmp_path):
    rng = np.random.default_rng(0)
    groups = rng.standard_normal((3, 6)), rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    bare = Image.open(latent.arithmetic_figure(dcgan, *groups, str(tmp_path / "bare.png"),
                                               n_noise=3, labels=False))
    assert bare.size == ((4 * 10 + 2) * 8, (4 * 10 + 2) * 8)        # 4 columns, 4 rows
    numbers = [[3, 17, 4], [5, 6, 7], [8, 9, 1]]
    img = Image.open(latent.arithmetic_figure(dcgan, *groups, str(tmp_path / "fig.png"),
                                              n_noise=3, indices=numbers))
    assert img.width > bare.width and img.height > bare.height
    margin = np.asarray(img.convert("L"))[:, :img.width - bare.width]
    assert margin.min() < 128 and margin.max() == 255              # text drawn in the margin
    # the bottom row of tiles (the result and its noisy copies) is the bare grid's, unchanged
    tile = 10 * 8
    np.testing.assert_array_equal(np.asarray(img.convert("L"))[-tile:, -bare.width:],
                                  np.asarray(bare.convert("L"))[-tile:])


def test_arithmetic_labels_name_each_term():
    groups = [np.zeros((2, 6)), np.zeros((1, 6)), np.zeros((2, 6))]
    rows, caps = latent._arithmetic_labels(groups, [[3, 17], [5], [8, 9]], n_noise=2)
    assert [r.split("\n")[0] for r in rows] == ["a", "- b", "+ c", "= result"]
    assert "samples 3,17" in rows[0] and "sample 5" in rows[1] and "mean a - mean b" in rows[3]
    assert caps == [["#3", "#17", "mean a"], ["#5", "mean b"], ["#8", "#9", "mean c"],
                    ["result", "+noise", "+noise"]]
    rows, caps = latent._arithmetic_labels(groups, None, n_noise=0)     # z given, no numbers
    assert caps[0] == ["z1", "z2", "mean a"] and "2 z vectors" in rows[0]


def test_class_mean_latents_on_toy():
    g = create("gan", (2,), config=dict(toy_hidden=8, z_dim=3))
    centers = np.array([[0.0, 0.0], [100.0, 100.0]])
    means = latent.class_mean_latents(g, latent.nearest_mode_classifier(centers), n=50,
                                      num_classes=2)
    assert means.shape == (2, 3) and np.isfinite(means[0]).all() and np.isnan(means[1]).all()


def test_commands(tmp_path):
    from tinygan.train import train
    run = tmp_path / "run"
    train("gan", data="mnist-subset", steps=1, batch_size=4, out=str(run), progress=False,
          options=dict(z_dim=6))
    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    latent.add_interpolate_arguments(sub.add_parser("interpolate"))
    latent.add_arithmetic_arguments(sub.add_parser("arithmetic"))
    args = p.parse_args(["interpolate", str(run), "--out", str(tmp_path / "i.png"), "--steps", "3",
                         "--rows", "2"])
    assert latent.cmd_interpolate(args) == 0 and (tmp_path / "i.png").exists()
    args = p.parse_args(["arithmetic", str(run), "--out", str(tmp_path / "bank.png"), "--bank", "8"])
    assert latent.cmd_arithmetic(args) == 0 and (tmp_path / "bank.png").exists()
    bare = latent.viz.image_grid(np.zeros((8, 1, 28, 28)), 8)       # the bank numbers its tiles
    bank = Image.open(tmp_path / "bank.png")
    assert bank.width > bare.width and bank.height > bare.height
    args = p.parse_args(["arithmetic", str(run), "--out", str(tmp_path / "a.png"), "--bank", "8",
                         "-a", "0,1", "-b", "2", "-c", "3,4,5"])
    assert latent.cmd_arithmetic(args) == 0 and (tmp_path / "a.png").exists()
    args = p.parse_args(["arithmetic", str(run), "--out", str(tmp_path / "x.png"), "-a", "99",
                         "-b", "1", "-c", "2", "--bank", "8"])
    with pytest.raises(ValueError, match="0..7"):
        latent.cmd_arithmetic(args)
