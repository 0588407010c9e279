"""The tricks of Salimans et al. 2016 (tinygan/gans/tricks.py): their math on hand-sized
tensors, first and second derivatives of the new ops, and that each option changes training."""
import math

import numpy as np
import pytest

import tinygan
from tinygan import backend, data as datasets
from tinygan.autograd import Tensor
from tinygan.gans import create, losses, tricks


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# -- feature matching ------------------------------------------------------------------------
def test_feature_matching_loss_by_hand():
    real = t64([[1.0, 2.0], [3.0, 4.0]])            # mean (2, 3)
    fake = t64([[0.0, 0.0], [2.0, 1.0]], grad=True)  # mean (1, 0.5)
    loss = tricks.feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx((2 - 1) ** 2 + (3 - 0.5) ** 2)
    loss.backward()
    # d/dfake_i = -2 (mu_real - mu_fake) / N
    np.testing.assert_allclose(fake.grad.numpy(), [[-1.0, -2.5], [-1.0, -2.5]])


def test_feature_matching_flattens_conv_features_and_detaches_real():
    real = t64(np.ones((2, 2, 1, 1)), grad=True)
    fake = t64(np.zeros((3, 2, 1, 1)), grad=True)
    tricks.feature_matching_loss(real, fake).backward()
    assert real.grad is None and fake.grad is not None


# -- minibatch discrimination ---------------------------------------------------------------
def test_minibatch_features_by_hand():
    f = t64([[1.0], [2.0], [4.0]])                   # A = 1
    T = t64([[[1.0, -1.0]]])                         # B = 1, C = 2: M_i = (f_i, -f_i)
    out = tricks.minibatch_features(f, T).numpy()
    x = [1.0, 2.0, 4.0]
    o = [sum(math.exp(-2 * abs(a - b)) for b in x) for a in x]   # ‖M_i − M_j‖₁ = 2|f_i − f_j|
    np.testing.assert_allclose(out, np.c_[x, o])


def test_minibatch_features_sees_collapse():
    """A batch of identical samples gets o = N in every kernel, a diverse one much less."""
    rng = np.random.default_rng(0)
    T = t64(rng.standard_normal((3, 4, 2)))
    same = tricks.minibatch_features(t64(np.ones((5, 3))), T).numpy()[:, 3:]
    diverse = tricks.minibatch_features(t64(5 * rng.standard_normal((5, 3))), T).numpy()[:, 3:]
    np.testing.assert_allclose(same, 5.0)
    assert diverse.max() < 4.0


def test_minibatch_features_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(1)
    f = t64(rng.standard_normal((3, 2)), grad=True)
    T = t64(rng.standard_normal((2, 2, 2)), grad=True)
    assert tinygan.gradcheck(tricks.minibatch_features, [f, T])
    assert tinygan.gradgradcheck(tricks.minibatch_features, [f, T])


def test_minibatch_head_replaces_dcgan_head_with_same_features():
    v = create("dcgan", (1, 8, 8), config=dict(z_dim=4, ngf=4, ndf=4, minibatch_disc=True,
                                               mbd_kernels=3, mbd_dim=2))
    assert isinstance(v.D.head, tricks.MinibatchDiscriminationHead)
    assert v.D.head.mbd.T.shape == (4 * 4 * 4, 3, 2)          # features (N, 4, 4, 4) flattened
    x = Tensor(np.zeros((4, 1, 8, 8), np.float32))
    assert v.D(x).shape == (4,)


# -- virtual batch norm ---------------------------------------------------------------------
def _bn(a, axes, eps=1e-5):
    return (a - a.mean(axes, keepdims=True)) / np.sqrt(a.var(axes, keepdims=True) + eps)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 2)])
