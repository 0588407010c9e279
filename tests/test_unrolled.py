"""Unrolled GAN (Metz et al. 2017): the unrolled Adam step, G's second-order loss, K = 0, resume,
and `nn.functional_call`, the parameter substitution the unrolling is built on."""
import numpy as np
import pytest

import tinygan
from tinygan import backend, nn
from tinygan.autograd import Tensor, grad
from tinygan.gans import create, losses
from tinygan.gans.unrolled import adam_step_in_graph
from tinygan.optim import Adam
from tinygan.train import train


def tiny(dtype="float32", **config):
    backend.manual_seed(0)
    m = create("unrolled", (2,), config=dict(dict(z_dim=3, toy_hidden=4), **config))
    if dtype == "float64":
        m.G.double(), m.D.double()
    return m


def batch(n=6, dtype=np.float32, seed=1):
    rng = np.random.default_rng(seed)
    return Tensor(rng.standard_normal((n, 2)).astype(dtype)), \
        Tensor(rng.standard_normal((n, 2)).astype(dtype))


# -- nn.functional_call ---------------------------------------------------------------------
def test_functional_call_substitutes_restores_and_passes_gradients():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = Tensor(np.ones((4, 2), np.float32))
    before = net(x).data.copy()
    w = Tensor(np.zeros((1, 3), np.float32), requires_grad=True)
    out = nn.functional_call(net, {"2.weight": w}, (x,))
    np.testing.assert_allclose(out.data, np.broadcast_to(net[2].bias.data, (4, 1)))
    assert net[2].weight is dict(net.named_parameters())["2.weight"]     # restored
    assert isinstance(net[2].weight, nn.Parameter)
    np.testing.assert_array_equal(net(x).data, before)
    g, = grad(out.sum(), w)                      # d/dw of sum(w · h) = sum of the hidden units
    h = np.maximum(x.data @ net[0].weight.data.T + net[0].bias.data, 0)
    np.testing.assert_allclose(g.data, h.sum(0, keepdims=True), rtol=1e-6)


def test_functional_call_bad_names_and_shapes_and_restores_after_an_error():
    net = nn.Sequential(nn.Linear(2, 3))
    with pytest.raises(KeyError, match="no parameter or buffer '0.wieght'"):
        nn.functional_call(net, {"0.wieght": Tensor(np.zeros((3, 2)))}, (Tensor(np.ones((1, 2))),))
    with pytest.raises(KeyError, match="no submodule '5'"):
        nn.functional_call(net, {"5.weight": Tensor(np.zeros((3, 2)))}, (Tensor(np.ones((1, 2))),))
    with pytest.raises(ValueError, match="shape"):
        nn.functional_call(net, {"0.weight": Tensor(np.zeros((2, 2)))}, (Tensor(np.ones((1, 2))),))
    bad_input = Tensor(np.ones((1, 5), np.float32))
    with pytest.raises(Exception):
        nn.functional_call(net, {"0.weight": Tensor(np.zeros((3, 2), np.float32))}, (bad_input,))
    assert isinstance(net[0].weight, nn.Parameter)


