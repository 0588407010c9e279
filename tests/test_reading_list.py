"""acgan, sngan and the R1 penalty: loss math by hand on tiny batches, the Dirac-GAN of
Mescheder et al. (R1 makes it converge), spectral norm in sngan's D, checkpoints, exact resume."""
import copy

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import Tensor, nn
from tinygan.autograd import grad
from tinygan.gans import create, losses
from tinygan.train import train
from resume_check import assert_resume_is_exact
from oracles import softplus

IMG = (1, 28, 28)
TINY = {"acgan": dict(ngf=4, ndf=4, z_dim=8),
        "sngan": dict(ngf=4, ndf=4, z_dim=8, n_dis=2)}


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


def digits(n=6, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, (n, *IMG)).astype(np.float32))


def cross_entropy(logits, labels):
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    return float(np.mean(lse - logits[np.arange(len(labels)), labels]))


# -- the losses by hand -----------------------------------------------------------------------------
def test_hinge_and_class_losses_by_hand():
    real, fake = np.array([2.0, 0.5, -1.0]), np.array([-3.0, 0.0, 0.25])
    d = losses.d_loss_hinge(Tensor(real), Tensor(fake)).item()
    assert d == pytest.approx(np.mean([0, 0.5, 2.0]) + np.mean([0, 1.0, 1.25]))
    assert losses.g_loss_hinge(Tensor(fake)).item() == pytest.approx(-np.mean(fake))
    logits, labels = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 5.0]]), np.array([1, 0])
    assert losses.class_loss(Tensor(logits), Tensor(labels)).item() == pytest.approx(
        cross_entropy(logits, labels))


def test_r1_penalty_by_hand_and_its_gradient_reaches_d():
    """D(x) = a·Σx² + w·x: ∇x D = 2a x + w, penalty γ/2 · mean_i ‖2a x_i + w‖²; its derivative in
    a (a double backward) is γ/2 · mean_i 2⟨2a x_i + w, 2 x_i⟩."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    a = Tensor(np.array(0.7), requires_grad=True)
    w = Tensor(rng.standard_normal(3), requires_grad=True)
    D = lambda t: a * (t * t).sum(dim=1) + (t * w).sum(dim=1)      # noqa: E731
    gamma = 3.0
    pen = losses.r1_penalty(D, Tensor(x), gamma)
    g = 2 * 0.7 * x + w.data
    assert pen.item() == pytest.approx(gamma / 2 * np.mean((g ** 2).sum(1)), rel=1e-12)
    da, dw = grad(pen, [a, w])
    assert da.item() == pytest.approx(gamma / 2 * np.mean(2 * (g * 2 * x).sum(1)), rel=1e-12)
    np.testing.assert_allclose(dw.data, gamma / 2 * np.mean(2 * g, 0), rtol=1e-12)


# -- the Dirac-GAN (Mescheder, Geiger & Nowozin 2018, §2) ---------------------------------------------
def dirac_gan(gamma, alternating, zero_sum=True, start=(1.0, 1.0), steps=300, h=0.1):
    """G = θ (a point mass), D(x) = ψ·x, real data at 0; the unique equilibrium is (0, 0).
    Gradient steps on the gan losses (G: the zero-sum −L_D of the paper's analysis, or the
    non-saturating loss), simultaneous or alternating.  Returns the distance to (0, 0) per step
    and θ's trajectory."""
    theta, psi = start
    real = Tensor(np.zeros((1, 1)))
    radius, thetas = [], []
    for _ in range(steps):
        T = Tensor(np.array([[theta]]), requires_grad=True)
        P = Tensor(np.array(psi), requires_grad=True)
        D = lambda x: (P * x).reshape(-1)          # noqa: E731
        loss_D = losses.d_loss_gan(D(real), D(T.detach()))
        if gamma:
            loss_D = loss_D + losses.r1_penalty(D, real, gamma)
        gP, = grad(loss_D, P)
        if alternating:                             # G answers the updated D
            psi -= h * gP.item()
            P = Tensor(np.array(psi))
        loss_G = -losses.d_loss_gan(D(real), D(T)) if zero_sum else losses.g_loss_nonsaturating(D(T))
        gT, = grad(loss_G, T)
        if not alternating:
            psi -= h * gP.item()
        theta -= h * gT.item()
        radius.append(np.hypot(theta, psi))
        thetas.append(theta)
    return np.array(radius), np.array(thetas)