def test_virtual_batch_norm_is_batch_norm_of_reference_plus_example(shape):
    """Combined statistics = plain batch statistics of the set (reference ∪ {x_i})."""
    rng = np.random.default_rng(2)
    n_ref, C = shape[0], shape[1]
    ref = rng.standard_normal(shape)
    xs = rng.standard_normal((2,) + shape[1:]) * 3 + 1
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    y = tricks.virtual_batch_norm(t64(np.concatenate([ref, xs])), n_ref, t64(w), t64(b)).numpy()
    axes = (0,) + tuple(range(2, len(shape)))
    bshape = (1, C) + (1,) * (len(shape) - 2)
    np.testing.assert_allclose(y[:n_ref], _bn(ref, axes) * w.reshape(bshape) + b.reshape(bshape),
                               rtol=1e-10, atol=1e-10)
    for i in range(2):
        pooled = _bn(np.concatenate([ref, xs[i:i + 1]]), axes)[-1]
        np.testing.assert_allclose(y[n_ref + i], pooled * w.reshape(bshape[1:]) + b.reshape(bshape[1:]),
                                   rtol=1e-10, atol=1e-10)


def test_virtual_batch_norm_output_does_not_depend_on_batch_mates():
    rng = np.random.default_rng(3)
    ref, x0 = rng.standard_normal((4, 2)), rng.standard_normal((1, 2))
    w, b = t64(np.ones(2)), t64(np.zeros(2))
    alone = tricks.virtual_batch_norm(t64(np.r_[ref, x0]), 4, w, b).numpy()[-1]
    crowd = tricks.virtual_batch_norm(t64(np.r_[ref, 10 * rng.standard_normal((3, 2)), x0]), 4, w, b)
    np.testing.assert_allclose(crowd.numpy()[-1], alone)


@pytest.mark.parametrize("shape", [(5, 2), (3, 2, 2, 1)])
def test_virtual_batch_norm_gradcheck_and_gradgradcheck(shape):
    rng = np.random.default_rng(4)
    x = t64(rng.standard_normal(shape), grad=True)
    w = t64(rng.standard_normal(shape[1]), grad=True)
    b = t64(rng.standard_normal(shape[1]), grad=True)
    n_ref = shape[0] - 2 if len(shape) == 2 else 2

    def fn(x, w, b):
        return tricks.virtual_batch_norm(x, n_ref, w, b)
    assert tinygan.gradcheck(fn, [x, w, b])
    assert tinygan.gradgradcheck(fn, [x, w, b])


def test_virtual_bn_swaps_every_generator_batch_norm():
    v = create("dcgan", (1, 8, 8), config=dict(z_dim=4, ngf=4, ndf=4, virtual_bn=True, vbn_ref_size=3))
    kinds = [type(m).__name__ for m in v.G.modules()]
    assert "BatchNorm2d" not in kinds and kinds.count("VirtualBatchNorm") == 1
    assert v.G.ref_input.shape == (3, 4)
    z = v.fixed_noise(5)
    one_by_one = np.concatenate([v.sample(1, z=z[i:i + 1]) for i in range(5)])
    np.testing.assert_allclose(v.sample(5, z=z), one_by_one, atol=1e-5)   # no batch coupling


def test_virtual_bn_refuses_a_generator_without_batch_norm():
    with pytest.raises(ValueError, match="virtual_bn"):
        create("gan", (2,), config=dict(virtual_bn=True))


# -- historical averaging -------------------------------------------------------------------
def test_historical_average_mean_and_penalty_by_hand():
    p = tinygan.nn.Parameter(np.array([1.0, 2.0]))
    h = tricks.HistoricalAverage([p])
    h.update()                                   # θ[1] = (1, 2)
    p.data[...] = [3.0, 2.0]
    h.update()                                   # θ[2] = (3, 2): mean (2, 2)
    p.data[...] = [5.0, -1.0]
    h.update()                                   # mean of (1,2), (3,2), (5,-1) = (3, 1)
    np.testing.assert_allclose(h.mean0.numpy(), [3.0, 1.0])
    pen = h.penalty()
    assert pen.item() == pytest.approx((5 - 3) ** 2 + (-1 - 1) ** 2)
    pen.backward()
    np.testing.assert_allclose(p.grad.numpy(), [4.0, -4.0])        # 2 (θ − θ̄), θ̄ constant
    assert int(h.count.item()) == 3


