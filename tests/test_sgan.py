"""sgan (Salimans et al. 2016, semi-supervised): its three D losses and G's feature matching by
hand on tiny batches, the label split, the weight-normalised layers' data-dependent init,
checkpoints, exact resume, and `tinygan eval`'s held-out accuracy."""
import json

import numpy as np
import pytest

import tinygan
from tinygan import Tensor, data
from tinygan.gans import create, sgan
from tinygan.gans.sgan_nets import WNLinear
from tinygan.train import train
from resume_check import assert_resume_is_exact
from oracles import softplus

IMG = (1, 28, 28)
TINY = dict(z_dim=8, d_hidden=(16, 8), g_hidden=(16,))


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


def lse(a):
    m = a.max(1)
    return m + np.log(np.exp(a - m[:, None]).sum(1))


LOGITS = np.array([[2.0, -1.0, 0.5], [-3.0, -2.5, -4.0], [0.0, 0.0, 0.0], [5.0, 1.0, -1.0]])


# -- the losses by hand ---------------------------------------------------------------------
def test_labelled_loss_is_cross_entropy_over_the_k_logits():
    y = np.array([0, 2, 1, 0])
    want = np.mean(lse(LOGITS) - LOGITS[np.arange(4), y])
    got = sgan.labelled_loss(Tensor(LOGITS), Tensor(y)).item()
    assert got == pytest.approx(want, rel=1e-12)


def test_unlabelled_and_fake_losses_are_minus_log_d_with_d_z_over_z_plus_1():
    Z = np.exp(LOGITS).sum(1)                      # D(x) = Z / (Z + 1), the (K+1)-th logit 0
    want_unl = np.mean(-np.log(Z / (Z + 1)))
    want_fake = np.mean(-np.log(1 / (Z + 1)))
    # ... which is the softplus / logsumexp form the variant computes
    assert want_unl == pytest.approx(np.mean(softplus(lse(LOGITS)) - lse(LOGITS)), rel=1e-12)
    assert want_fake == pytest.approx(np.mean(softplus(lse(LOGITS))), rel=1e-12)
    assert sgan.unlabelled_loss(Tensor(LOGITS)).item() == pytest.approx(want_unl, rel=1e-12)
    assert sgan.fake_loss(Tensor(LOGITS)).item() == pytest.approx(want_fake, rel=1e-12)


def test_unlabelled_and_fake_gradients_by_hand():
    """d/dl of E[softplus(lse) − lse] = (D − 1) softmax(l) / N; of E[softplus(lse)]:
    D softmax(l) / N, with D = Z / (Z + 1)."""
    soft = np.exp(LOGITS - lse(LOGITS)[:, None])
    D = (np.exp(LOGITS).sum(1) / (np.exp(LOGITS).sum(1) + 1))[:, None]
    for loss, want in ((sgan.unlabelled_loss, (D - 1) * soft / 4), (sgan.fake_loss, D * soft / 4)):
        t = Tensor(LOGITS.copy(), requires_grad=True)
        loss(t).backward()
        np.testing.assert_allclose(t.grad.data, want, rtol=1e-10, atol=1e-14)


def test_d_step_descends_l_lab_plus_half_w_of_unl_and_fake_and_g_matches_features():
    """One train_step's logged losses, recomputed by hand from the same draws, and G's
    feature-matching loss = ‖mean f(real) − mean f(fake)‖² over D's last hidden layer."""
    tinygan.manual_seed(0)
    m = create("sgan", IMG, num_classes=10, config=dict(TINY, input_noise=0.0, hidden_noise=0.0))
    ds = data.load("mnist-subset")
    m.training_data(ds)
    x = Tensor(ds.x[:5])
    m.D.init_from_data(m.to_net(x))
    with tinygan.no_grad():
        state = tinygan.backend.rng_state()
        fake = m.G(m.sample_z(5))
        lab = m.D(m.to_net(m.x_lab)).data
        unl, fk = m.D(m.to_net(x)).data, m.D(fake).data
        tinygan.backend.set_rng_state(state)
    logs = m.train_step(x)
    l_lab = np.mean(lse(lab) - lab[np.arange(len(lab)), m.y_lab.data])
    l_unl = np.mean(softplus(lse(unl)) - lse(unl))
    l_fake = np.mean(softplus(lse(fk)))
    assert logs["loss_lab"] == pytest.approx(l_lab, rel=1e-5)
    assert logs["loss_unl"] == pytest.approx(l_unl, rel=1e-5)
    assert logs["loss_fake"] == pytest.approx(l_fake, rel=1e-5)
    assert logs["loss_D"] == pytest.approx(l_lab + 0.5 * (l_unl + l_fake), rel=1e-5)
    # G's loss: the feature statistics of a fresh batch of fakes against the real batch.
    state = tinygan.backend.rng_state()
    with tinygan.no_grad():
        f_real = m.D.features(m.to_net(x)).data
        f_fake = m.D.features(m.G(m.sample_z(5))).data
    tinygan.backend.set_rng_state(state)
    want = ((f_real.mean(0) - f_fake.mean(0)) ** 2).sum()
    with tinygan.no_grad():
        got = tinygan.gans.tricks.feature_matching_loss(Tensor(f_real), Tensor(f_fake)).item()
    assert got == pytest.approx(want, rel=1e-6)


