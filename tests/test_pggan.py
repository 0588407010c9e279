"""pggan: equalized LR, pixel norm, minibatch stddev (math + both derivative orders), the
fade-in schedule, shapes at every resolution, one step per phase type, exact resume mid-fade."""
import math

import numpy as np
import pytest

import tinygan
from tinygan import backend, checkpoint
from tinygan import functional as F
from tinygan.autograd import Tensor
from tinygan.gans import losses
from tinygan.gans.pg_layers import (EqualizedConv2d, EqualizedLinear, minibatch_stddev,
                                    pixel_norm)
from tinygan.gans.pggan import PGGAN

TINY = dict(z_dim=8, fmaps=8, steps_per_phase=4)


def make(**cfg):
    backend.manual_seed(0)
    return PGGAN((1, 28, 28), config=dict(TINY, **cfg))


def batch(n=8, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, (n, 1, 28, 28)).astype(np.float32))


# -- the layers -----------------------------------------------------------------------------------

def test_equalized_conv_is_a_plain_conv_with_he_scaled_weight(rng):
    backend.manual_seed(0)
    layer = EqualizedConv2d(3, 5, 3)
    layer.bias.data[:] = rng.standard_normal(5).astype(np.float32)
    assert layer.scale == pytest.approx(math.sqrt(2 / (3 * 3 * 3)))
    assert abs(layer.weight.data.std() - 1) < 0.25            # stored weights are N(0, 1)
    x = Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))
    plain = F.conv2d(x, Tensor(layer.weight.data * math.sqrt(2 / 27)), layer.bias.detach(), padding=1)
    np.testing.assert_allclose(layer(x).data, plain.data, rtol=1e-5, atol=1e-6)
    one = EqualizedConv2d(4, 2, 1, gain=1.0)
    assert one.scale == pytest.approx(1 / math.sqrt(4)) and one.padding == 0


def test_equalized_linear_is_a_plain_linear_with_he_scaled_weight(rng):
    layer = EqualizedLinear(6, 4, gain=math.sqrt(2) / 4)
    assert layer.scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(6))
    x = Tensor(rng.standard_normal((3, 6)).astype(np.float32))
    expected = x.data @ (layer.weight.data * layer.scale).T + layer.bias.data
    np.testing.assert_allclose(layer(x).data, expected, rtol=1e-5, atol=1e-6)


