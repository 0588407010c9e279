"""cogan (Liu & Tuzel 2016): shared layers are one set of parameters whose gradient sums both
GANs', the losses by hand, the two-domain data from disjoint halves, the pixel-agreement
metric, checkpoints, exact resume and `tinygan eval`."""
import copy

import numpy as np
import pytest

import tinygan
from tinygan import Tensor, data
from tinygan.data import digit_domains as dd
from tinygan.data.two_domains import domain_halves, split_pair, transform_of
from tinygan.gans import create, losses
from tinygan.metrics import coupled_metrics, ink_iou, pixel_agreement
from resume_check import assert_resume_is_exact
from oracles import softplus

SHAPE = (1, 32, 64)
TINY = dict(ngf=4, ndf=4, z_dim=8)


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


def pairs(n=6, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, (n, *SHAPE)).astype(np.float32))


def model(seed=0):
    tinygan.manual_seed(seed)
    return create("cogan", SHAPE, config=TINY)


# -- weight sharing ---------------------------------------------------------------------------------
def grads(module):
    return [None if p.grad is None else np.array(p.grad.data) for p in module.parameters()]


def zero(*modules):
    for m in modules:
        for p in m.parameters():
            p.grad = None


def test_shared_layers_are_one_parameter_set_counted_once():
    m = model()
    ids = [id(p) for p in m.G.parameters()]
    assert len(ids) == len(set(ids))
    n = lambda mod: sum(p.numel() for p in mod.parameters())   # noqa: E731
    assert n(m.G) == n(m.G.shared) + n(m.G.head1) + n(m.G.head2)
    assert n(m.D) == n(m.D.shared) + n(m.D.first1) + n(m.D.first2)
    adam_ids = [id(p) for g in m.opt_G.param_groups for p in g["params"]]
    assert sorted(adam_ids) == sorted(ids)


def test_generator_shared_gradient_is_the_sum_of_both_paths():
    """forward(z) computes the shared layers once for both heads; their gradient must equal
    G1's alone plus G2's alone, each computed by its own call of the shared layers."""
    m = model()
    rng = np.random.default_rng(1)
    z = m.sample_z(5)
    w1, w2 = (Tensor(rng.standard_normal((5, 1, 32, 32)).astype(np.float32)) for _ in range(2))
    a, b = m.G(z)
    ((a * w1).sum() + (b * w2).sum()).backward()
    both = grads(m.G.shared)
    zero(m.G)
    (m.G.g1(z) * w1).sum().backward()
    only1, head2_untouched = grads(m.G.shared), grads(m.G.head2)
    zero(m.G)
    (m.G.g2(z) * w2).sum().backward()
    only2 = grads(m.G.shared)
    assert all(g is None for g in head2_untouched)
    for g, g1, g2 in zip(both, only1, only2):
        assert np.abs(g1).max() > 0 and np.abs(g2).max() > 0
        np.testing.assert_allclose(g, g1 + g2, rtol=1e-4, atol=1e-5 * np.abs(g).max())


def test_discriminator_shared_gradient_is_the_sum_of_both_domains():
    m = model()
    x = pairs(4)
    x1, x2 = m.split(x)
    r1, r2 = m.D(x1, x2)
    (r1.sum() * 2.0 + r2.sum()).backward()
    both, first2 = grads(m.D.shared), grads(m.D.first2)
    zero(m.D)
    (m.D.d1(x1).sum() * 2.0).backward()
    only1 = grads(m.D.shared)
    assert all(g is None for g in grads(m.D.first2))
    zero(m.D)
    m.D.d2(x2).sum().backward()
    only2 = grads(m.D.shared)
    for g, g1, g2 in zip(both, only1, only2):
        np.testing.assert_allclose(g, g1 + g2, rtol=1e-4, atol=1e-5 * np.abs(g).max())
    np.testing.assert_allclose(first2[0], grads(m.D.first2)[0], rtol=1e-5, atol=1e-7)


# -- the losses by hand ---------------------------------------------------------------------------
def test_losses_by_hand():
    """Replay one step on a copy: D1 and D2 on real and detached fakes, then G1 and G2 (the same
    z) through the updated D, each loss recomputed in NumPy from the logits."""
    m = model()
    x = pairs(6)
    r = copy.deepcopy(m)
    tinygan.manual_seed(3)
    f1, f2 = (f.detach() for f in r.G(r.sample_z(6)))
    x1, x2 = r.split(x)
    assert f1.shape == x1.shape == (6, 1, 32, 32)
    (r1, r2), (q1, q2) = r.D(x1, x2), r.D(f1, f2)
    d_gan = lambda real, fake: np.mean(softplus(-real)) + np.mean(softplus(fake))   # noqa: E731
    loss_D1, loss_D2 = d_gan(r1.data, q1.data), d_gan(r2.data, q2.data)
    r.update("D", losses.d_loss_gan(r1, q1) + losses.d_loss_gan(r2, q2))
    z = r.sample_z(6)
    q1, q2 = (q.data for q in r.D(*r.G(z)))
    tinygan.manual_seed(3)
    logs = m.train_step(x)
    assert logs["loss_D1"] == pytest.approx(loss_D1, rel=1e-5)
    assert logs["loss_D2"] == pytest.approx(loss_D2, rel=1e-5)
    assert logs["loss_D"] == pytest.approx(loss_D1 + loss_D2, rel=1e-5)
    assert logs["loss_G1"] == pytest.approx(np.mean(softplus(-q1)), rel=1e-5)
    assert logs["loss_G2"] == pytest.approx(np.mean(softplus(-q2)), rel=1e-5)
    assert logs["loss_G"] == pytest.approx(logs["loss_G1"] + logs["loss_G2"], rel=1e-5)


