"""batch_norm: gradients (1st and 2nd order), running statistics, door checks, PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygan as tg
import tinygan.functional as F
from tinygan import backend
from tinygan.autograd import Tensor
from tinygan.functional import normalization
from tinygan.kernels import reference

SHAPES = [(4, 3), (3, 2, 2, 3)]      # M = 4 and M = 12 values per channel


def _axes(shape):
    return (0,) + tuple(range(2, len(shape)))


def _vec(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _closed_form(x, mean, var, w, b, eps=1e-5):
    return (x - _vec(mean, x.ndim)) / np.sqrt(_vec(var, x.ndim) + eps) * _vec(w, x.ndim) + _vec(b, x.ndim)


def _inputs(rng, shape, to_dev):
    C = shape[1]
    x = to_dev(rng.standard_normal(shape) * 2.0 + 0.5)
    w = to_dev(rng.uniform(0.5, 1.5, C))
    b = to_dev(rng.standard_normal(C))
    rm = to_dev(rng.standard_normal(C) * 0.1)
    rv = to_dev(rng.uniform(0.5, 2.0, C))
    return x, w, b, rm, rv


# ---------------------------------------------------------------------------------------
# Gradients: first and second order, every mode, every combination of inputs.

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("wrt", ["x", "weight", "bias", "all", "x_no_affine"])
def test_gradcheck_and_gradgradcheck(device, to_dev, rng, shape, training, wrt):
    x, w, b, rm, rv = _inputs(rng, shape, to_dev)
    affine = wrt != "x_no_affine"
    X = Tensor(x, requires_grad=wrt in ("x", "all", "x_no_affine"))
    W = Tensor(w, requires_grad=wrt in ("weight", "all"))
    B = Tensor(b, requires_grad=wrt in ("bias", "all"))

    def fn(x, w, b):
        # fresh running stats per call: training mode must not read them, eval mode must
        # see the same ones on every finite-difference evaluation
        return F.batch_norm(x, rm.copy(), rv.copy(), w if affine else None, b if affine else None,
                            training=training)

    assert tg.gradcheck(fn, [X, W, B])
    assert tg.gradgradcheck(fn, [X, W, B])


def _dezero_standardize(x, eps):
    """DeZero's bug, re-created: inv_std taken as a constant array of x's values."""
    axes, shape = normalization._channel_axes(x.shape)
    inv_std = Tensor(1.0 / np.sqrt(x.data.var(axis=axes, keepdims=True) + eps))
    return (x - x.mean(axes, keepdim=True)) * inv_std, inv_std


@pytest.mark.parametrize("shape", SHAPES)
def test_second_and_third_derivatives_keep_d_inv_std_dx(rng, shape, monkeypatch):
    """Hessian-vector product of f(x) = sum((BN(x) * r)^2) (the shape of a gradient penalty)
    against central differences of its gradient; then the third order (gradgradcheck of the
    gradient), which fails when the backward takes inv_std as a constant array (DeZero's
    mistake: its second derivatives were wrong; written out here, it moves one order up)."""
    x0 = rng.standard_normal(shape)
    r = Tensor(rng.standard_normal(shape))
    v = rng.standard_normal(shape)

    def grad_f(x_array, create_graph=False):
        x = Tensor(x_array, requires_grad=True)
        f = ((F.batch_norm(x, None, None, training=True) * r) ** 2).sum()
        return x, tg.grad(f, x, create_graph=create_graph)[0]

    x, g = grad_f(x0.copy(), create_graph=True)
    hv = tg.grad((g * v).sum(), x)[0].data
    h = 1e-6
    numeric = (grad_f(x0 + h * v)[1].data - grad_f(x0 - h * v)[1].data) / (2 * h)
    assert np.abs(hv - numeric).max() / np.abs(numeric).max() < 1e-6

    def first_grad(x):                    # d<r, BN(x)>/dx as a differentiable function of x
        x = x if x.requires_grad else Tensor(x.data, requires_grad=True)
        return tg.grad((F.batch_norm(x, None, None, training=True) * r).sum(), x,
                       create_graph=True)[0]

    X = Tensor(x0.copy(), requires_grad=True)
    assert tg.gradgradcheck(lambda x: F.batch_norm(x, None, None, training=True), [X])
    assert tg.gradgradcheck(first_grad, [X])
    monkeypatch.setattr(normalization, "_standardize", _dezero_standardize)
    with pytest.raises(tg.GradcheckError):
        tg.gradgradcheck(first_grad, [X])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("slope", [None, 0.0, 0.2])
def test_batch_norm_grad_op_first_and_second_order(rng, shape, slope):
    """batch_norm_grad (and batch_norm_act's gradient) as an op of (x, w, gy), checked on its
    own: its value is the formula, its backward is the second derivative of batch norm."""
    x, w, b, _, _ = _inputs(rng, shape, np.asarray)
    gy = rng.standard_normal(shape)

    def fn(x, w, gy):                     # the op as batch_norm's backward builds it
        mean, var = reference.batch_norm_stats(x.data)
        inv_std = 1 / np.sqrt(var + 1e-5)
        if slope is None:
            return normalization.BatchNormGrad(1e-5, mean, inv_std)(x, w, gy)
        y = reference.batch_norm_act_apply(x.data, mean, inv_std, w.data, b, slope)
        return normalization.BatchNormActGrad(1e-5, mean, inv_std, y, slope)(x, w, gy)

    # the value: gx = w inv_std P(g), gw = sum(g xhat), gb = sum(g), g = D gy
    axes = _axes(shape)
    mean, var = x.mean(axes), x.var(axes)
    xhat = (x - _vec(mean, x.ndim)) / np.sqrt(_vec(var, x.ndim) + 1e-5)
    g = gy if slope is None else gy * np.where(xhat * _vec(w, x.ndim) + _vec(b, x.ndim) > 0, 1, slope)
    P = g - g.mean(axes, keepdims=True) - xhat * (g * xhat).mean(axes, keepdims=True)
    out = fn(*(Tensor(a) for a in (x, w, gy)))
    np.testing.assert_allclose(out[0].data, _vec(w / np.sqrt(var + 1e-5), x.ndim) * P,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out[1].data, (g * xhat).sum(axes), rtol=1e-10)
    np.testing.assert_allclose(out[2].data, g.sum(axes), rtol=1e-10)
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, gy)]
    assert tg.gradcheck(fn, inputs)
    assert tg.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("slope", [None, 0.2])
def test_backward_is_the_same_with_grad_mode_on_and_off(rng, shape, training, slope):
    """One backward: create_graph=False and create_graph=True give identical numbers (both
    run the raw kernel; the recorded one can then be differentiated again)."""
    x, w, b, rm, rv = _inputs(rng, shape, np.asarray)
    gy = Tensor(rng.standard_normal(shape))
    X, W, B = (Tensor(a, requires_grad=True) for a in (x, w, b))

    def grads(create_graph):
        if slope is None:
            y = F.batch_norm(X, rm.copy(), rv.copy(), W, B, training=training)
        else:
            y = F.batch_norm_act(X, rm.copy(), rv.copy(), W, B, training=training,
                                 negative_slope=slope)
        return tg.grad(y, [X, W, B], gy, create_graph=create_graph)

    plain, recorded = grads(False), grads(True)
    for p, r in zip(plain, recorded):
        np.testing.assert_array_equal(p.data, r.data)
    assert recorded[0].requires_grad and not plain[0].requires_grad


# ---------------------------------------------------------------------------------------
# Forward and running statistics against the closed form.

@settings(max_examples=25, deadline=None)
@given(N=st.integers(2, 4), C=st.integers(1, 3), spatial=st.sampled_from([None, (1, 1), (2, 3)]),
       momentum=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_forward_and_running_stats_closed_form(N, C, spatial, momentum, seed):
    rng = np.random.default_rng(seed)
    shape = (N, C) + (spatial or ())
    x = rng.standard_normal(shape) * 3.0 + 1.0
    w, b = rng.standard_normal(C), rng.standard_normal(C)
    rm0, rv0 = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    rm, rv = rm0.copy(), rv0.copy()

    y = F.batch_norm(Tensor(x), rm, rv, Tensor(w), Tensor(b), training=True, momentum=momentum)

    axes = _axes(shape)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    np.testing.assert_allclose(y.data, _closed_form(x, mean, var, w, b), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(rm, (1 - momentum) * rm0 + momentum * mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rv, (1 - momentum) * rv0 + momentum * x.var(axis=axes, ddof=1),
                               rtol=1e-12, atol=1e-12)

    y_eval = F.batch_norm(Tensor(x), rm, rv, Tensor(w), Tensor(b), training=False)
    np.testing.assert_allclose(y_eval.data, _closed_form(x, rm, rv, w, b), rtol=1e-10, atol=1e-10)


def test_reference_kernels_closed_form(rng):
    x = rng.standard_normal((3, 2, 4, 5)) + 100.0       # a large mean: the two-pass variance holds
    mean, var = reference.batch_norm_stats(x)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), rtol=1e-10)
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    y = reference.batch_norm_apply(x, mean, 1 / np.sqrt(var + 1e-5), w, b)
    np.testing.assert_allclose(y, _closed_form(x, mean, var, w, b), rtol=1e-9, atol=1e-9)


def test_running_stats_updated_in_place_keep_identity(rng):
    x = rng.standard_normal((4, 3, 2, 2))
    buffer = np.zeros(7)                      # stats living inside a bigger buffer (views)
    rm_view, rv_arr = buffer[1:4], np.ones(3)
    rv_tensor = Tensor(rv_arr)
    y = F.batch_norm(Tensor(x), rm_view, rv_tensor, training=True, momentum=0.5)
    assert rv_tensor.data is rv_arr                          # the Tensor's array changed in place
    np.testing.assert_allclose(buffer[1:4], 0.5 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(rv_arr, 0.5 + 0.5 * x.var(axis=(0, 2, 3), ddof=1))
    assert buffer[0] == 0 and np.all(buffer[4:] == 0)
    assert y.shape == x.shape


def test_training_without_running_stats_and_float32(rng):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    y = F.batch_norm(Tensor(x), None, None, training=True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(axis=0), 0, atol=1e-6)
    y = F.batch_norm(Tensor(x), rm, rv, training=True)
    assert y.dtype == rm.dtype == rv.dtype == np.float32


def test_eval_graph_does_not_see_later_running_stat_updates(rng):
    """The eval-mode op copies the running stats, so a later training step (which updates
    them in place) cannot change the gradient of a graph recorded before it."""
    x = rng.standard_normal((4, 2))
    rm, rv = np.array([0.3, -0.2]), np.array([1.5, 0.7])
    W = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = F.batch_norm(Tensor(x), rm, rv, W, training=False)
    expected = ((x - rm) / np.sqrt(rv + 1e-5)).sum(axis=0)
    F.batch_norm(Tensor(x * 5.0), rm, rv, training=True, momentum=1.0)
    y.sum().backward()
    np.testing.assert_allclose(W.grad.data, expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Door checks.

@pytest.mark.parametrize("call, err, match", [
    (lambda t: F.batch_norm(t(np.zeros((2, 3, 4))), None, None, training=True),
     ValueError, r"batch_norm: input must be \(N, C\) or \(N, C, H, W\), got shape \(2, 3, 4\)"),
    (lambda t: F.batch_norm(t(np.zeros(3)), None, None, training=True),
     ValueError, r"got shape \(3,\)"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), np.zeros(4), np.ones(4)),
     ValueError, r"batch_norm: running_mean has shape \(4,\) but input \(2, 3\) has 3 channels, expected \(3,\)"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), np.zeros(3), np.ones((3, 1))),
     ValueError, r"running_var has shape \(3, 1\)"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3, 2, 2))), None, None, t(np.ones(2)), training=True),
     ValueError, r"weight has shape \(2,\) but input \(2, 3, 2, 2\) has 3 channels"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), None, None, None, t(np.ones(4)), training=True),
     ValueError, r"bias has shape \(4,\)"),
    (lambda t: F.batch_norm(t(np.zeros((1, 3))), None, None, training=True),
     ValueError, r"Expected more than 1 value per channel when training, got input of shape \(1, 3\)"),
    (lambda t: F.batch_norm(t(np.zeros((1, 3, 1, 1))), np.zeros(3), np.ones(3), training=True),
     ValueError, r"Expected more than 1 value per channel when training"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3), dtype=np.int64)), None, None, training=True),
     TypeError, r"batch_norm: input must be floating point, got int64"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), None, None, training=False),
     ValueError, r"running_mean and running_var are required when training=False"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), np.zeros(3), None, training=True),
     ValueError, r"give both running_mean and running_var"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), [0.0, 0.0, 0.0], np.ones(3)),
     TypeError, r"running_mean must be an array or a Tensor, got list"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), np.zeros(3, dtype=np.int64), np.ones(3)),
     TypeError, r"running_mean must be floating point, got int64"),
    (lambda t: F.batch_norm(t(np.zeros((2, 3))), np.zeros(3), np.ones(3), training=True, momentum=None),
     NotImplementedError, r"momentum=None .* pass momentum=1/num_batches_tracked"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call(Tensor)


def test_batch_of_one_is_fine_in_eval_and_with_spatial_extent():
    y = F.batch_norm(Tensor(np.ones((1, 2))), np.zeros(2), np.ones(2), training=False)
    np.testing.assert_allclose(y.data, 1 / np.sqrt(1 + 1e-5))
    y = F.batch_norm(Tensor(np.arange(8.0).reshape(1, 2, 2, 2)), None, None, training=True)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-12)


# ---------------------------------------------------------------------------------------
# PyTorch parity (optional oracle).

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_matches_torch_over_three_steps_then_eval(rng, shape, dtype, tol):
    torch = pytest.importorskip("torch")
    C = shape[1]
    w, b = rng.uniform(0.5, 1.5, C).astype(dtype), rng.standard_normal(C).astype(dtype)
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    trm, trv = torch.zeros(C, dtype=torch.from_numpy(rm).dtype), torch.ones(C, dtype=torch.from_numpy(rv).dtype)
    W, B = Tensor(w.copy(), requires_grad=True), Tensor(b.copy(), requires_grad=True)
    tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)

    def close(a, t):
        np.testing.assert_allclose(backend.as_numpy(a), t.detach().numpy(), rtol=tol, atol=tol)

    for step, training in enumerate([True, True, True, False]):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(dtype)
        gy = rng.standard_normal(shape).astype(dtype)
        X, tx = Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
        W.grad = B.grad = tw.grad = tb.grad = None
        y = F.batch_norm(X, rm, rv, W, B, training=training, momentum=0.3)
        ty = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=training, momentum=0.3)
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        assert y.dtype == dtype
        close(y.data, ty)
        close(X.grad.data, tx.grad)
        close(W.grad.data, tw.grad)
        close(B.grad.data, tb.grad)
        close(rm, trm)
        close(rv, trv)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_double_backward_matches_torch(rng, shape, training):
    """The gradient-penalty pattern: d/d(x, w) of ||d<r, BN(x)>/dx||^2."""
    torch = pytest.importorskip("torch")
    x, w, b, rm, rv = _inputs(rng, shape, np.asarray)
    r = rng.standard_normal(shape)
    X, W, B = (Tensor(a.copy(), requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

    y = F.batch_norm(X, rm.copy(), rv.copy(), W, B, training=training)
    gx, = tg.grad((y * Tensor(r)).sum(), [X], create_graph=True)
    penalty = (gx ** 2).sum()
    penalty.backward()

    ty = torch.nn.functional.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), tw, tb, training=training)
    tgx, = torch.autograd.grad((ty * torch.from_numpy(r)).sum(), [tx], create_graph=True)
    (tgx ** 2).sum().backward()

    np.testing.assert_allclose(penalty.item(), (tgx ** 2).sum().item(), rtol=1e-10)
    if training:
        np.testing.assert_allclose(X.grad.data, tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    else:        # eval mode is affine in x: gx = w * inv_std * r does not depend on x
        assert X.grad is None and (tx.grad is None or not tx.grad.any())
    np.testing.assert_allclose(W.grad.data, tw.grad.numpy(), rtol=1e-8, atol=1e-10)
    assert B.grad is None and tb.grad is None    # gx does not depend on the bias


# ---------------------------------------------------------------------------------------
# batch_norm_act: leaky_relu(batch_norm(x)) as one op (the layer: test_batch_norm_act.py)

def _clear_of_the_kink(shape, training=True, seed=0):
    """(x, w, b) whose batch-normalised values all stay > 0.02 away from the activation's
    kink at 0, so finite differences never step across it."""
    for s in range(seed, seed + 200):
        rng = np.random.default_rng(s)
        x = rng.standard_normal(shape) * 2.0 + 0.5
        w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
        mean, var = x.mean(_axes(shape)), x.var(_axes(shape))
        if not training:
            mean, var = np.zeros(shape[1]), np.ones(shape[1])
        if np.abs(_closed_form(x, mean, var, w, b)).min() > 0.02:
            return [Tensor(a, requires_grad=True) for a in (x, w, b)]
    raise AssertionError("no input clear of the kink found")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("slope", [0.0, 0.2])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_act_first_and_second_order(shape, slope, training):
    C = shape[1]
    x, w, b = _clear_of_the_kink(shape, training)
    rm, rv = np.zeros(C), np.ones(C)
    f = lambda x, w, b: F.batch_norm_act(x, rm.copy(), rv.copy(), w, b, training=training,  # noqa: E731
                                         negative_slope=slope) ** 2
    assert tg.gradcheck(f, [x, w, b])
    assert tg.gradgradcheck(f, [x, w, b])


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0])
def test_batch_norm_act_equals_the_two_ops(slope):
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((6, 4, 3, 3)).astype(np.float32) * 2 + 1
    w0, b0 = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    gy = rng.standard_normal(x0.shape).astype(np.float32)
    results = []
    for fused in (True, False):
        x, w, b = (Tensor(a.copy(), requires_grad=True) for a in (x0, w0, b0))
        rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
        if fused:
            y = F.batch_norm_act(x, rm, rv, w, b, training=True, negative_slope=slope)
        else:
            y = F.leaky_relu(F.batch_norm(x, rm, rv, w, b, training=True), slope)
        y.backward(Tensor(gy))
        results.append([y.data, x.grad.data, w.grad.data, b.grad.data, rm, rv])
    for a, c in zip(*results):
        np.testing.assert_array_equal(a, c)       # same kernels' arithmetic, same order
    with pytest.raises(ValueError, match="negative_slope"):
        F.batch_norm_act(Tensor(x0), None, None, training=True, negative_slope=-0.1)
    with pytest.raises(ValueError, match=r"batch_norm_act: weight has shape \(3,\) but input \(6, 4, 3, 3\)"):
        F.batch_norm_act(Tensor(x0), None, None, Tensor(np.ones(3, np.float32)), training=True)
    with pytest.raises(ValueError, match=r"^batch_norm: weight has shape"):
        F.batch_norm(Tensor(x0), None, None, Tensor(np.ones(3, np.float32)), training=True)