def test_dirac_gan_circles_or_spirals_out_without_r1_and_converges_with_it():
    r0 = np.hypot(1.0, 1.0)
    # simultaneous steps: the unregularised game spirals away from the equilibrium
    radius, _ = dirac_gan(0.0, alternating=False)
    assert radius[-1] > 1.25 * r0 and radius.min() > 0.99 * r0
    # alternating steps: it circles — never closer than 97 % of the start, θ changes sign
    radius, thetas = dirac_gan(0.0, alternating=True)
    assert radius.min() > 0.97 * r0 and thetas.min() < -0.5 < 0.5 < thetas.max()
    # with R1 both converge to (0, 0)
    for alternating in (False, True):
        radius, _ = dirac_gan(1.0, alternating)
        assert radius[-1] < 1e-3, alternating
    # the non-saturating G loss behaves the same near the equilibrium
    radius, _ = dirac_gan(0.0, False, zero_sum=False, start=(0.1, 0.1), steps=600)
    assert radius[-1] > 1.5 * radius[0]
    radius, _ = dirac_gan(1.0, False, zero_sum=False, start=(0.1, 0.1), steps=600)
    assert radius[-1] < 1e-3 * radius[0]


def test_r1_option_adds_exactly_the_penalty_to_dcgan_and_gan():
    for name, cfg, x in (("dcgan", dict(ngf=4, ndf=4), digits(4)),
                         ("gan", dict(z_dim=4, toy_hidden=8), Tensor(np.ones((4, 2), np.float32)))):
        shape = tuple(x.shape[1:])
        tinygan.manual_seed(0)
        plain = create(name, shape, config=dict(cfg, r1=0.0))
        tinygan.manual_seed(0)
        with_r1 = create(name, shape, config=dict(cfg, r1=5.0))
        expected = losses.r1_penalty(copy.deepcopy(with_r1).D, with_r1.to_net(x), 5.0).item()
        assert expected > 0
        tinygan.manual_seed(1)
        a = plain.train_step(x)["loss_D"]
        tinygan.manual_seed(1)
        b = with_r1.train_step(x)["loss_D"]
        assert b - a == pytest.approx(expected, rel=1e-4), name


# -- acgan -----------------------------------------------------------------------------------------
def test_acgan_losses_by_hand():
    """Replay one step on a copy: D's L_S + L_C on real and fake, then G's non-saturating −L_S
    + L_C with fresh fakes through the updated D, each recomputed in NumPy from D's outputs."""
    tinygan.manual_seed(0)
    m = create("acgan", IMG, num_classes=10, config=TINY["acgan"])
    x, y = digits(6), np.array([0, 1, 2, 3, 4, 9])
    r = copy.deepcopy(m)
    tinygan.manual_seed(3)
    c = r.random_labels(6)
    fake = r.G(r.sample_z(6), c).detach()
    out_real, out_fake = r.D(r.to_net(x)).data, r.D(fake).data
    assert out_real.shape == (6, 11)
    loss_D = (np.mean(softplus(-out_real[:, 0])) + np.mean(softplus(out_fake[:, 0]))
              + cross_entropy(out_real[:, 1:], y) + cross_entropy(out_fake[:, 1:], c.data))
    r.update("D", losses.d_loss_gan(*(r.heads(t)[0] for t in (r.to_net(x), fake)))
             + losses.class_loss(r.heads(r.to_net(x))[1], Tensor(y))
             + losses.class_loss(r.heads(fake)[1], c))
    c2 = r.random_labels(6)
    out = r.D(r.G(r.sample_z(6), c2)).data
    loss_G = np.mean(softplus(-out[:, 0])) + cross_entropy(out[:, 1:], c2.data)
    tinygan.manual_seed(3)
    logs = m.train_step(x, Tensor(y))
    assert logs["loss_D"] == pytest.approx(loss_D, rel=1e-5)
    assert logs["class_real"] == pytest.approx(cross_entropy(out_real[:, 1:], y), rel=1e-5)
    assert logs["loss_G"] == pytest.approx(loss_G, rel=1e-5)


def test_acgan_shapes_and_labels():
    tinygan.manual_seed(0)
    m = create("acgan", IMG, num_classes=10, config=TINY["acgan"])
    assert m.sample(5).shape == (5, *IMG)
    src, cls = m.heads(m.to_net(digits(3)))
    assert src.shape == (3,) and cls.shape == (3, 10)
    with pytest.raises(ValueError, match="needs the labels y"):
        m.train_step(digits(3))
    with pytest.raises(ValueError, match="needs a labelled dataset"):
        create("acgan", IMG, config=TINY["acgan"])