# -- the split ------------------------------------------------------------------------------
def test_split_is_ten_labels_a_class_disjoint_from_held_out_and_deterministic():
    labels = data.load("mnist-subset").labels
    lab, pool, held = sgan.split_indices(labels, 10)
    assert len(lab) == 100 and np.bincount(labels[lab], minlength=10).tolist() == [10] * 10
    assert len(held) == 1000 and np.bincount(labels[held], minlength=10).tolist() == [100] * 10
    assert not set(lab) & set(held) and not set(pool) & set(held)
    assert set(lab) <= set(pool) and len(pool) + len(held) == len(labels)
    again = sgan.split_indices(labels, 10)
    assert all(np.array_equal(a, b) for a, b in zip((lab, pool, held), again))
    # another label_seed picks other labels, the held-out set stays where it is
    lab2, _, held2 = sgan.split_indices(labels, 10, label_seed=1)
    assert np.array_equal(held, held2) and not np.array_equal(lab, lab2)
    with pytest.raises(ValueError, match="class 0 has"):
        sgan.split_indices(labels, 10, labels_per_class=10, test_per_class=495)


def test_training_data_is_the_unlabelled_pool_without_held_out_digits_or_labels():
    ds = data.load("mnist-subset")
    m = create("sgan", IMG, num_classes=10, config=TINY)
    pool = m.training_data(ds)
    _, _, held = sgan.split_indices(ds.labels, 10)
    assert pool.labels is None and len(pool) == len(ds) - len(held) == 4000
    # the pool's images are exactly the non-held-out ones (compared by content)
    seen = sorted(bytes(img) for img in pool.data)
    assert seen == sorted(bytes(img) for img in ds.data[np.setdiff1d(np.arange(len(ds)), held)])
    assert m.x_lab.shape == (100, *IMG) and np.bincount(m.y_lab.data).tolist() == [10] * 10


# -- the nets -------------------------------------------------------------------------------
def test_weight_norm_data_init_gives_unit_preactivations():
    tinygan.manual_seed(0)
    layer = WNLinear(6, 4)
    x = Tensor(np.random.default_rng(1).normal(2.0, 3.0, (50, 6)).astype(np.float32))
    before = layer.forward(x).data
    assert np.abs(before.mean(0)).max() > 0.1          # not already standardised
    out = layer.init_from_data(x).data
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(layer.forward(x).data, out, rtol=1e-6, atol=1e-6)
    # W = g V / ‖V‖ row by row: each row's norm is its g, whatever V's scale
    W = layer.weight().data
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), layer.g.data, rtol=1e-5)
    assert "g" not in dict(layer.named_parameters()) and "g" in dict(layer.named_buffers())


def test_running_average_of_d_by_hand():
    tinygan.manual_seed(0)
    a, b = (sgan.make_classifier(IMG, 10, dict(TINY, input_noise=0.3, hidden_noise=0.5))
            for _ in range(2))
    before = {k: v.copy() for k, v in a.state_dict().items()}
    sgan.average_into(a, b, 0.9)
    after, other = a.state_dict(), b.state_dict()
    assert after.keys() == other.keys() and "head.g" in after and "layers.0.g" in after
    for k in after:
        np.testing.assert_allclose(after[k], 0.9 * before[k] + 0.1 * other[k], rtol=1e-6, atol=1e-7)