def test_samples_are_pairs_side_by_side_and_other_data_is_refused():
    m = model()
    z = m.fixed_noise(3)
    s = m.sample(3, z=z)
    assert s.shape == (3, *SHAPE)
    m.eval()
    a, b = m.G(z)
    np.testing.assert_allclose(s[..., :32], a.data, atol=1e-6)
    np.testing.assert_allclose(s[..., 32:], b.data, atol=1e-6)
    with pytest.raises(ValueError, match="two domains side by side"):
        create("cogan", (1, 28, 28), config=TINY)


# -- the data -------------------------------------------------------------------------------------
def test_domains_come_from_disjoint_halves_and_no_pair_is_seen():
    first, second = domain_halves(5000)
    assert len(first) == len(second) == 2500
    assert not set(first) & set(second) and set(first) | set(second) == set(range(5000))
    digits = data.load("mnist-subset")
    # The shipped digits are sorted by class: the shuffle of half 2 makes the two panels of a
    # sample share their class by chance only (about 1 in 10), not as sorted halves would.
    same = (digits.labels[first] == digits.labels[second]).mean()
    assert 0.05 < same < 0.15
    for name, T in (("digits-negative", dd.negative), ("digits-edges", dd.outline)):
        ds = data.load(name)
        assert ds.shape == (2500, *SHAPE) and ds.labels is None and transform_of(name) is T
        padded = dd.pad_to(digits.data, 32)
        left, right = split_pair(ds.data)
        np.testing.assert_array_equal(left, padded[first])
        np.testing.assert_array_equal(right, T(padded[second]))
    assert data.load("digits-negative").data[0, 0, 0, 40] == 255     # a negative's border is white


# -- the metric -----------------------------------------------------------------------------------
def test_pixel_agreement_by_hand():
    a = np.array([[[[-1.0, 0.5], [0.2, -0.3]]]])
    b = np.array([[[[-0.9, -0.5], [0.9, 0.1]]]])
    assert pixel_agreement(a, b) == 0.5                       # pixels 0 and 2 agree
    assert ink_iou(a, b, background=False) == pytest.approx(1 / 3)   # ink: {1, 2} and {2, 3}
    assert ink_iou(a, b, background=True) == pytest.approx(1 / 3)    # ink: {0, 3} and {0, 1}
    with pytest.raises(ValueError, match="equal"):
        pixel_agreement(a, b[..., :1])


@pytest.mark.parametrize("name", ["digits-negative", "digits-edges"])
def test_coupled_metrics_perfect_pairs_score_one_unrelated_ones_low(name):
    ds, T = data.load(name), transform_of(name)
    d1 = split_pair(ds.data)[0][:300]
    perfect = coupled_metrics(data.to_float(d1), data.to_float(T(d1)), T)
    assert perfect["pixel_agreement"] == 1.0 and perfect["ink_iou"] == 1.0
    assert perfect["pixel_agreement_unpaired"] < 0.92 and perfect["ink_iou_unpaired"] < 0.4
    left, right = split_pair(ds.x[:300])            # real, unrelated panels
    unrelated = coupled_metrics(left, right, T)
    assert unrelated["pixel_agreement"] < 0.9 and unrelated["ink_iou"] < 0.3


# -- checkpoints, resume, eval --------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    from tinygan import checkpoint
    m, x = model(), pairs(6)
    m.train_step(x)
    path = checkpoint.save(str(tmp_path / "m.npz"), {"variant": m.state_dict()})
    state, _ = checkpoint.load(path)
    assert sorted(state["variant"]["nets"]) == ["D", "G"]
    m2 = model(seed=1)
    m2.load_state_dict(state["variant"])
    z = m.fixed_noise(6)
    np.testing.assert_array_equal(m.sample(6, z=z), m2.sample(6, z=z))
    tinygan.manual_seed(5)
    a = m.train_step(x)
    tinygan.manual_seed(5)
    assert m2.train_step(x) == a


def test_resume_is_bit_for_bit_and_eval_reports_pixel_agreement(tmp_path):
    from tinygan.metrics import evaluate_checkpoint
    cfg = dict(variant="cogan", data="digits-edges", batch_size=4, progress=False, options=TINY)
    assert_resume_is_exact(tmp_path, cfg, steps=4, stop=2)
    out = evaluate_checkpoint(str(tmp_path / "straight"), n=20)
    assert out["transform"] == "outline" and out["n_pairs"] == 20
    for k in ("pixel_agreement", "pixel_agreement_unpaired", "ink_iou", "ink_iou_unpaired"):
        assert 0.0 <= out[k] <= 1.0