def test_pixel_norm_by_hand(rng):
    a = rng.standard_normal((2, 5, 3, 4))
    b = pixel_norm(Tensor(a)).data
    np.testing.assert_allclose(b, a / np.sqrt((a ** 2).mean(axis=1, keepdims=True) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose((b ** 2).mean(axis=1), 1.0, rtol=1e-6)    # unit RMS per pixel
    z = rng.standard_normal((3, 7))
    np.testing.assert_allclose(pixel_norm(Tensor(z)).data,
                               z / np.sqrt((z ** 2).mean(axis=1, keepdims=True) + 1e-8), rtol=1e-12)


def _mbstd_numpy(x, group):
    """The layer written out with loops: sample n is in group n mod M (M = N / group)."""
    N, C, H, W = x.shape
    M = N // group
    s = np.empty(M)
    for m in range(M):
        members = x[m::M]                                  # the `group` samples of group m
        assert len(members) == group
        var = ((members - members.mean(axis=0)) ** 2).mean(axis=0)
        s[m] = np.sqrt(var + 1e-8).mean()
    extra = np.stack([np.full((1, H, W), s[n % M]) for n in range(N)])
    return np.concatenate([x, extra], axis=1)


@pytest.mark.parametrize("N, group", [(8, 4), (4, 4), (6, 2), (3, 4)])
def test_minibatch_stddev_by_hand(rng, N, group):
    x = rng.standard_normal((N, 3, 2, 2))
    out = minibatch_stddev(Tensor(x), group).data
    np.testing.assert_allclose(out, _mbstd_numpy(x, min(group, N)), rtol=1e-12)


def test_minibatch_stddev_rejects_a_ragged_batch():
    with pytest.raises(ValueError, match=r"minibatch_stddev: batch size 6 .* group size 4"):
        minibatch_stddev(Tensor(np.zeros((6, 2, 2, 2))), 4)


def test_pixel_norm_gradients_first_and_second_order(rng):
    x = Tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    tinygan.gradcheck(pixel_norm, [x])
    tinygan.gradgradcheck(pixel_norm, [x])


def test_minibatch_stddev_gradients_first_and_second_order(rng):
    x = Tensor(rng.standard_normal((4, 2, 2, 2)), requires_grad=True)
    tinygan.gradcheck(lambda t: minibatch_stddev(t, 2), [x])
    tinygan.gradgradcheck(lambda t: minibatch_stddev(t, 2), [x])


# -- the schedule --------------------------------------------------------------------------------

def test_schedule_alpha_ramp():
    m = make(steps_per_phase=10)
    table = {0: (4, 1.0, "stabilise"), 9: (4, 1.0, "stabilise"),
             10: (8, 0.0, "fade-in"), 13: (8, 0.3, "fade-in"), 19: (8, 0.9, "fade-in"),
             20: (8, 1.0, "stabilise"), 30: (16, 0.0, "fade-in"), 35: (16, 0.5, "fade-in"),
             40: (16, 1.0, "stabilise"), 57: (32, 0.7, "fade-in"), 60: (32, 1.0, "stabilise"),
             10_000: (32, 1.0, "stabilise")}
    for step, (res, alpha, phase) in table.items():
        r, a, p = m.schedule(step)
        assert (r, p) == (res, phase) and a == pytest.approx(alpha), step
    m.steps_done = 13
    assert m.schedule()[:2] == (8, pytest.approx(0.3))


def test_fade_in_blends_old_and_new_paths():
    m = make()
    z = m.sample_z(4)
    x32 = m.to_net(batch(4))
    up = lambda t: F.interpolate(t, scale_factor=2)
    old_g = up(m.G.to_rgb[1](m.G.block(1, m.G.block(0, z)))).data
    new_g = m.G(z, 16, 1.0).data
    np.testing.assert_allclose(m.G(z, 16, 0.0).data, old_g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.G(z, 16, 0.25).data, old_g + 0.25 * (new_g - old_g), rtol=1e-4, atol=1e-5)
    # Reals: at α = 0 exactly the upsampled half-resolution image, at α = 1 the full one.
    x16 = F.avg_pool2d(x32, 2)
    np.testing.assert_allclose(m.reals_at(x32, 16, 0.0).data, up(F.avg_pool2d(x16, 2)).data, rtol=1e-6)
    np.testing.assert_allclose(m.reals_at(x32, 16, 1.0).data, x16.data, rtol=1e-6)
    # D at α = 0 ignores the new block: it reads the half-resolution image through the old fromRGB.
    xs = m.reals_at(x32, 16, 1.0)
    np.testing.assert_allclose(m.D(xs, 16, 0.0).data, m.D(F.avg_pool2d(xs, 2), 8, 1.0).data,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("res", [4, 8, 16, 32])
def test_shapes_at_every_resolution(res):
    m = make()
    z = m.sample_z(4)
    for alpha in (0.5, 1.0):
        img = m.G(z, res, alpha)
        assert img.shape == (4, 1, res, res)
        assert m.D(img, res, alpha).shape == (4,)
        out = m.generate(z, res=res, alpha=alpha)
        assert out.shape == (4, 1, 28, 28) and np.abs(out.data).max() <= 1.0


def test_param_table_matches_capacity_and_lists_every_resolution():
    m = PGGAN((1, 28, 28))                              # the default widths
    table = m.param_table()
    for r in (4, 8, 16, 32):
        assert f"{r}x{r}" in table
    g, d = m.parameter_counts()["G"], m.parameter_counts()["D"]
    assert abs(g - d) / g < 0.01                         # matched capacity
    assert table in m.describe()


# -- training ------------------------------------------------------------------------------------

def _params(net):
    return [p.data.copy() for p in net.parameters()]


@pytest.mark.parametrize("step, res, phase", [(0, 4, "stabilise"), (6, 8, "fade-in"), (8, 8, "stabilise")])
def test_one_step_per_phase_moves_the_active_layers_only(step, res, phase):
    m = make()
    m.steps_done = step
    assert m.schedule()[0] == res and m.schedule()[2] == phase
    before_G, before_D = _params(m.G), _params(m.D)
    out = m.train_step(batch())
    assert all(math.isfinite(v) for v in out.values()) and out["res"] == res
    assert {"loss_D", "loss_G", "wasserstein", "gp", "drift"} <= set(out)
    for net, before in ((m.G, before_G), (m.D, before_D)):
        moved = {n for (n, p), b in zip(net.named_parameters(), before) if not np.array_equal(p.data, b)}
        assert any(n.startswith("blocks.0.") for n in moved)
        assert not any(n.startswith(("blocks.2.", "blocks.3.")) for n in moved)   # not grown yet
        rgb = "to_rgb" if net is m.G else "from_rgb"
        assert (f"{rgb}.1.weight" in moved) == (res == 8)
        assert (f"{rgb}.0.weight" in moved) == (res == 4 or phase == "fade-in")


def test_critic_loss_is_wgan_gp_plus_drift():
    m = make()
    m.steps_done = 5                                      # 8×8 fade-in, α = 0.25
    res, alpha, _ = m.schedule()
    x = batch()
    backend.manual_seed(7)
    xr = m.reals_at(m.to_net(x), res, alpha)
    fake = m.G(m.sample_z(8), res, alpha).detach()

    def D(t):
        return m.D(t, res, alpha)
    real_s, fake_s = D(xr).data, D(fake).data
    gp = losses.gradient_penalty(D, xr, fake, 10.0).item()      # draws ε next, as train_step does
    backend.manual_seed(7)
    out = m.train_step(x)
    assert out["wasserstein"] == pytest.approx(real_s.mean() - fake_s.mean(), rel=1e-4, abs=1e-5)
    assert out["drift"] == pytest.approx(1e-3 * (real_s ** 2).mean(), rel=1e-4, abs=1e-9)
    assert out["gp"] == pytest.approx(gp, rel=1e-4)
    assert out["loss_D"] == pytest.approx(-out["wasserstein"] + out["gp"] + out["drift"], rel=1e-4, abs=1e-5)
    assert out["alpha"] == 0.25


def test_checkpoint_round_trip_mid_fade_in_gives_identical_samples(tmp_path):
    m = make()
    x = batch()
    for _ in range(6):                                    # into the 8×8 fade-in
        m.train_step(x)
        m.steps_done += 1
    assert m.schedule()[2] == "fade-in" and 0 < m.schedule()[1] < 1
    path = checkpoint.save(str(tmp_path / "c.npz"), {"variant": m.state_dict()})
    state, _ = checkpoint.load(path)
    backend.manual_seed(123)                              # a differently initialised twin
    twin = PGGAN((1, 28, 28), config=dict(TINY))
    twin.load_state_dict(state["variant"])
    assert twin.schedule() == m.schedule()
    z = m.fixed_noise(8)
    np.testing.assert_array_equal(twin.sample(8, z=z), m.sample(8, z=z))
    backend.manual_seed(5)
    a = m.train_step(x)
    backend.manual_seed(5)
    b = twin.train_step(x)                                # same Adam state: the same next step
    assert a == b