# -- one-sided label smoothing --------------------------------------------------------------
def test_one_sided_label_smoothing_by_hand():
    real, fake = t64([0.5, -1.0]), t64([2.0])

    def bce(l, t):
        s = 1 / (1 + math.exp(-l))
        return -(t * math.log(s) + (1 - t) * math.log(1 - s))
    want = (bce(0.5, 0.9) + bce(-1.0, 0.9)) / 2 + bce(2.0, 0.0)    # fakes keep target 0
    assert losses.d_loss_gan(real, fake, 0.9).item() == pytest.approx(want)
    want_ls = 0.5 * ((0.5 - 0.9) ** 2 + (-1 - 0.9) ** 2) / 2 + 0.5 * 4.0
    assert losses.d_loss_least_squares(real, fake, 0.9).item() == pytest.approx(want_ls)


# -- each option changes the training step, trains finite, and survives a checkpoint ----------
TRICK_CASES = [("feature_matching", True), ("minibatch_disc", True), ("historical_avg", 0.5),
               ("virtual_bn", True), ("label_smoothing", 0.9)]
SMALL = dict(z_dim=4, ngf=4, ndf=4, mbd_kernels=4, mbd_dim=3, vbn_ref_size=4)


def _two_steps(name, config, labels):
    backend.manual_seed(0)
    rng = np.random.default_rng(0)
    v = create(name, (1, 8, 8), num_classes=3 if labels else None, config=config)
    logs = []
    for _ in range(2):
        x = Tensor(np.tanh(rng.standard_normal((4, 1, 8, 8))).astype(np.float32))
        y = Tensor(rng.integers(0, 3, 4)) if labels else None
        logs.append(v.train_step(x, y))
    return v, logs


@pytest.mark.parametrize("variant", ["dcgan", "cgan", "lsgan"])
@pytest.mark.parametrize("key,value", TRICK_CASES)
def test_each_trick_changes_training_and_stays_finite(variant, key, value):
    base = dict(SMALL, arch="dcgan") if variant != "dcgan" else dict(SMALL)
    labels = variant == "cgan"
    plain, _ = _two_steps(variant, base, labels)
    tricked, logs = _two_steps(variant, dict(base, **{key: value}), labels)
    assert all(math.isfinite(v) for log in logs for v in log.values())
    z = plain.fixed_noise(4)
    # (exact inequality: Adam's first steps are ≈ lr·sign(g), so a small change of the loss,
    # like the real target 1 → 0.9, moves the weights only slightly)
    assert not np.array_equal(plain.sample(4, z=z), tricked.sample(4, z=z))
    if key == "historical_avg":
        assert logs[1]["hist_D"] > 0 and logs[1]["hist_G"] > 0
    # checkpoint round trip: the averages, the reference batch, T all come back
    again = create(variant, (1, 8, 8), num_classes=3 if labels else None,
                   config=dict(base, **{key: value}))
    again.load_state_dict(tricked.state_dict())
    np.testing.assert_array_equal(again.sample(4, z=z), tricked.sample(4, z=z))


@pytest.mark.parametrize("key,value", [("feature_matching", True), ("minibatch_disc", True),
                                       ("historical_avg", 0.5), ("label_smoothing", 0.9)])
def test_tricks_work_on_the_toy_mlps(key, value):
    ds = datasets.load("ring8", n=64)
    backend.manual_seed(0)
    v = create("gan", (2,), config={"toy_hidden": 16, "z_dim": 4, key: value})
    for k in range(2):
        out = v.train_step(Tensor(ds.x[8 * k:8 * k + 8]))
        assert all(math.isfinite(val) for val in out.values())


# -- cgan on the 2-D toys -------------------------------------------------------------------
def test_cgan_trains_on_ring8_with_mode_labels():
    ds = datasets.load("ring8", n=256)
    assert ds.num_classes == 8
    # the toy label is the index of the nearest mode centre (std 0.02 ≪ spacing)
    nearest = np.linalg.norm(ds.x[:, None] - ds.mode_centers[None], axis=-1).argmin(1)
    np.testing.assert_array_equal(nearest, ds.labels)
    backend.manual_seed(0)
    v = create("cgan", (2,), num_classes=8, config=dict(toy_hidden=32, z_dim=4))
    before = v.sample(16, z=v.fixed_noise(16))
    for k in range(3):
        out = v.train_step(Tensor(ds.x[16 * k:16 * k + 16]), Tensor(ds.labels[16 * k:16 * k + 16]))
        assert all(math.isfinite(val) for val in out.values())
    after = v.sample(16, z=v.fixed_noise(16))
    assert after.shape == (16, 2) and not np.allclose(before, after)
