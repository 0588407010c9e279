"""The classic variants' algorithms: gan, dcgan, lsgan, wgan, wgan_gp, cgan (and pggan's
n_critic).  Not only that a step runs: each loss equals a hand computation (NumPy, from the
critic's recorded outputs) on a tiny batch, WGAN clips every critic weight to ±c after each
critic step, G moves exactly on every n_critic-th step, a player's update never moves the
other player, and cgan's D sees the labels.

Every config is given explicitly (small nets), so the tests hold whatever the defaults are.
"""
import numpy as np
import pytest

import tinygan
from tinygan.autograd import Tensor
from tinygan.gans import create, losses
from tinygan.nn import Module, Parameter
from oracles import softplus

TOY = (2,)
IMG = (1, 8, 8)
CONFIGS = {     # name: (data shape, config)
    "gan": (TOY, dict(z_dim=3, toy_hidden=8)),
    "dcgan": (IMG, dict(z_dim=4, ngf=4, ndf=4)),
    "lsgan": (TOY, dict(z_dim=3, toy_hidden=8)),
    "wgan": (TOY, dict(z_dim=3, toy_hidden=8, clip=0.05, n_critic=3, lr=1e-3)),
    "wgan_gp": (TOY, dict(z_dim=3, toy_hidden=8, n_critic=3, gp_weight=10.0)),
    "cgan": (TOY, dict(z_dim=3, toy_hidden=8)),
}


def weights(net) -> list:
    return [p.data.copy() for p in net.parameters()]


def moved(before: list, net) -> bool:
    return any(not np.array_equal(b, p.data) for b, p in zip(before, net.parameters()))


def batch(shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    x = Tensor(np.tanh(rng.standard_normal((n, *shape))).astype(np.float32))
    y = Tensor(rng.integers(0, 3, n))
    return x, y


def make(name, **over):
    shape, config = CONFIGS[name]
    tinygan.manual_seed(0)
    v = create(name, shape, num_classes=3 if name == "cgan" else None, config=dict(config, **over))
    return v, batch(shape)


def record(monkeypatch, v):
    """Every call of v.D and v.G, in order: (net, inputs, output, the *other* net's weights at
    that moment) — enough to recompute each loss and to see which update moved which net."""
    calls = []
    for name, other in (("D", "G"), ("G", "D")):
        net, other_net = getattr(v, name), getattr(v, other)

        def wrapped(*args, _f=net.forward, _name=name, _other=other_net):
            out = _f(*args)
            calls.append((_name, [a.detach().numpy().copy() if isinstance(a, Tensor) else a for a in args],
                          out.detach().numpy().astype(np.float64), weights(_other)))
            return out
        monkeypatch.setattr(net, "forward", wrapped)
    return calls


def step(v, x, y):
    """One step as the training loop runs it (train.py counts steps_done after each)."""
    out = v.train_step(x, y if v.needs_labels else None)
    v.steps_done += 1
    return out


# -- the losses, by hand ------------------------------------------------------------------------
R = np.array([[2.0], [-1.0], [0.25]])          # D's outputs on a real batch
Fk = np.array([[0.5], [-3.0], [1.5]])          # ... and on a fake batch


@pytest.mark.parametrize("loss, args, by_hand", [
    (losses.d_loss_gan, (R, Fk), np.mean(softplus(-R)) + np.mean(softplus(Fk))),
    (losses.d_loss_gan, (R, Fk, 0.9), np.mean(softplus(R) - 0.9 * R) + np.mean(softplus(Fk))),
    (losses.g_loss_nonsaturating, (Fk,), np.mean(softplus(-Fk))),
    (losses.d_loss_least_squares, (R, Fk), 0.5 * np.mean((R - 1) ** 2) + 0.5 * np.mean(Fk ** 2)),
    (losses.d_loss_least_squares, (R, Fk, 0.9), 0.5 * np.mean((R - 0.9) ** 2) + 0.5 * np.mean(Fk ** 2)),
    (losses.g_loss_least_squares, (Fk,), 0.5 * np.mean((Fk - 1) ** 2)),
    (losses.d_loss_wasserstein, (R, Fk), -1.0 / 3 - 1.25 / 3),   # E f(fake) - E f(real)
    (losses.g_loss_wasserstein, (Fk,), 1.0 / 3),               # -E f(fake)
])
def test_each_loss_equals_its_hand_computation(loss, args, by_hand):
    got = loss(*[Tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    assert got.shape == ()
    assert got.item() == pytest.approx(by_hand, rel=1e-12)


class QuadraticCritic(Module):
    """f(x) = Σ_j a_j x_j²: ∇x f = 2 a ⊙ x, so the penalty is computable by hand."""

    def __init__(self, a):
        super().__init__()
        self.a = Parameter(np.asarray(a, np.float64))

    def forward(self, x):
        return (x * x * self.a).sum(dim=1)


def test_gradient_penalty_and_its_gradient_in_the_critic_weights_by_hand():
    real = Tensor(np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]]))
    fake = Tensor(np.array([[0.0, 1.0], [2.0, -1.0], [1.0, 1.0]]))
    a = np.array([0.7, -0.3])
    D = QuadraticCritic(a)
    tinygan.manual_seed(5)
    eps = tinygan.rand(3, 1, dtype=np.float64).numpy()       # the draw the penalty will make
    tinygan.manual_seed(5)
    gp = losses.gradient_penalty(D, real, fake, weight=10.0)
    x_hat = eps * real.numpy() + (1 - eps) * fake.numpy()
    g = 2 * a * x_hat                                        # ∇x̂ f, per sample
    norm = np.sqrt((g ** 2).sum(1) + 1e-12)
    assert gp.item() == pytest.approx(10.0 * np.mean((norm - 1) ** 2), rel=1e-10)
    # The penalty reaches the critic's weights through ∇x̂ f (a second derivative):
    # d/da_j of 10 mean((‖g‖ - 1)²) = 10 mean(2 (‖g‖ - 1) · 4 a_j x̂_j² / ‖g‖).
    gp.backward()
    want = 10.0 * np.mean(2 * (norm - 1)[:, None] * 4 * a * x_hat ** 2 / norm[:, None], axis=0)
    np.testing.assert_allclose(D.a.grad.numpy(), want, rtol=1e-10)