def test_noise_only_in_training_mode():
    tinygan.manual_seed(0)
    m = create("sgan", IMG, num_classes=10, config=TINY)
    x = Tensor(np.zeros((3, *IMG), np.float32))
    m.D.eval()
    a, b = m.D(x).data, m.D(x).data
    np.testing.assert_array_equal(a, b)
    m.D.train()
    assert not np.array_equal(m.D(x).data, m.D(x).data)


# -- checkpoints, resume, eval --------------------------------------------------------------
def test_learning_rate_decays_linearly_to_zero_over_the_run():
    ds = data.load("mnist-subset")
    tinygan.manual_seed(0)
    m = create("sgan", IMG, num_classes=10, config=TINY)
    m.training_data(ds)
    m.total_steps = 4
    for t in range(4):
        m.steps_done = t
        m.train_step(Tensor(ds.x[:4]))
        for opt in (m.opt_D, m.opt_G):
            assert opt.param_groups[0]["lr"] == pytest.approx(3e-3 * (1 - t / 4))


def test_checkpoint_round_trip(tmp_path):
    from tinygan import checkpoint
    ds = data.load("mnist-subset")
    x = Tensor(ds.x[:6])
    tinygan.manual_seed(0)
    m = create("sgan", IMG, num_classes=10, config=TINY)
    m.training_data(ds)
    m.train_step(x)
    path = checkpoint.save(str(tmp_path / "m.npz"), {"variant": m.state_dict()})
    state, _ = checkpoint.load(path)
    assert "initialised" in state["variant"]["nets"]["D"]
    tinygan.manual_seed(1)
    m2 = create("sgan", IMG, num_classes=10, config=TINY)
    m2.training_data(ds)
    m2.load_state_dict(state["variant"])
    z = m.fixed_noise(6)
    np.testing.assert_array_equal(m.sample(6, z=z), m2.sample(6, z=z))
    xt, yt = sgan.held_out_set(ds, m.config)
    assert sgan.accuracy(m.D_avg, xt, yt) == sgan.accuracy(m2.D_avg, xt, yt)
    tinygan.manual_seed(5)
    a = m.train_step(x)
    tinygan.manual_seed(5)
    assert m2.train_step(x) == a


def test_resume_is_bit_for_bit(tmp_path):
    """6 steps in one go == 3 steps, stop, resume for 3 more (the data-dependent init must not
    run again, the labelled set must be the same).  The learning rate is held constant: with
    the linear decay a 3-step run decays over its own 3 steps (as every variant's does)."""
    cfg = dict(variant="sgan", data="mnist-subset", batch_size=4, progress=False,
               options=dict(TINY, lr_decay="none"))
    assert_resume_is_exact(tmp_path, cfg, steps=6, stop=3)


def test_eval_reports_held_out_accuracy_and_the_baseline_s(tmp_path, capsys):
    from tinygan.cli import main
    run = str(tmp_path / "run")
    train(variant="sgan", data="mnist-subset", batch_size=8, progress=False, steps=3, out=run,
          options=TINY)
    assert main(["eval", run, "--n", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_test"] == 1000 and out["n_labels"] == 100 and out["baseline_steps"] == 3
    for key in ("test_accuracy", "baseline_test_accuracy"):
        assert 0.0 <= out[key] <= 1.0
        assert out[key.replace("accuracy", "error")] == pytest.approx(1 - out[key], abs=1e-4)
    # the figures are the checkpoint's averaged D on the held-out set, and the baseline is deterministic
    from tinygan.checkpoint import build_from_checkpoint
    m, _, _ = build_from_checkpoint(run)
    ds = data.load("mnist-subset")
    xt, yt = sgan.held_out_set(ds, m.config)
    assert round(sgan.accuracy(m.D_avg, xt, yt), 4) == out["test_accuracy"]
    pred = sgan.predict(m.D_avg, xt)
    assert out["test_accuracy_per_class"] == [round(float((pred[yt == k] == k).mean()), 4)
                                              for k in range(10)]
    assert main(["eval", run, "--n", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["baseline_test_accuracy"] == out["baseline_test_accuracy"]


def test_needs_labelled_images():
    with pytest.raises(ValueError, match="labelled dataset"):
        create("sgan", IMG, num_classes=None, config=TINY)
    with pytest.raises(ValueError, match="image data only"):
        create("sgan", (2,), num_classes=8, config=TINY)
