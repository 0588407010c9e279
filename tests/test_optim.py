"""Optimizers: closed-form single steps, PyTorch parity over several steps, checkpoint round trips."""
import numpy as np
import pytest

import tinygan as tg
from tinygan import backend, checkpoint, nn, optim
from tinygan.autograd import Tensor


def make_params(rng, shapes=((3, 4), (4,)), dtype=np.float64):
    return [Tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else Tensor(g.copy())


def grad_sequence(rng, params, n, dtype=np.float64):
    return [[rng.standard_normal(p.shape).astype(dtype) for p in params] for _ in range(n)]


def run_steps(opt, params, grads):
    for gs in grads:
        set_grads(params, gs)
        opt.step()


# ---------------------------------------------------------------------------------------
# Closed forms, float64

def test_sgd_plain_step_is_p_minus_lr_g(rng):
    p, = make_params(rng, [(5,)])
    p0, g = p.data.copy(), rng.standard_normal(5)
    opt = optim.SGD([p], lr=0.1)
    set_grads([p], [g])
    opt.step()
    np.testing.assert_allclose(p.data, p0 - 0.1 * g, rtol=0, atol=1e-15)


@pytest.mark.parametrize("nesterov,dampening,wd", [(False, 0.0, 0.0), (True, 0.0, 0.0),
                                                   (False, 0.3, 0.0), (False, 0.0, 0.05)])
def test_sgd_momentum_two_steps_closed_form(rng, nesterov, dampening, wd):
    p, = make_params(rng, [(6,)])
    lr, mu = 0.1, 0.9
    opt = optim.SGD([p], lr=lr, momentum=mu, dampening=dampening, weight_decay=wd, nesterov=nesterov)
    x = p.data.copy()
    g1, g2 = rng.standard_normal(6), rng.standard_normal(6)
    # Hand-written PyTorch rule: b1 = d1 (no dampening on the first step), b2 = mu*b1 + (1-damp)*d2.
    d1 = g1 + wd * x
    b = d1
    x = x - lr * (d1 + mu * b if nesterov else b)
    d2 = g2 + wd * x
    b = mu * b + (1 - dampening) * d2
    x = x - lr * (d2 + mu * b if nesterov else b)
    run_steps(opt, [p], [[g1], [g2]])
    np.testing.assert_allclose(p.data, x, rtol=1e-13, atol=1e-14)


def test_adam_first_step_moves_lr_times_sign(rng):
    # Step 1: m̂ = g, v̂ = g², so the update is lr * g / (|g| + eps), whatever the betas.
    p, = make_params(rng, [(7,)])
    p0, g = p.data.copy(), rng.standard_normal(7)
    opt = optim.Adam([p], lr=0.01, betas=(0.5, 0.99), eps=1e-8)
    set_grads([p], [g])
    opt.step()
    np.testing.assert_allclose(p.data, p0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12, atol=1e-15)
    assert opt.state[0]["step"] == 1


def test_adam_three_steps_closed_form_with_weight_decay(rng):
    p, = make_params(rng, [(4, 3)])
    lr, (b1, b2), eps, wd = 1e-2, (0.8, 0.95), 1e-6, 0.1
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    grads = grad_sequence(rng, [p], 3)
    x, m, v = p.data.copy(), 0.0, 0.0
    for t, (g,) in enumerate(grads, start=1):
        g = g + wd * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
    run_steps(opt, [p], grads)
    np.testing.assert_allclose(p.data, x, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.0), (False, 0.5), (True, 0.5)])
def test_rmsprop_two_steps_closed_form(rng, centered, momentum):
    p, = make_params(rng, [(5,)])
    lr, alpha, eps, wd = 1e-2, 0.9, 1e-8, 0.01
    opt = optim.RMSprop([p], lr=lr, alpha=alpha, eps=eps, weight_decay=wd, momentum=momentum,
                        centered=centered)
    grads = grad_sequence(rng, [p], 2)
    x, s, a, b = p.data.copy(), 0.0, 0.0, 0.0
    for (g,) in grads:
        g = g + wd * x
        s = alpha * s + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g
        denom = np.sqrt(s - a * a if centered else s) + eps     # eps outside the sqrt
        if momentum:
            b = momentum * b + g / denom
            x = x - lr * b
        else:
            x = x - lr * g / denom
    run_steps(opt, [p], grads)
    np.testing.assert_allclose(p.data, x, rtol=1e-12, atol=1e-14)