# -- sngan -----------------------------------------------------------------------------------------
def test_sngan_every_d_weight_is_normalised_to_spectral_norm_one():
    tinygan.manual_seed(0)
    m = create("sngan", IMG, config=TINY["sngan"])
    layers = [l for l in m.D.modules() if isinstance(l, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 4 and all("weight_orig" in dict(l.named_parameters()) for l in layers)
    assert not any("weight_orig" in k for k in m.G.state_dict())
    assert not any(isinstance(l, nn.BatchNorm2d) for l in m.D.modules())
    x = m.to_net(digits(2))
    for _ in range(80):                        # weights fixed: the power iterations converge
        m.D(x)
    for l in layers:
        w = l.weight.data.reshape(l.weight.shape[0], -1).astype(np.float64)
        assert np.linalg.svd(w, compute_uv=False)[0] == pytest.approx(1.0, abs=2e-3)


def test_sngan_hinge_step_by_hand_and_g_every_n_dis_steps():
    tinygan.manual_seed(0)
    m = create("sngan", IMG, config=dict(TINY["sngan"], r1=2.0))
    x = digits(4)
    r = copy.deepcopy(m)
    tinygan.manual_seed(3)
    fake = r.G(r.sample_z(4)).detach()
    scores = r.D(F.cat([r.to_net(x), fake], dim=0)).data
    hinge = np.mean(np.maximum(0, 1 - scores[:4])) + np.mean(np.maximum(0, 1 + scores[4:]))
    penalty = losses.r1_penalty(r.D, r.to_net(x), 2.0).item()
    params_G = lambda: [p.data.copy() for p in m.G.parameters()]     # noqa: E731 (BN stats move)
    g_before = params_G()
    tinygan.manual_seed(3)
    logs = m.train_step(x)                    # steps_done 0: step 1 of n_dis = 2, D only
    assert logs["loss_D"] == pytest.approx(hinge, rel=1e-5)
    assert logs["r1"] == pytest.approx(penalty, rel=1e-4)
    assert "loss_G" not in logs
    assert all(np.array_equal(a, b) for a, b in zip(g_before, params_G()))
    m.steps_done = 1
    logs = m.train_step(x)                    # step 2: D, then G
    assert "loss_G" in logs
    assert all(not np.array_equal(a, b) for a, b in zip(g_before, params_G()))


# -- checkpoints and exact resume ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["acgan", "sngan"])
def test_checkpoint_round_trip(name, tmp_path):
    from tinygan import checkpoint
    k = 10 if name == "acgan" else None
    x, y = digits(6), Tensor(np.arange(6) % 10)
    tinygan.manual_seed(0)
    m = create(name, IMG, num_classes=k, config=TINY[name])
    m.train_step(x, y)
    path = checkpoint.save(str(tmp_path / "m.npz"), {"variant": m.state_dict()})
    state, _ = checkpoint.load(path)
    if name == "sngan":
        assert any(key.endswith("weight_u") for key in state["variant"]["nets"]["D"])
    tinygan.manual_seed(1)
    m2 = create(name, IMG, num_classes=k, config=TINY[name])
    m2.load_state_dict(state["variant"])
    z = m.fixed_noise(6)
    np.testing.assert_array_equal(m.sample(6, z=z), m2.sample(6, z=z))
    tinygan.manual_seed(5)
    a = m.train_step(x, y)
    tinygan.manual_seed(5)
    assert m2.train_step(x, y) == a


@pytest.mark.parametrize("name, options", [("acgan", TINY["acgan"]),
                                           ("sngan", dict(TINY["sngan"], r1=1.0))])
def test_resume_is_bit_for_bit(tmp_path, name, options):
    """2N steps in one go == N steps, stop, resume for N more (sngan: the stop falls between
    a D-only step and a D+G step, and u, v of every normalised layer must carry over)."""
    cfg = dict(variant=name, data="mnist-subset", batch_size=4, progress=False, options=options)
    _, a = assert_resume_is_exact(tmp_path, cfg, steps=6, stop=3)
    assert any(k.endswith("weight_u") for k in a) == (name == "sngan")


def test_eval_scores_acgan_s_class_agreement(tmp_path):
    """acgan is conditional: `tinygan eval` asks for classes 0..9 in turn and reports how often
    the shipped classifier reads them back (the metric every conditional variant shares)."""
    from tinygan.metrics import evaluate_checkpoint
    run = str(tmp_path / "run")
    train(variant="acgan", data="mnist-subset", batch_size=4, progress=False, steps=1, out=run,
          options=TINY["acgan"])
    out = evaluate_checkpoint(run, n=20)
    assert 0.0 <= out["class_agreement"] <= 1.0 and len(out["class_agreement_per_class"]) == 10
