"""infogan, ae, vae, aae, bigan: loss math by hand, shapes, one step that learns, checkpoints."""
import math

import numpy as np
import pytest

import tinygan
from tinygan.autograd import Tensor
from tinygan.gans import create
from tinygan.gans.aae import MIXTURE_K, MIXTURE_STD, mixture_centers, sample_mixture
from tinygan.gans.encoders import (decode_mean, kl_to_standard_normal, reconstruction_loss,
                                   reconstruction_quality)
from tinygan.gans.infogan import gaussian_nll

IMG = (1, 28, 28)
TINY = {
    "ae": dict(z_dim=3, hidden=(16,)),
    "vae": dict(z_dim=3, hidden=(16,)),
    "aae": dict(z_dim=2, hidden=(16,), d_hidden=(8,)),
    "bigan": dict(z_dim=3, hidden=(16,)),
    "infogan": dict(noise_dim=4, ngf=4, ndf=4, fc=16, q_hidden=8),
}


def t64(a):
    return Tensor(np.asarray(a, np.float64))


def digits(n=8, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *IMG)).astype(np.float32)


# -- loss math on tiny tensors ---------------------------------------------------------------------
def test_kl_closed_form_by_hand_and_by_monte_carlo():
    mu, logvar = np.array([[0.5, -1.0], [0.0, 0.3]]), np.array([[0.2, -0.3], [0.0, 0.7]])
    kl = kl_to_standard_normal(t64(mu), t64(logvar)).item()
    hand = np.mean([0.5 * sum(m ** 2 + math.exp(v) - 1 - v for m, v in zip(mr, vr))
                    for mr, vr in zip(mu, logvar)])
    assert kl == pytest.approx(hand, rel=1e-12)
    # E_q[log q(z) - log p(z)] by sampling z ~ q.
    rng, sd = np.random.default_rng(0), np.exp(0.5 * logvar)
    z = mu + sd * rng.standard_normal((200_000, *mu.shape))
    log_q = (-0.5 * ((z - mu) / sd) ** 2 - np.log(sd)).sum(-1)
    log_p = (-0.5 * z ** 2).sum(-1)
    assert kl == pytest.approx((log_q - log_p).mean(), abs=0.01)
    assert kl_to_standard_normal(t64(np.zeros((3, 4))), t64(np.zeros((3, 4)))).item() == 0.0


def test_reconstruction_losses_by_hand():
    logits = np.array([[0.3, -1.2, 2.0], [-0.5, 0.1, 0.0]])
    x = np.array([[1.0, -1.0, 0.2], [-0.6, 1.0, -1.0]])
    t, p = (x + 1) / 2, 1 / (1 + np.exp(-logits))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum() / 2
    assert reconstruction_loss(t64(logits), t64(x), "bernoulli").item() == pytest.approx(bce, rel=1e-12)
    assert reconstruction_loss(t64(logits), t64(x), "gaussian").item() == pytest.approx(
        0.5 * ((logits - x) ** 2).sum() / 2, rel=1e-12)
    np.testing.assert_allclose(decode_mean(t64(logits), "bernoulli").data, 2 * p - 1, rtol=1e-12)
    assert decode_mean(t64(logits), "gaussian").data is not None


def test_infogan_gaussian_nll_by_hand():
    c, mu, ls = np.array([[0.3, -0.9]]), np.array([[0.1, 0.4]]), np.array([[-0.5, 0.2]])
    logpdf = lambda v, m, s: -0.5 * math.log(2 * math.pi) - math.log(s) - (v - m) ** 2 / (2 * s * s)
    hand = -sum(logpdf(v, m, math.exp(s)) for v, m, s in zip(c[0], mu[0], ls[0]))
    assert gaussian_nll(t64(c), t64(mu), t64(ls)).item() == pytest.approx(hand, rel=1e-12)
    hand1 = -sum(logpdf(v, m, 1.0) for v, m in zip(c[0], mu[0]))
    assert gaussian_nll(t64(c), t64(mu)).item() == pytest.approx(hand1, rel=1e-12)


def test_infogan_info_loss_is_cross_entropy_plus_nll():
    tinygan.manual_seed(0)
    m = create("infogan", IMG, config=dict(TINY["infogan"], learn_std=True))
    h = Tensor(np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32))
    cat, cont = np.array([0, 3, 9, 1, 3]), np.random.default_rng(2).uniform(-1, 1, (5, 2))
    m.eval()
    logits, mu, log_std = (t.data.astype(np.float64) for t in m.Q(h))
    ce = -(logits[np.arange(5), cat] - np.log(np.exp(logits).sum(1))).mean()
    nll = (0.5 * math.log(2 * math.pi) + log_std + 0.5 * ((cont - mu) / np.exp(log_std)) ** 2).sum(1).mean()
    got_ce, got_nll = m.info_loss(h, Tensor(cat), Tensor(cont.astype(np.float32)))
    assert got_ce.item() == pytest.approx(ce, rel=1e-4)
    assert got_nll.item() == pytest.approx(nll, rel=1e-4)