# -- (a) the unrolled Adam step is tinygan.optim.Adam's ---------------------------------------
@pytest.mark.parametrize("k", [1, 4])
def test_adam_in_the_graph_matches_the_optimizer(k):
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s) for s in [(3, 2), (3,)]]
    c = [rng.standard_normal(w.shape) for w in ws]
    loss_of = lambda ps: sum(((p - ci) ** 2 * (p + 2.0)).sum() for p, ci in zip(ps, c))  # noqa: E731
    real = [Tensor(w.copy(), requires_grad=True) for w in ws]
    opt = Adam(real, lr=0.01, betas=(0.5, 0.999), weight_decay=0.1)
    for _ in range(2):                          # the optimizer already holds moments
        opt.zero_grad(), loss_of(real).backward(), opt.step()
    params = [Tensor(p.data.copy(), requires_grad=True) for p in real]
    m = [Tensor(opt.state[i]["exp_avg"].copy()) for i in range(2)]
    v = [Tensor(opt.state[i]["exp_avg_sq"].copy()) for i in range(2)]
    for t in range(3, 3 + k):
        gs = grad(loss_of(params), params, create_graph=True)
        params, m, v = adam_step_in_graph(params, gs, m, v, t, 0.01, (0.5, 0.999), 1e-8, 0.1)
        opt.zero_grad(), loss_of(real).backward(), opt.step()
    for i in range(2):
        np.testing.assert_allclose(params[i].data, real[i].data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(m[i].data, opt.state[i]["exp_avg"], rtol=1e-12)
        np.testing.assert_allclose(v[i].data, opt.state[i]["exp_avg_sq"], rtol=1e-12)
    assert params[0].requires_grad and not params[0].is_leaf       # still a graph


def test_adam_in_the_graph_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(3)
    m0, v0 = rng.standard_normal((2, 3)), rng.random((2, 3)) + 0.1

    def step(p, g):
        (p1,), (m1,), (v1,) = adam_step_in_graph([p], [g], [Tensor(m0)], [Tensor(v0)], 3,
                                                 0.1, (0.5, 0.9), 1e-3)
        return p1 * m1 + v1.tanh()
    p = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    g = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert tinygan.gradcheck(step, [p, g]) and tinygan.gradgradcheck(step, [p, g])


def test_d_real_step_is_the_first_unrolled_step():
    m = tiny()
    x, _ = batch()
    rng = np.random.default_rng(4)
    for _ in range(2):                          # from empty optimizer state, then with moments
        fake = m.G(Tensor(rng.standard_normal((6, 3)).astype(np.float32))).detach()
        theta1 = m.unrolled_d(x, fake, 1)
        loss = m.d_loss(x, fake)
        m.opt_D.zero_grad(), loss.backward(inputs=list(m.D.parameters())), m.opt_D.step()
        for name, p in m.D.named_parameters():
            np.testing.assert_allclose(theta1[name].data, p.data, rtol=1e-5, atol=1e-7)


# -- (b) G's gradient through K steps of D's optimisation -------------------------------------
@pytest.mark.parametrize("g_loss", ["minimax", "nonsaturating"])
def test_generator_objective_gradcheck_through_two_unrolled_steps(g_loss):
    m = tiny("float64", unroll=2, g_loss=g_loss, lr_D=0.05)
    x, _ = batch(4, np.float64)
    z = Tensor(np.random.default_rng(5).standard_normal((4, 3)))
    bias_name = [n for n, _ in m.G.named_parameters()][-1]          # G's output bias (2,)

    def f_K(b):
        fake = nn.functional_call(m.G, {bias_name: b}, (z,))
        return m.generator_objective(x, fake, m.unrolled_d(x, fake, 2))
    b = Tensor(dict(m.G.named_parameters())[bias_name].data.copy(), requires_grad=True)
    assert tinygan.gradcheck(f_K, [b], atol=1e-6)
    # The unrolling matters: the gradient differs from the one with D held fixed (K = 0).
    g2, = grad(f_K(b), b)
    fake = nn.functional_call(m.G, {bias_name: b}, (z,))
    g0, = grad(m.generator_objective(x, fake, dict(m.D.named_parameters())), b)
    assert np.abs(g2.data - g0.data).max() > 1e-4


# -- (c) K = 0 is the plain GAN ----------------------------------------------------------------
def test_no_unrolling_is_the_plain_gan_generator_loss():
    m = tiny(unroll=0, g_loss="nonsaturating")
    gan = create("gan", (2,), config=dict(z_dim=3, toy_hidden=4))
    gan.G.load_state_dict(m.G.state_dict()), gan.D.load_state_dict(m.D.state_dict())
    x, _ = batch()
    z = Tensor(np.random.default_rng(2).standard_normal((6, 3)).astype(np.float32))
    ours = m.generator_objective(x, m.G(z), m.unrolled_d(x, m.G(z), 0))
    theirs = losses.g_loss_nonsaturating(gan.D(gan.G(z)))
    assert float(ours.data) == pytest.approx(float(theirs.data), rel=1e-6)
    g_ours = grad(ours, list(m.G.parameters()))
    g_theirs = grad(theirs, list(gan.G.parameters()))
    for a, b in zip(g_ours, g_theirs):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-8)
    # minimax with K = 0: G's loss is minus D's loss, f itself.
    mm = tiny(unroll=0)
    f = mm.generator_objective(x, mm.G(z), mm.unrolled_d(x, mm.G(z), 0))
    assert float(f.data) == pytest.approx(-float(mm.d_loss(x, mm.G(z)).data), rel=1e-6)