# -- each variant's step computes those losses on what its critic saw ---------------------------
@pytest.mark.parametrize("name", ["gan", "dcgan", "lsgan", "cgan", "wgan", "wgan_gp"])
def test_logged_losses_are_the_hand_computed_losses_of_the_recorded_critic_outputs(name, monkeypatch):
    v, (x, y) = make(name, **({"n_critic": 1} if name.startswith("wgan") else {}))
    calls = record(monkeypatch, v)
    out = step(v, x, y)
    d_calls, g_calls = [c for c in calls if c[0] == "D"], [c for c in calls if c[0] == "G"]
    np.testing.assert_array_equal(d_calls[0][1][0], v.to_net(x).numpy())   # D saw the real batch,
    np.testing.assert_allclose(d_calls[1][1][0], g_calls[0][2], rtol=1e-6)  # then G's fakes
    real, fake, fake_for_G = (d_calls[k][2].reshape(-1) for k in (0, 1, -1))
    if name in ("gan", "dcgan", "cgan"):
        d = np.mean(softplus(-real)) + np.mean(softplus(fake))
        g = np.mean(softplus(-fake_for_G))
    elif name == "lsgan":
        d = 0.5 * np.mean((real - 1) ** 2) + 0.5 * np.mean(fake ** 2)
        g = 0.5 * np.mean((fake_for_G - 1) ** 2)
    else:
        d = np.mean(fake) - np.mean(real)
        g = -np.mean(fake_for_G)
        assert out["wasserstein"] == pytest.approx(-d, rel=1e-5)
        if name == "wgan_gp":
            assert out["gp"] > 0
            d += out["gp"]                    # its value is checked by hand above
    assert out["loss_D"] == pytest.approx(d, rel=1e-5)
    assert out["loss_G"] == pytest.approx(g, rel=1e-5)