def test_mixture_prior_sampling_statistics():
    rng = np.random.default_rng(0)
    z, k = sample_mixture(20_000, rng)
    centers = mixture_centers()
    assert z.shape == (20_000, 2) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 4.0, rtol=1e-6)
    np.testing.assert_allclose(np.bincount(k, minlength=MIXTURE_K) / len(k), 0.1, atol=0.01)
    offsets = z - centers[k]
    np.testing.assert_allclose(offsets.std(0), MIXTURE_STD, rtol=0.03)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.1)
    # every sample lies nearest its own component (components are ~5σ apart)
    nearest = np.argmin(((z[:, None] - centers[None]) ** 2).sum(-1), 1)
    assert (nearest == k).mean() > 0.98


def test_aae_prior_choice_and_mixture_needs_2d():
    with pytest.raises(ValueError, match="z_dim=2"):
        create("aae", IMG, config=dict(TINY["aae"], prior="mixture10", z_dim=3))
    with pytest.raises(ValueError, match="prior"):
        create("aae", IMG, config=dict(TINY["aae"], prior="uniform"))
    m = create("aae", IMG, config=dict(TINY["aae"], prior="mixture10"))
    z = m.fixed_noise(20).data
    d = np.linalg.norm(z - mixture_centers()[np.arange(20) % 10], axis=1)
    assert d.max() < 4 * MIXTURE_STD


# -- shapes, a step that learns, checkpoints ---------------------------------------------------------
@pytest.mark.parametrize("name", list(TINY))
def test_shapes(name):
    tinygan.manual_seed(0)
    m = create(name, IMG, config=TINY[name])
    x = digits(6)
    out = m.sample(5)
    assert out.shape == (5, *IMG) and np.all(np.abs(out) <= 1.0)
    assert m.sample_z(5).shape == (5, m.z_dim)
    if name == "infogan":
        assert m.z_dim == 4 + 10 + 2
        lat = m.sample_z(7).data
        np.testing.assert_array_equal(lat[:, 4:14].sum(1), 1.0)      # one-hot c1
        assert np.all(np.abs(lat[:, 14:]) <= 1.0)                    # c2, c3 ~ U(-1, 1)
        logit = m.D(Tensor(x))
        cat_logits, mu, log_std = m.Q(m.D.features(Tensor(x)))
        assert logit.shape == (6,) and cat_logits.shape == (6, 10) and mu.shape == (6, 2)
        assert log_std is None
    else:
        assert m.encode(x).shape == (6, m.z_dim)
        assert m.reconstruct(x).shape == x.shape
    if name == "bigan":
        assert m.D(Tensor(x), m.sample_z(6)).shape == (6,)
        assert np.all(np.abs(m.sample_z(100).data) <= 1.0)


@pytest.mark.parametrize("name", list(TINY))
def test_train_step_moves_every_net_and_returns_finite_losses(name):
    tinygan.manual_seed(0)
    m = create(name, IMG, config=TINY[name])
    before = {k: {p: v.copy() for p, v in net.state_dict().items()} for k, net in m.nets().items()}
    losses = m.train_step(Tensor(digits(8)))
    assert losses and all(np.isfinite(v) for v in losses.values())
    for k, net in m.nets().items():
        after = net.state_dict()
        assert any(not np.array_equal(before[k][p], after[p]) for p in after), f"{name}.{k} did not move"
    if name == "vae":
        assert losses["loss"] == pytest.approx(losses["loss_recon"] + losses["loss_kl"], rel=1e-5)


@pytest.mark.parametrize("name", ["ae", "vae", "aae", "bigan"])
def test_toy_data_trains(name):
    tinygan.manual_seed(0)
    m = create(name, (2,), config=TINY[name])
    x = Tensor(np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32) * 2)
    assert all(np.isfinite(v) for v in m.train_step(x).values())
    assert m.sample(4).shape == (4, 2) and m.reconstruct(x.data).shape == (8, 2)


def test_bigan_d_loss_is_encoder_pairs_real_generator_pairs_fake():
    from tinygan.gans import losses
    m = create("bigan", IMG, config=TINY["bigan"])
    x = Tensor(digits(8))
    tinygan.manual_seed(3)
    z = m.sample_z(8)
    expected = losses.d_loss_gan(m.D(x, m.E(x)), m.D(m.G(z), z)).item()
    tinygan.manual_seed(3)
    assert m.train_step(x)["loss_D"] == pytest.approx(expected, rel=1e-6)


def test_bigan_codes_live_in_the_prior_box_and_differ_between_nearly_equal_digits():
    # MNIST-like batch: the same -1 background, digits differing by a little ink.  Without
    # batch norm in E every code was nearly the same point (the collapse this guards against).
    m = create("bigan", IMG, config=TINY["bigan"])
    x = -np.ones((16, *IMG), np.float32)
    x[:, :, 10:18, 10:18] += np.random.default_rng(1).uniform(0, 0.1, (16, 1, 8, 8))
    codes = m.E(Tensor(x)).data
    assert codes.shape == (16, m.z_dim) and np.all(np.abs(codes) <= 1.0)
    assert codes.std(0).mean() > 0.1