def test_rmsprop_default_first_step():
    p = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = optim.RMSprop([p])                       # lr 1e-2, alpha 0.99
    set_grads([p], [np.array([0.5, -0.25])])
    opt.step()
    # s = 0.01 g², so the step is lr * g / (0.1 |g| + eps) = 0.1 * sign(g) (to eps).
    np.testing.assert_allclose(p.data, [0.9, -1.9], rtol=1e-6)


# ---------------------------------------------------------------------------------------
# Behaviour

@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps), lambda ps: optim.RMSprop(ps)],
                         ids=["sgd", "adam", "rmsprop"])
def test_parameters_without_grad_are_skipped(rng, make):
    params = make_params(rng)
    opt = make(params)
    before = params[1].data.copy()
    set_grads(params, [rng.standard_normal((3, 4)), None])
    opt.step()
    np.testing.assert_array_equal(params[1].data, before)
    assert 1 not in opt.state and 0 in opt.state


def test_zero_grad_sets_none_and_accepts_generators(rng):
    model = nn.Module()
    model.a = nn.Parameter(rng.standard_normal(3))
    model.b = nn.Parameter(rng.standard_normal(2))
    opt = optim.Adam(model.parameters(), lr=0.1)           # a generator
    assert [p for p in opt.param_groups[0]["params"]] == [model.a, model.b]
    set_grads([model.a, model.b], [np.ones(3), np.ones(2)])
    opt.zero_grad()
    assert model.a.grad is None and model.b.grad is None


def test_step_updates_in_place_and_records_no_graph(rng):
    p, = make_params(rng, [(3,)])
    array = p.data
    (p * p).sum().backward()
    optim.SGD([p], lr=0.5).step()
    assert p.data is array and p.is_leaf and p.requires_grad


def test_param_group_lr_change_takes_effect(rng):
    p, = make_params(rng, [(3,)])
    opt = optim.SGD([p], lr=1.0)
    opt.param_groups[0]["lr"] = 0.25
    p0, g = p.data.copy(), np.ones(3)
    set_grads([p], [g])
    opt.step()
    np.testing.assert_allclose(p.data, p0 - 0.25)


def test_param_groups_with_their_own_lr(rng):
    a, b = make_params(rng, [(2,), (2,)])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a0, b0 = a.data.copy(), b.data.copy()
    set_grads([a, b], [np.ones(2), np.ones(2)])
    opt.step()
    np.testing.assert_allclose(a.data, a0 - 0.1)
    np.testing.assert_allclose(b.data, b0 - 1.0)


def test_closure_is_called_with_grad_enabled(rng):
    p, = make_params(rng, [(3,)])
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    with tg.no_grad():
        loss = opt.step(closure)
    assert loss.item() > 0 and p.grad is not None


def test_bad_parameters_are_refused_clearly(rng):
    frozen = Tensor(rng.standard_normal(3))
    with pytest.raises(ValueError, match="does not require grad"):
        optim.Adam([frozen])
    leaf = Tensor(rng.standard_normal(3), requires_grad=True)
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([leaf * 2], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(leaf)
    with pytest.raises(TypeError, match="not a Tensor"):
        optim.Adam([np.zeros(3)])
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([leaf, leaf])
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([leaf], lr=-1)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([leaf], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([leaf], lr=0.1, nesterov=True)


def test_float32_parameters_stay_float32(rng):
    p, = make_params(rng, [(3,)], dtype=np.float32)
    opt = optim.Adam([p], weight_decay=0.1)
    set_grads([p], [rng.standard_normal(3).astype(np.float32)])
    opt.step()
    assert p.dtype == np.float32 and opt.state[0]["exp_avg"].dtype == np.float32


# ---------------------------------------------------------------------------------------
# Checkpoints

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=1e-2, momentum=0.3, centered=True),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_through_a_checkpoint_continues_identically(rng, tmp_path, name):
    make = OPTIMIZERS[name]
    params = make_params(rng, dtype=np.float32)
    opt = make(params)
    run_steps(opt, params, grad_sequence(rng, params, 3, np.float32))

    # Save params + optimizer state the way training runs do (npz + JSON: int keys become str).
    path = checkpoint.save(str(tmp_path / "ckpt.npz"),
                           {"params": {str(i): p.data.copy() for i, p in enumerate(params)},
                            "opt": opt.state_dict()})
    state, _ = checkpoint.load(path)
    clones = [Tensor(state["params"][str(i)], requires_grad=True) for i in range(len(params))]
    opt2 = make(clones)
    opt2.param_groups[0]["lr"] = 123.0            # must be overwritten by the loaded value
    opt2.load_state_dict(state["opt"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]

    more = grad_sequence(rng, params, 3, np.float32)
    run_steps(opt, params, more)
    run_steps(opt2, clones, more)
    for p, q in zip(params, clones):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_snapshot_keyed_by_position(rng):
    params = make_params(rng)
    opt = optim.Adam(params)
    run_steps(opt, params, grad_sequence(rng, params, 1))
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1] and sd["state"][0]["step"] == 1
    assert sd["param_groups"][0]["params"] == [0, 1]
    saved = sd["state"][0]["exp_avg"].copy()
    run_steps(opt, params, grad_sequence(rng, params, 1))
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], saved)


