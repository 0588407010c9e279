"""Activations, losses and the small ops (linear, dropout, embedding, pad): values against
NumPy formulas, first- and second-order finite differences in float64, PyTorch parity when it
is installed, and the door checks."""
import math
import warnings

import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
from tinygan import Tensor, backend, gradcheck, gradgradcheck


def _t(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _away_from_kinks(rng, shape):
    """Values with |x| >= 0.05, so a finite-difference step never crosses ReLU's kink."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.05 + np.abs(x), x) * np.sign(x + 1e-300)


# ---------------------------------------------------------------------------------------
# Activations: forward values

def _np_softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0.0, beta * x) / beta)


ACTIVATIONS = {
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "leaky_relu_default": (F.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x)),
    "leaky_relu_neg": (lambda x: F.leaky_relu(x, -0.5), lambda x: np.where(x > 0, x, -0.5 * x)),
    "leaky_relu_gt1": (lambda x: F.leaky_relu(x, 2.0), lambda x: np.where(x > 0, x, 2.0 * x)),
    "tanh": (F.tanh, np.tanh),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "softplus": (F.softplus, _np_softplus),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: _np_softplus(x, 2.0, 3.0)),
    "softmax": (F.softmax, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
    "softmax_dim0": (lambda x: F.softmax(x, dim=0), lambda x: np.exp(x) / np.exp(x).sum(0, keepdims=True)),
    "log_softmax": (F.log_softmax, lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    "log_softmax_dim1": (lambda x: F.log_softmax(x, dim=1),
                         lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values(name, device, to_dev, rng):
    fn, ref = ACTIVATIONS[name]
    x = _away_from_kinks(rng, (3, 4, 5)) * 3
    y = fn(Tensor(to_dev(x)))
    np.testing.assert_allclose(backend.as_numpy(y.data), ref(x), rtol=1e-12, atol=1e-14)
    assert y.shape == x.shape and y.dtype == np.float64


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_first_and_second_order(name, rng):
    fn, _ = ACTIVATIONS[name]
    x = _t(_away_from_kinks(rng, (2, 3, 4)))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_float32_keeps_dtype(name, rng):
    fn, ref = ACTIVATIONS[name]
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = fn(Tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, ref(x.astype(np.float64)), rtol=2e-6, atol=2e-6)


def test_leaky_relu_gradient_is_linear_in_upstream_gradient(rng):
    """gx = gy * mask(x): its derivative w.r.t. gy is the mask itself (the mask op's backward
    is the mask op), and w.r.t. x it is zero almost everywhere."""
    x = _t(_away_from_kinks(rng, (10,)))
    gy = _t(rng.standard_normal(10))
    gx, = tg.grad(F.leaky_relu(x, 0.2), x, grad_outputs=gy, create_graph=True)
    mask = np.where(x.data > 0, 1.0, 0.2)
    np.testing.assert_allclose(gx.data, gy.data * mask)
    assert gx.requires_grad
    d_gy, d_x = tg.grad((gx * gx).sum(), (gy, x), allow_unused=True)
    np.testing.assert_allclose(d_gy.data, 2 * gy.data * mask ** 2)
    assert d_x is None or np.all(d_x.data == 0)


def test_extreme_inputs_stay_finite():
    x = Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32))
    for fn in (F.sigmoid, F.softplus, F.tanh, F.log_softmax, F.softmax):
        assert np.all(np.isfinite(fn(x).data)), fn
    np.testing.assert_allclose(F.sigmoid(x).data, [0, 0, 0.5, 1, 1], atol=1e-20)
    np.testing.assert_allclose(F.log_softmax(x).data[-1], 0.0, atol=1e-6)


def test_softmax_of_scalar_is_one():
    np.testing.assert_allclose(F.softmax(Tensor(np.array(3.0)), dim=0).data, 1.0)


# ---------------------------------------------------------------------------------------
# Losses

def _np_bce_logits(x, t):
    return np.mean(np.logaddexp(0, x) - t * x)


def test_bce_with_logits_values_and_extremes(rng):
    x = rng.standard_normal((8, 1)) * 4
    t = rng.random((8, 1))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(_t(x), t).data,
                               _np_bce_logits(x, t), rtol=1e-12)
    # exact where sigmoid underflows: log(sigmoid(-200)) = -200 - log1p(e^-200)
    big = Tensor(np.array([-200.0, 200.0], dtype=np.float32))
    loss = F.binary_cross_entropy_with_logits(big, np.array([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(loss.data, [200.0, 200.0], rtol=1e-6)


# Confident logits: the loss is log1p(e^-|x|), far below x's own rounding step, so it must not be
# formed as softplus(x) - x (which gives 9.24e-14 in float64 and 0.0 in float32 at x = 30).
# Each row: logit, target, weight, the loss by hand.  math.log1p(math.exp(-a)) is exact to the
# last bit of a double here (no cancellation inside it).
_TINY = {a: math.log1p(math.exp(-a)) for a in (30.0, 40.0, 60.0)}
CONFIDENT = [(30.0, 1.0, 1.0, _TINY[30.0]),          # 9.3576e-14
             (40.0, 1.0, 1.0, _TINY[40.0]),
             (-30.0, 0.0, 1.0, _TINY[30.0]),         # large negative logit, target 0
             (-60.0, 0.0, 1.0, _TINY[60.0]),
             (-30.0, 1.0, 1.0, 30.0 + _TINY[30.0]),  # confidently wrong: ~ |x|
             (30.0, 0.25, 1.0, 0.75 * 30.0 + _TINY[30.0]),
             (30.0, 1.0, 2.5, 2.5 * _TINY[30.0]),    # weight scales the tiny loss, no cancellation
             (-40.0, 0.0, 0.5, 0.5 * _TINY[40.0])]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_bce_with_logits_keeps_precision_for_confident_logits(dtype, rtol):
    x, t, w, want = (np.array(col, dtype=np.float64) for col in zip(*CONFIDENT))
    assert abs(want[0] - 9.3576e-14) < 1e-18
    got = F.binary_cross_entropy_with_logits(Tensor(x.astype(dtype)), t.astype(dtype),
                                             weight=w.astype(dtype), reduction="none")
    assert got.dtype == dtype
    np.testing.assert_allclose(got.data.astype(np.float64), want, rtol=rtol, atol=0)
    # its gradient, sigmoid(x) - t, is as small and must come out as precisely
    xg = Tensor(np.array([30.0, -30.0], dtype=dtype), requires_grad=True)
    F.binary_cross_entropy_with_logits(xg, np.array([1.0, 0.0], dtype=dtype), reduction="sum").backward()
    s = 1 / (1 + math.exp(30.0))
    np.testing.assert_allclose(xg.grad.data.astype(np.float64), [-s, s], rtol=rtol, atol=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_reductions(reduction, rng):
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    raw = {"mse_loss": (x - t) ** 2, "l1_loss": np.abs(x - t)}
    for name, r in raw.items():
        got = getattr(F, name)(_t(x), _t(t, False), reduction=reduction).data
        want = {"mean": r.mean(), "sum": r.sum(), "none": r}[reduction]
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bce_on_probabilities_clamps_log_like_torch():
    p = Tensor(np.array([0.0, 1.0, 0.5]))
    t = np.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(F.binary_cross_entropy(p, t, reduction="none").data,
                               [100.0, 100.0, np.log(2)], rtol=1e-12)


def test_cross_entropy_matches_formula(rng):
    x = rng.standard_normal((6, 5))
    t = rng.integers(0, 5, 6)
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    want = -logp[np.arange(6), t]
    np.testing.assert_allclose(F.cross_entropy(_t(x), t).data, want.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(_t(x), t, reduction="none").data, want, rtol=1e-12)
    # ignore_index drops rows from both the sum and the count
    t2 = t.copy()
    t2[:2] = -100
    np.testing.assert_allclose(F.cross_entropy(_t(x), t2).data, want[2:].mean(), rtol=1e-12)
    # class weights: torch divides by the sum of the weights of the targets
    w = rng.random(5) + 0.5
    np.testing.assert_allclose(F.cross_entropy(_t(x), t, weight=w).data,
                               (w[t] * want).sum() / w[t].sum(), rtol=1e-12)
    # probability targets
    p = np.eye(5)[t]
    np.testing.assert_allclose(F.cross_entropy(_t(x), p).data, want.mean(), rtol=1e-12)


def test_cross_entropy_spatial(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    t = rng.integers(0, 3, (2, 4, 5))
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    want = -np.take_along_axis(logp, t[:, None], 1)[:, 0]
    np.testing.assert_allclose(F.cross_entropy(_t(x), t, reduction="none").data, want, rtol=1e-12)


LOSSES = {
    "bce_logits": lambda x, t: F.binary_cross_entropy_with_logits(x, t),
    "bce_logits_sum_weighted": lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, weight=np.linspace(0.5, 2, 4), reduction="sum"),
    "bce": lambda x, t: F.binary_cross_entropy(F.sigmoid(x), t),
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "soft_ce": lambda x, t: F.cross_entropy(x, F.softmax(t * 3)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_first_and_second_order_in_both_arguments(name, rng):
    x = _t(rng.standard_normal((3, 4)))
    t = _t(rng.random((3, 4)))
    fn = LOSSES[name]
    assert gradcheck(fn, (x, t))
    assert gradgradcheck(fn, (x, t))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_int_targets_first_and_second_order(smoothing, rng):
    x = _t(rng.standard_normal((5, 4)))
    t = np.array([0, 3, 1, 1, -100])

    def fn(x):
        return F.cross_entropy(x, t, label_smoothing=smoothing)
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_shape_mismatch_warns_like_torch():
    with pytest.warns(UserWarning, match="mse_loss.*broadcast"):
        F.mse_loss(Tensor(np.zeros((4, 1))), np.zeros(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.mse_loss(Tensor(np.zeros((4, 1))), np.zeros((4, 1)))


# ---------------------------------------------------------------------------------------
# linear, dropout, embedding, pad

def test_linear_values_and_derivatives(rng):
    x, w, b = _t(rng.standard_normal((3, 4))), _t(rng.standard_normal((5, 4))), _t(rng.standard_normal(5))
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data, rtol=1e-12)
    np.testing.assert_allclose(F.linear(x[0], w).data, w.data @ x.data[0], rtol=1e-12)
    x3 = _t(rng.standard_normal((2, 3, 4)))
    assert F.linear(x3, w, b).shape == (2, 3, 5)

    def fn(x, w, b):
        return F.tanh(F.linear(x, w, b))        # tanh so the 2nd derivative is not all zero
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x3, w, b))


def test_dropout_statistics_scaling_and_gradient():
    tg.manual_seed(0)
    x = Tensor(np.ones((200, 200)), requires_grad=True)
    y = F.dropout(x, 0.3)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)          # same mask, same scale
    assert F.dropout(x, 0.3, training=False) is x
    assert np.all(F.dropout(x, 1.0).data == 0)
    tg.manual_seed(5)
    a = F.dropout(x, 0.5).data
    tg.manual_seed(5)
    np.testing.assert_array_equal(a, F.dropout(x, 0.5).data)    # seeded


def test_dropout_gradgrad_with_fixed_mask():
    x = _t(np.random.default_rng(1).standard_normal((4, 5)))

    def fn(x):
        tg.manual_seed(3)                       # the same mask on every evaluation
        return F.tanh(F.dropout(x, 0.4))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_embedding_values_and_repeated_indices_accumulate(rng):
    w = _t(rng.standard_normal((6, 3)))
    idx = np.array([[1, 1], [5, 0]])
    y = F.embedding(idx, w)
    np.testing.assert_array_equal(y.data, w.data[idx])
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data[:, 0], [1, 2, 0, 0, 0, 1])

    def fn(w):
        return F.tanh(F.embedding(idx, w))
    assert gradcheck(fn, (w,))
    assert gradgradcheck(fn, (w,))


def test_pad_matches_numpy_and_derivatives(rng):
    x = _t(rng.standard_normal((2, 3, 4)))
    y = F.pad(x, (1, 2, 0, 3), value=0.5)
    np.testing.assert_array_equal(y.data, np.pad(x.data, ((0, 0), (0, 3), (1, 2)), constant_values=0.5))

    def fn(x):
        return F.tanh(F.pad(x, (1, 1, 2, 0)))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


# ---------------------------------------------------------------------------------------
# Door checks: the op, the argument, the shapes

@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.relu(Tensor(np.array([1, 2]))), None, None),     # relu of ints is allowed (torch)
    (lambda: F.tanh(Tensor(np.array([1, 2]))), TypeError, "tanh: input must be floating"),
    (lambda: F.leaky_relu(Tensor(np.arange(3)), 0.2), TypeError, "leaky_relu"),
    (lambda: F.leaky_relu(Tensor(np.zeros(3)), "0.2"), TypeError, "negative_slope"),
    (lambda: F.softplus(Tensor(np.zeros(3)), beta=0), ValueError, "beta"),
    (lambda: F.softmax(Tensor(np.zeros((2, 3))), dim=2), (ValueError, IndexError), "softmax"),
    (lambda: F.mse_loss(Tensor(np.zeros((2, 3))), np.zeros((4, 3))), ValueError, r"mse_loss.*\(2, 3\).*\(4, 3\)"),
    (lambda: F.mse_loss(Tensor(np.zeros(3)), np.zeros(3), reduction="avg"), ValueError, "reduction"),
    (lambda: F.binary_cross_entropy(Tensor(np.array([1.5])), np.ones(1)), ValueError, "probabilities"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0])), ValueError, "cross_entropy"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3])), ValueError, r"\[0, 3\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1, 2])), ValueError, r"\(2, 3\).*\(3,\)"),
    (lambda: F.cross_entropy(Tensor(np.zeros(3)), np.array([0])), ValueError, "cross_entropy"),
    (lambda: F.nll_loss(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0])), TypeError, "integer"),
    (lambda: F.linear(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 5)))), ValueError, r"linear.*in_features=5.*\(2, 3\)"),
    (lambda: F.linear(Tensor(np.zeros((2, 3))), Tensor(np.zeros(3))), ValueError, "linear: weight must be 2-D"),
    (lambda: F.linear(Tensor(np.zeros((2, 3))), Tensor(np.zeros((4, 3))), Tensor(np.zeros(3))), ValueError, "bias"),
    (lambda: F.linear(Tensor(np.zeros((2, 3), dtype=np.int64)), Tensor(np.zeros((4, 3)))), TypeError, "linear"),
    (lambda: F.dropout(Tensor(np.zeros(3)), 1.5), ValueError, "dropout: p"),
    (lambda: F.embedding(np.array([0.5]), Tensor(np.zeros((4, 2)))), TypeError, "embedding: indices"),
    (lambda: F.embedding(np.array([4]), Tensor(np.zeros((4, 2)))), ValueError, r"\[0, 4\)"),
    (lambda: F.pad(Tensor(np.zeros((2, 2))), (1, 1, 1)), ValueError, "pad"),
])
def test_bad_input_names_the_op(call, exc, match):
    if exc is None:
        call()
        return
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------
# PyTorch parity (optional)

def test_against_torch(rng):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x = rng.standard_normal((6, 5))
    t_int = rng.integers(0, 5, 6)
    t_prob = rng.random((6, 5))
    w = rng.standard_normal((3, 5))
    cases = [
        (F.leaky_relu(_t(x), 0.2), tF.leaky_relu(torch.tensor(x), 0.2)),
        (F.softplus(_t(x * 10), 0.5, 3.0), tF.softplus(torch.tensor(x * 10), 0.5, 3.0)),
        (F.log_softmax(_t(x), 0), tF.log_softmax(torch.tensor(x), 0)),
        (F.cross_entropy(_t(x), t_int, label_smoothing=0.1),
         tF.cross_entropy(torch.tensor(x), torch.tensor(t_int), label_smoothing=0.1)),
        (F.binary_cross_entropy_with_logits(_t(x), t_prob, weight=np.arange(5.0), reduction="sum"),
         tF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t_prob),
                                             weight=torch.arange(5.0, dtype=torch.float64), reduction="sum")),
        (F.binary_cross_entropy(F.sigmoid(_t(x)), t_prob),
         tF.binary_cross_entropy(torch.sigmoid(torch.tensor(x)), torch.tensor(t_prob))),
        (F.linear(_t(x), _t(w)), tF.linear(torch.tensor(x), torch.tensor(w))),
        (F.pad(_t(x), (1, 2)), tF.pad(torch.tensor(x), (1, 2))),
    ]
    for ours, theirs in cases:
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-10, atol=1e-12)
