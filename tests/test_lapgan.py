"""lapgan: the Laplacian pyramid (exact reconstruction), the latent layout, each level's GAN
losses against a hand computation, one training step, sampling coarse to fine, checkpoints."""
import math

import numpy as np
import pytest

from tinygan import backend, checkpoint
from tinygan.autograd import Tensor
from tinygan.gans.lapgan import LAPGAN, gaussian_pyramid, laplacian_pyramid, reconstruct, up

TINY = dict(g0_hidden=16, d0_hidden=16, ngf=4, ndf=4, dropout=0.0)


def make(**cfg):
    backend.manual_seed(0)
    return LAPGAN((1, 28, 28), config=dict(TINY, **cfg))


def digits(n=8, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, (n, 1, 28, 28)).astype(np.float32))


def _pool_np(a):
    N, C, H, W = a.shape
    return a.reshape(N, C, H // 2, 2, W // 2, 2).mean(axis=(3, 5))


def _up_np(a):
    return a.repeat(2, axis=2).repeat(2, axis=3)


def test_pyramid_shapes_and_definition(rng):
    x = rng.uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32)
    g = gaussian_pyramid(Tensor(x), 3)
    assert [t.shape for t in g] == [(2, 1, 8, 8), (2, 1, 16, 16), (2, 1, 32, 32)]
    np.testing.assert_allclose(g[1].data, _pool_np(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g[0].data, _pool_np(_pool_np(x)), rtol=1e-6, atol=1e-7)
    lap = laplacian_pyramid(Tensor(x), 3)
    np.testing.assert_allclose(lap[2].data, x - _up_np(_pool_np(x)), rtol=1e-5, atol=1e-6)
    # A residual has zero mean over every 2×2 block: avg pooling of nearest upsampling is the identity.
    np.testing.assert_allclose(_pool_np(lap[2].data), 0, atol=1e-6)


def test_reconstruction_identity_is_exact(rng):
    """up(I_{k-1}) + h_k == I_k bit for bit when the arithmetic is exact (pixels on a 1/64 grid:
    their 2×2 and 4×4 means and all differences are representable), and to rounding otherwise."""
    x = rng.integers(-64, 65, (3, 1, 32, 32)).astype(np.float32) / 64
    g = gaussian_pyramid(Tensor(x), 3)
    lap = laplacian_pyramid(Tensor(x), 3)
    for k in (1, 2):
        np.testing.assert_array_equal((up(g[k - 1]) + lap[k]).data, g[k].data)
    np.testing.assert_array_equal(reconstruct(lap).data, x)
    y = rng.uniform(-1, 1, (3, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(reconstruct(laplacian_pyramid(Tensor(y), 3)).data, y, rtol=0, atol=1e-6)


def test_latent_layout_and_sample_shapes():
    m = make()
    assert m.sizes == [8, 16, 32]
    assert m.z_dim == 100 + 16 * 16 + 32 * 32
    z = m.fixed_noise(5)
    assert z.data.min() >= -1 and z.data.max() <= 1            # U(-1, 1) noise, as the paper
    z0, z1, z2 = m.split_z(z)
    assert (z0.shape, z1.shape, z2.shape) == ((5, 100), (5, 1, 16, 16), (5, 1, 32, 32))
    np.testing.assert_array_equal(z2.data.reshape(5, -1), z.data[:, -1024:])
    pyr = m.generate_pyramid(z)
    assert [p.shape for p in pyr] == [(5, 1, 8, 8), (5, 1, 16, 16), (5, 1, 32, 32)]
    # coarse to fine: each level is the upsampled coarser one plus G_k's residual
    np.testing.assert_allclose(pyr[2].data, (up(pyr[1]) + m.G[2](z2, up(pyr[1]))).data, rtol=1e-5, atol=1e-6)
    s = m.sample(5, z=z)
    assert s.shape == (5, 1, 28, 28) and np.abs(s).max() <= 1
    np.testing.assert_allclose(s, np.clip(pyr[2].data[:, :, 2:30, 2:30], -1, 1), rtol=1e-6)


def _bce_d(real_logits, fake_logits):
    softplus = lambda t: np.logaddexp(0, t)
    return softplus(-real_logits).mean() + softplus(fake_logits).mean()


def test_each_level_is_a_gan_on_its_residuals_given_the_real_coarse_image():
    """Replay the step's noise and check every D_k loss by hand: D_0 on (I_0 vs G_0(z_0)),
    D_k on ((h_k, u(I_{k-1})) vs (G_k(z_k, u(I_{k-1})), u(I_{k-1})))."""
    m = make()
    x = digits()
    x32 = np.full((8, 1, 32, 32), -1.0, np.float32)
    x32[:, :, 2:30, 2:30] = x.data
    I = [_pool_np(_pool_np(x32)), _pool_np(x32), x32]
    backend.manual_seed(3)
    zs = m.split_z(m.sample_z(8))
    expected = []
    for k in range(3):
        if k == 0:
            real, fake = m.D[0](Tensor(I[0])).data, m.D[0](m.G[0](zs[0])).data
        else:
            l = Tensor(_up_np(I[k - 1]))
            h = Tensor(I[k] - l.data)
            real, fake = m.D[k](h, l).data, m.D[k](m.G[k](zs[k], l), l).data
        expected.append(_bce_d(real.astype(np.float64), fake.astype(np.float64)))
    backend.manual_seed(3)
    out = m.train_step(x)
    for k in range(3):
        assert out[f"loss_D{k}"] == pytest.approx(expected[k], rel=1e-4)
    assert out["loss_D"] == pytest.approx(sum(expected), rel=1e-4)
    assert out["loss_G"] == pytest.approx(sum(out[f"loss_G{k}"] for k in range(3)), rel=1e-5)


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.02), ("adam", 2e-4)])
def test_train_step_moves_every_level_with_finite_losses(optimizer, lr):
    m = make(optimizer=optimizer, lr=lr, dropout=0.5)
    before = {k: [p.data.copy() for p in net.parameters()] for k, net in m.nets().items()}
    out = m.train_step(digits())
    assert all(math.isfinite(v) for v in out.values())
    assert set(out) == {"loss_D", "loss_G"} | {f"loss_{p}{k}" for p in "DG" for k in range(3)}
    for name, net in m.nets().items():
        for k, level in enumerate(net):
            ps = list(level.parameters())
            offset = sum(len(list(net[j].parameters())) for j in range(k))
            changed = [not np.array_equal(p.data, before[name][offset + i]) for i, p in enumerate(ps)]
            assert all(changed), f"{name}[{k}]"


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_lr0_is_level_zeros_own_learning_rate(optimizer):
    m = make(optimizer=optimizer, lr=2e-4, lr0=1e-3)
    for opt, net in ((m.opt_G, m.G), (m.opt_D, m.D)):
        level0, rest = opt.param_groups
        assert level0["lr"] == 1e-3 and rest["lr"] == 2e-4
        assert [id(p) for p in level0["params"]] == [id(p) for p in net[0].parameters()]
        assert len(rest["params"]) == sum(len(list(n.parameters())) for n in list(net)[1:])
    same = make(optimizer=optimizer, lr=2e-4)          # lr0 unset: every level at lr
    assert [g["lr"] for g in same.opt_G.param_groups] == [2e-4, 2e-4]


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="optimizer"):
        make(optimizer="rmsprop")
    with pytest.raises(ValueError, match="coarsest level of 2"):
        make(levels=5)
    for bad in ("fast", -1e-3, 0, True):
        with pytest.raises(ValueError, match="lr0"):
            make(lr0=bad)


def test_checkpoint_round_trip_and_pyramid_png(tmp_path):
    m = make()
    m.train_step(digits())
    m.steps_done += 1
    path = checkpoint.save(str(tmp_path / "c.npz"), {"variant": m.state_dict()})
    state, _ = checkpoint.load(path)
    backend.manual_seed(99)
    twin = LAPGAN((1, 28, 28), config=dict(TINY))
    twin.load_state_dict(state["variant"])
    z = m.fixed_noise(6)
    np.testing.assert_array_equal(twin.sample(6, z=z), m.sample(6, z=z))
    png = m.save_pyramid(str(tmp_path / "pyr.png"), n=4)
    from PIL import Image
    w, h = Image.open(png).size
    assert w > h > 0        # 4 rows of 5 columns: I_0, I_1, I_2, h_1, h_2