def test_load_state_dict_checks_counts_and_shapes(rng):
    params = make_params(rng)
    opt = optim.Adam(params)
    run_steps(opt, params, grad_sequence(rng, params, 1))
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="saved 2 parameters, this optimizer has 1"):
        optim.Adam(params[:1]).load_state_dict(sd)
    other = make_params(rng, shapes=((3, 4), (5,)))
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 1 has shape \(4,\), the parameter has \(5,\)"):
        optim.Adam(other).load_state_dict(sd)


def test_optimizer_on_device_matches_cpu(rng, device):
    host = make_params(rng, dtype=np.float32)
    dev = [Tensor(backend.to_device(p.data, device), requires_grad=True) for p in host]
    grads = grad_sequence(rng, host, 3, np.float32)
    run_steps(optim.Adam(host, lr=0.1), host, grads)
    opt = optim.Adam(dev, lr=0.1)
    for gs in grads:
        for p, g in zip(dev, gs):
            p.grad = Tensor(backend.to_device(g, device))
        opt.step()
    for p, q in zip(host, dev):
        np.testing.assert_allclose(backend.as_numpy(q.data), p.data, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# PyTorch parity (optional)

TORCH_CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.2)),
    ("Adam", dict()),
    ("Adam", dict(lr=2e-4, betas=(0.5, 0.999))),
    ("Adam", dict(lr=1e-2, betas=(0.0, 0.9), eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=5e-5)),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.5, centered=True)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kwargs", TORCH_CONFIGS)
def test_matches_torch_over_five_steps(rng, name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    params = make_params(rng, dtype=dtype)
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = getattr(optim, name)(params, **kwargs)
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kwargs)
    for gs in grad_sequence(rng, params, 5, dtype):
        set_grads(params, gs)
        for tp, g in zip(tparams, gs):
            tp.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=1e-2, betas=(0.5, 0.999))),
                                         ("RMSprop", dict(momentum=0.5, centered=True)),
                                         ("SGD", dict(lr=0.1, momentum=0.9))])
def test_loads_a_torch_optimizer_state_dict(rng, name, kwargs):
    torch = pytest.importorskip("torch")
    params = make_params(rng, dtype=np.float32)
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kwargs)
    grads = grad_sequence(rng, params, 5, np.float32)
    for gs in grads[:3]:
        for tp, g in zip(tparams, gs):
            tp.grad = torch.tensor(g)
        topt.step()
    tsd = topt.state_dict()
    converted = {"state": {i: {k: (v.numpy() if torch.is_tensor(v) else v) for k, v in s.items()}
                           for i, s in tsd["state"].items()},
                 "param_groups": tsd["param_groups"]}
    for p, tp in zip(params, tparams):
        p.data[...] = tp.detach().numpy()
    opt = getattr(optim, name)(params, lr=1.0)
    opt.load_state_dict(converted)
    for gs in grads[3:]:
        set_grads(params, gs)
        for tp, g in zip(tparams, gs):
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-6)