# -- (e) the loss by hand: one unrolled step of a 2-layer ReLU D in NumPy ----------------------
def test_unrolled_generator_loss_by_hand():
    m = tiny("float64", unroll=1, lr_D=0.1)
    x, fake = batch(5, np.float64)
    P = {n: p.data.copy() for n, p in m.D.named_parameters()}
    (W1, b1), (W2, b2), (W3, b3) = [(P[k + ".weight"], P[k + ".bias"])
                                    for k in ("body.0", "body.2", "head")]

    def forward(W, a):
        h1 = np.maximum(a @ W[0].T + W[1], 0)
        h2 = np.maximum(h1 @ W[2].T + W[3], 0)
        return h1, h2, (h2 @ W[4].T + W[5]).ravel()

    def d_loss_and_grads(W):
        softplus = lambda t: np.logaddexp(0, t)                       # noqa: E731
        sig = lambda t: 1 / (1 + np.exp(-t))                          # noqa: E731
        loss, gW = 0.0, [np.zeros_like(w) for w in W]
        for a, label in ((x.data, 1), (fake.data, 0)):
            h1, h2, logit = forward(W, a)
            loss += (softplus(-logit) if label else softplus(logit)).mean()
            dl = ((sig(logit) - 1) if label else sig(logit))[:, None] / len(a)
            gW[4] += dl.T @ h2
            gW[5] += dl.sum(0)
            d2 = (dl @ W[4]) * (h2 > 0)
            gW[2] += d2.T @ h1
            gW[3] += d2.sum(0)
            d1 = (d2 @ W[2]) * (h1 > 0)
            gW[0] += d1.T @ a
            gW[1] += d1.sum(0)
        return loss, gW

    W = [W1, b1, W2, b2, W3, b3]
    _, gW = d_loss_and_grads(W)
    b1_, b2_ = 0.5, 0.999                        # Adam's first step: m = (1-β1) g, v = (1-β2) g²
    W1_ = [w - 0.1 / (1 - b1_) * ((1 - b1_) * g)
           / (np.sqrt((1 - b2_) * g * g) / np.sqrt(1 - b2_) + 1e-8) for w, g in zip(W, gW)]
    loss_after, _ = d_loss_and_grads(W1_)
    f1 = m.generator_objective(x, fake, m.unrolled_d(x, fake, 1))
    assert float(f1.data) == pytest.approx(-loss_after, rel=1e-9)
    assert abs(loss_after - d_loss_and_grads(W)[0]) > 1e-3      # the step changed something


# -- (d) checkpoints: round trip and exact resume ----------------------------------------------
RUN = dict(variant="unrolled", data="ring8", batch_size=16, progress=False,
           options=dict(z_dim=4, toy_hidden=8, unroll=2))


def test_resume_is_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    train(**RUN, steps=6, out=str(tmp_path / "straight"))
    train(**RUN, steps=3, out=str(tmp_path / "split"))
    train(**RUN, steps=6, out=str(tmp_path / "split"), resume=True)
    load = lambda d: np.load(tmp_path / d / "checkpoints" / "last.npz")   # noqa: E731
    with load("straight") as a, load("split") as b:
        assert a.files == b.files and any("exp_avg" in k for k in a.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    log = lambda d: open(tmp_path / d / "log.jsonl").read()               # noqa: E731
    assert log("straight") == log("split")


def test_checkpoint_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    from tinygan.checkpoint import build_from_checkpoint
    out = tmp_path / "run"
    train(**RUN, steps=3, out=str(out))
    model, meta, _ = build_from_checkpoint(str(out / "checkpoints" / "last.npz"))
    assert meta["variant"] == "unrolled" and model.config["unroll"] == 2
    ref = tiny(**RUN["options"])
    ref.load_state_dict(model.state_dict())
    z = Tensor(np.ones((3, 4), np.float32))
    np.testing.assert_array_equal(model.sample(3, z=z), ref.sample(3, z=z))
    assert model.opt_D.state[0]["step"] == 3


def test_images_are_refused_with_the_command_to_use():
    with pytest.raises(ValueError, match="--data ring8"):
        create("unrolled", (1, 28, 28))