def test_infogan_q_is_trained_by_both_players():
    m = create("infogan", IMG, config=TINY["infogan"])
    q = {id(p) for p in m.Q.parameters()}
    for opt, net in ((m.opt_D, m.D), (m.opt_G, m.G)):
        ids = {id(p) for group in opt.param_groups for p in group["params"]}
        assert q <= ids and {id(p) for p in net.parameters()} <= ids


def test_infogan_refuses_toys():
    with pytest.raises(ValueError, match="image"):
        create("infogan", (2,), config=TINY["infogan"])


@pytest.mark.parametrize("name", list(TINY))
def test_checkpoint_round_trip(name, tmp_path):
    from tinygan import checkpoint
    tinygan.manual_seed(0)
    m = create(name, IMG, config=TINY[name])
    m.train_step(Tensor(digits(8)))
    path = checkpoint.save(str(tmp_path / "m.npz"), {"variant": m.state_dict()})
    state, _ = checkpoint.load(path)
    tinygan.manual_seed(1)
    m2 = create(name, IMG, config=TINY[name])
    m2.load_state_dict(state["variant"])
    z = m.fixed_noise(6)
    np.testing.assert_array_equal(m.sample(6, z=z), m2.sample(6, z=z))
    if name != "infogan":
        x = digits(4, seed=3)
        np.testing.assert_array_equal(m.encode(x), m2.encode(x))
    # and training continues identically (same optimizer state, same RNG stream)
    tinygan.manual_seed(5)
    a = m.train_step(Tensor(digits(8, 4)))
    tinygan.manual_seed(5)
    b = m2.train_step(Tensor(digits(8, 4)))
    assert a == b


def test_infogan_code_grid_png(tmp_path):
    from PIL import Image
    tinygan.manual_seed(0)
    m = create("infogan", IMG, config=TINY["infogan"])
    paths = m.code_grids(str(tmp_path / "grid"), steps=7)
    assert [p.rsplit("_", 1)[1] for p in paths] == ["c2.png", "c3.png"]
    img = Image.open(paths[0])
    # 7 columns × 10 rows of 28-px digits with 2-px gutters, upscaled ×2 by the grid writer
    assert img.size == ((7 * 30 + 2) * 2, (10 * 30 + 2) * 2)
    with pytest.raises(ValueError, match="code"):
        m.code_grid(str(tmp_path / "bad.png"), code=2)


def test_infogan_code_grid_varies_only_the_asked_code(tmp_path):
    m = create("infogan", IMG, config=TINY["infogan"])
    seen = []
    m.sample = lambda n, z=None, y=None: seen.append(z.data) or np.zeros((n, *IMG), np.float32)
    m.code_grid(str(tmp_path / "g.png"), code=1, steps=5)
    lat = seen[0].reshape(10, 5, -1)
    np.testing.assert_array_equal(lat[..., :4], np.broadcast_to(lat[:1, :1, :4], lat[..., :4].shape))
    np.testing.assert_array_equal(lat[:, :, 4:14].argmax(-1), np.repeat(np.arange(10)[:, None], 5, 1))
    np.testing.assert_allclose(lat[0, :, 15], np.linspace(-2, 2, 5))
    np.testing.assert_array_equal(lat[..., 14], 0.0)


def test_infogan_code_class_agreement_pairs_codes_with_digits():
    """A generator whose code k draws real digits of class (k + 3) % 10 pairs every code with
    that digit, at about the classifier's accuracy on real digits."""
    from tinygan.data import load
    ds = load("mnist-subset")
    m = create("infogan", IMG, config=TINY["infogan"])
    n = 20
    by_class = [ds.x[ds.labels == d][:n] for d in range(10)]
    seen = []

    def fake_sample(count, z=None, y=None):
        seen.append(z.data)
        assert count == 10 * n
        return np.concatenate([by_class[(k + 3) % 10] for k in range(10)])

    m.sample = fake_sample
    out = m.code_class_agreement(n_per_code=n)
    assert np.array_equal(seen[0][:, 4:14].argmax(1), np.repeat(np.arange(10), n))
    assert out["digits_matched"] == [(k + 3) % 10 for k in range(10)]
    assert out["accuracy"] >= 0.9
    conf = np.array(out["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == 10 * n and (conf.sum(1) == n).all()
    assert out["accuracy"] == pytest.approx(sum(conf[k, (k + 3) % 10] for k in range(10)) / (10 * n))
    with pytest.raises(ValueError, match="n_per_code"):
        m.code_class_agreement(n_per_code=0)


def test_reconstruction_quality_reports_mse_and_classifier_accuracy():
    from tinygan.data import load
    ds = load("mnist-subset")
    x, y = ds.x[::500], ds.labels[::500]
    m = create("ae", IMG, config=TINY["ae"])
    q = reconstruction_quality(m, x, y)
    assert q["n"] == len(x)
    assert q["mse"] == pytest.approx(float(np.mean((m.reconstruct(x) - x) ** 2)))
    try:
        from tinygan.classifier import load_classifier
        load_classifier()
    except FileNotFoundError:
        return
    assert 0.0 <= q["classifier_acc_recon"] <= 1.0 and q["classifier_acc_real"] >= 0.8