# -- who moves when ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gan", "dcgan", "lsgan", "cgan", "wgan", "wgan_gp"])
def test_each_update_moves_its_own_player_only(name, monkeypatch):
    """A step is G(z), D(x), D(fake), D's update, G(z'), D(G(z')), G's update.  D's update
    leaves G alone: D's last call still sees G's initial weights.  G's update leaves D alone:
    D's weights at G's last call (after D's update) are D's final weights."""
    v, (x, y) = make(name, **({"n_critic": 1} if name.startswith("wgan") else {}))
    g0, d0 = weights(v.G), weights(v.D)
    calls = record(monkeypatch, v)
    step(v, x, y)
    last_d_call = [c for c in calls if c[0] == "D"][-1]
    last_g_call = [c for c in calls if c[0] == "G"][-1]
    assert all(np.array_equal(a, b) for a, b in zip(last_d_call[3], g0))
    assert all(np.array_equal(a, p.data) for a, p in zip(last_g_call[3], v.D.parameters()))
    assert moved(d0, v.D) and moved(g0, v.G)


@pytest.mark.parametrize("name", ["wgan", "wgan_gp", "pggan"])
def test_generator_moves_exactly_on_every_n_critic_th_step(name):
    if name == "pggan":
        tinygan.manual_seed(0)
        v = create("pggan", (1, 28, 28), config=dict(z_dim=8, fmaps=8, steps_per_phase=4, n_critic=3))
        x, y = batch((1, 28, 28), n=4)
    else:
        v, (x, y) = make(name, n_critic=3)
    g_moves, d_moves, logged_G = [], [], []
    for _ in range(7):
        g0, d0 = weights(v.G), weights(v.D)
        out = step(v, x, y)
        g_moves.append(moved(g0, v.G))
        d_moves.append(moved(d0, v.D))
        logged_G.append("loss_G" in out)
    assert g_moves == [False, False, True, False, False, True, False]   # steps 3 and 6
    assert logged_G == g_moves
    assert all(d_moves)                                                 # the critic: every step


def test_wgan_clips_every_critic_weight_to_c_after_each_critic_step():
    c = 0.05
    v, (x, y) = make("wgan", clip=c)
    free, _ = make("wgan", clip=1e9)             # the same run without the box
    assert [w.shape for w in weights(v.D)] == [w.shape for w in weights(free.D)]
    assert max(np.abs(w).max() for w in weights(v.D)) > c    # the init lies outside: clipping acts
    for run in (v, free):
        tinygan.manual_seed(1)                   # the same z for both
        step(run, x, y)
    # after the first critic step: exactly the unclipped update, then boxed to [-c, c]
    for w, w_free in zip(weights(v.D), weights(free.D)):
        np.testing.assert_array_equal(w, np.clip(w_free, -c, c))
    for _ in range(5):                           # and after every later one (G steps included)
        step(v, x, y)
        ws = np.concatenate([w.ravel() for w in weights(v.D)])
        assert np.abs(ws).max() <= c and np.sum(np.abs(ws) == c) > 0


# -- cgan's D sees the labels ---------------------------------------------------------------------
def test_cgan_discriminator_sees_the_labels(monkeypatch):
    v, (x, y) = make("cgan")
    # D's output depends on the label it is given ...
    other = Tensor((y.numpy() + 1) % 3)
    assert not np.allclose(v.D(x, y).detach().numpy(), v.D(x, other).detach().numpy())
    # ... and in a step D judges the real batch with its own labels, the fakes with the labels
    # G drew them for.
    calls = record(monkeypatch, v)
    step(v, x, y)
    d_calls, g_calls = [c for c in calls if c[0] == "D"], [c for c in calls if c[0] == "G"]
    np.testing.assert_array_equal(d_calls[0][1][1], y.numpy())
    for d, g in ((d_calls[1], g_calls[0]), (d_calls[-1], g_calls[-1])):
        np.testing.assert_array_equal(d[1][1], g[1][1])
