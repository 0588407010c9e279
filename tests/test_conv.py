"""conv2d, conv_transpose2d, conv2d_grad_weight: values, gradients of first and second order,
a WGAN-GP penalty through a conv critic, needs_input_grad, and every door check.

The forward values are compared with the loop oracles of tests/oracles.py; gradients with
finite differences (tinygan.gradcheck / gradgradcheck, float64, random upstream gradients);
everything once more with PyTorch when it is installed.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import tinygan as tg
import tinygan.functional as F
from tinygan import Tensor, kernels
from tinygan.functional import conv as conv_module

from oracles import conv2d_grad_weight_naive, conv2d_naive, conv_transpose2d_naive


def _out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


@st.composite
def small_conv(draw, transpose=False):
    """A tiny valid (N, C, OC, H, W, k, s, p, op): few elements, since each one costs 2 forwards
    in the finite differences (and a forward+backward in gradgradcheck)."""
    N, C, OC = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    H, W = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 1)), draw(st.integers(0, 2)))
    if transpose:
        op = (draw(st.integers(0, s[0] - 1)), draw(st.integers(0, s[1] - 1)))
        out = [(n - 1) * si - 2 * pi + ki + oi for n, si, pi, ki, oi in zip((H, W), s, p, k, op)]
    else:
        op = (0, 0)
        assume(k[0] <= H + 2 * p[0] and k[1] <= W + 2 * p[1])
        out = [_out(n, ki, si, pi) for n, ki, si, pi in zip((H, W), k, s, p)]
    assume(min(out) >= 1)
    assume(N * C * H * W + C * OC * k[0] * k[1] + N * OC * out[0] * out[1] <= 100)
    return N, C, OC, H, W, k, s, p, op


def _t(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---------------------------------------------------------------------------------------
# Forward values through the ops (the kernels are tested on their own in test_reference_kernels)

@settings(max_examples=15, deadline=None)
@given(case=small_conv(), seed=st.integers(0, 2**16))
def test_conv2d_forward_matches_oracle(case, seed):
    N, C, OC, H, W, k, s, p, _ = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((OC, C) + k), rng.standard_normal(OC)
    y = F.conv2d(_t(x), _t(w), _t(b), s, p)
    np.testing.assert_allclose(y.data, conv2d_naive(x, w, s, p) + b.reshape(1, -1, 1, 1), rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(case=small_conv(transpose=True), seed=st.integers(0, 2**16))
def test_conv_transpose2d_forward_matches_oracle(case, seed):
    N, C, OC, H, W, k, s, p, op = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((C, OC) + k), rng.standard_normal(OC)
    y = F.conv_transpose2d(_t(x), _t(w), _t(b), s, p, op)
    np.testing.assert_allclose(y.data, conv_transpose2d_naive(x, w, s, p, op) + b.reshape(1, -1, 1, 1),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_grad_weight_forward_matches_oracle():
    rng = np.random.default_rng(0)
    x, gy = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((2, 4, 3, 2))
    gw = F.conv2d_grad_weight(_t(x), _t(gy), (3, 2), (2, 3), (1, 0))
    np.testing.assert_allclose(gw.data, conv2d_grad_weight_naive(x, gy, (3, 2), (2, 3), (1, 0)), rtol=1e-12)


def test_non_contiguous_input_and_weight():
    """Views (a transposed image, a strided weight) give the values and gradients of their copies."""
    rng = np.random.default_rng(1)
    x = np.ascontiguousarray(rng.standard_normal((2, 3, 6, 5)).transpose(0, 1, 3, 2))   # (2, 3, 5, 6)
    x = x.transpose(0, 1, 3, 2)                                                    # a view: (2, 3, 6, 5)
    w = rng.standard_normal((4, 3, 3, 2, 2))[..., 0]                                # a strided slice
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    g = rng.standard_normal((2, 4, 3, 3))
    results = []
    for xa, wa in ((x, w), (x.copy(), w.copy())):
        X, Wt = _t(xa), _t(wa)
        y = F.conv2d(X, Wt, None, 2, 1)
        t = F.conv_transpose2d(X, Wt.transpose(0, 1), None, 2, 1, 1)
        gX, gW = tg.grad([y, t], [X, Wt], [Tensor(g), Tensor(np.ones(t.shape))])
        results.append([y.data, t.data, gX.data, gW.data])
    np.testing.assert_allclose(results[0][0], conv2d_naive(x, w, (2, 2), (1, 1)), rtol=1e-12, atol=1e-12)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = Tensor(np.ones((1, 2, 4, 4), dtype=dtype), requires_grad=True)
    w = Tensor(np.ones((3, 2, 3, 3), dtype=dtype), requires_grad=True)
    b = Tensor(np.ones(3, dtype=dtype), requires_grad=True)
    bt = Tensor(np.ones(2, dtype=dtype), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    t = F.conv_transpose2d(y, w, bt, stride=2, output_padding=1)
    assert y.dtype == t.dtype == dtype and t.shape == (1, 2, 10, 10)
    t.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == bt.grad.dtype == dtype


# ---------------------------------------------------------------------------------------
# Gradients: first and second order with respect to every input, bias included

@settings(max_examples=20, deadline=None)
@given(case=small_conv(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_gradcheck_gradgradcheck(case, bias, seed):
    N, C, OC, H, W, k, s, p, _ = case
    rng = np.random.default_rng(seed)
    inputs = [_t(rng.standard_normal((N, C, H, W))), _t(rng.standard_normal((OC, C) + k)),
              _t(rng.standard_normal(OC))]

    def fn(x, w, b):
        return F.conv2d(x, w, b if bias else None, s, p)

    assert tg.gradcheck(fn, inputs)
    assert tg.gradgradcheck(fn, inputs)


@settings(max_examples=20, deadline=None)
@given(case=small_conv(transpose=True), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_gradcheck_gradgradcheck(case, bias, seed):
    N, C, OC, H, W, k, s, p, op = case
    rng = np.random.default_rng(seed)
    inputs = [_t(rng.standard_normal((N, C, H, W))), _t(rng.standard_normal((C, OC) + k)),
              _t(rng.standard_normal(OC))]

    def fn(x, w, b):
        return F.conv_transpose2d(x, w, b if bias else None, s, p, op)

    assert tg.gradcheck(fn, inputs)
    assert tg.gradgradcheck(fn, inputs)


@settings(max_examples=20, deadline=None)
@given(case=small_conv(), seed=st.integers(0, 2**16))
def test_conv2d_grad_weight_gradcheck_gradgradcheck(case, seed):
    N, C, OC, H, W, k, s, p, _ = case
    rng = np.random.default_rng(seed)
    gy_shape = (N, OC, _out(H, k[0], s[0], p[0]), _out(W, k[1], s[1], p[1]))
    inputs = [_t(rng.standard_normal((N, C, H, W))), _t(rng.standard_normal(gy_shape))]

    def fn(x, gy):
        return F.conv2d_grad_weight(x, gy, k, s, p)

    assert tg.gradcheck(fn, inputs)
    assert tg.gradgradcheck(fn, inputs)


def test_grad_weight_backward_uses_the_incoming_ggW():
    """DeZero's Conv2DGradW.backward ignored its argument; then d<gW, V>/dx would not depend on V.
    By the adjoint identity it must be conv_transpose2d(gy, V) and d/dgy = conv2d(x, V)."""
    rng = np.random.default_rng(2)
    x, gy = _t(rng.standard_normal((2, 2, 5, 5))), _t(rng.standard_normal((2, 3, 3, 3)))
    for _ in range(2):
        V = rng.standard_normal((3, 2, 3, 3))
        gW = F.conv2d_grad_weight(x, gy, 3, 2, 1)
        gx, ggy = tg.grad((gW * Tensor(V)).sum(), [x, gy])
        np.testing.assert_allclose(gx.data, conv_transpose2d_naive(gy.data, V, (2, 2), (1, 1)), rtol=1e-12)
        np.testing.assert_allclose(ggy.data, conv2d_naive(x.data, V, (2, 2), (1, 1)), rtol=1e-12)


@pytest.mark.parametrize("wanted", ["x", "w", "b"])
def test_gradients_with_respect_to_one_input_at_a_time(wanted):
    rng = np.random.default_rng(3)
    x = _t(rng.standard_normal((1, 2, 3, 4)), wanted == "x")
    w = _t(rng.standard_normal((2, 2, 2, 3)), wanted == "w")
    b = _t(rng.standard_normal(2), wanted == "b")
    for f in (lambda x, w, b: F.conv2d(x, w, b, (1, 2), (1, 1)),
              lambda x, w, b: F.conv_transpose2d(x, w, b, (2, 1), (0, 1), (1, 0))):
        assert tg.gradcheck(f, [x, w, b])
        assert tg.gradgradcheck(f, [x, w, b])


def _count_kernel_calls(monkeypatch):
    calls = []
    real_get = kernels.get

    def counting_get(name, xp=np):
        calls.append(name)
        return real_get(name, xp)
    monkeypatch.setattr(conv_module.kernels, "get", counting_get)
    return calls


def test_no_input_gradient_for_constant_images(monkeypatch):
    """D's first conv on a batch of images: the backward must not compute gx (a conv_transpose2d)."""
    rng = np.random.default_rng(4)
    images = _t(rng.standard_normal((2, 1, 6, 6)), grad=False)
    w = _t(rng.standard_normal((3, 1, 4, 4)))
    y = F.conv2d(images, w, None, 2, 1)
    calls = _count_kernel_calls(monkeypatch)
    y.sum().backward()
    assert calls == ["conv2d_grad_weight"] and images.grad is None and w.grad is not None


def test_input_gradient_only_computes_no_weight_gradient(monkeypatch):
    """tinygan.grad(D(x), x) (a gradient penalty's first step) must not compute gW or gb."""
    rng = np.random.default_rng(5)
    x, b = _t(rng.standard_normal((2, 1, 6, 6))), _t(np.zeros(3))
    for op, w, adjoint in ((F.conv2d, _t(rng.standard_normal((3, 1, 4, 4))), "conv_transpose2d"),
                           (F.conv_transpose2d, _t(rng.standard_normal((1, 3, 4, 4))), "conv2d")):
        y = op(x, w, b, 2, 1)
        calls = _count_kernel_calls(monkeypatch)
        gx, = tg.grad(y.sum(), x)
        assert gx.shape == x.shape and calls == [adjoint]


# ---------------------------------------------------------------------------------------
# A WGAN-GP penalty through a conv critic: a gradient of a gradient, differentiated in the weights

def _critic(x, w1, b1, w2, b2, act):
    h = act(F.conv2d(x, w1, b1, stride=2, padding=1))
    return F.conv2d(h, w2, b2).reshape(x.shape[0], -1).sum(1)


def _smooth_tanh(z):
    return 1.0 - 2.0 / ((z * 2.0).exp() + 1.0)


def _activation(name):
    if name == "tanh":
        return getattr(F, "tanh", _smooth_tanh)
    if not hasattr(F, "leaky_relu"):
        pytest.skip("F.leaky_relu is not written yet")
    return lambda z: F.leaky_relu(z, 0.2)


def _gp_inputs(seed=6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 1, 4, 4))
    params = [rng.standard_normal((2, 1, 4, 4)) * 0.5, rng.standard_normal(2) * 0.1,
              rng.standard_normal((1, 2, 2, 2)) * 0.5, rng.standard_normal(1) * 0.1]
    return x, params


def _penalty(x, params, act):
    with tg.enable_grad():                   # gradcheck's finite differences call this under no_grad
        xt = _t(x)
        d = _critic(xt, *params, act)
        gx, = tg.grad(d.sum(), xt, create_graph=True)
        norm = (gx.reshape(x.shape[0], -1) ** 2).sum(1).sqrt()
        return ((norm - 1.0) ** 2).mean()


@pytest.mark.parametrize("act", ["tanh", "leaky_relu"])
def test_wgan_gp_penalty_gradient_in_the_weights(act):
    act = _activation(act)
    x, params = _gp_inputs()
    hidden = F.conv2d(_t(x, False), _t(params[0], False), _t(params[1], False), 2, 1).data
    assert np.abs(hidden).min() > 1e-3          # leaky-ReLU's kink stays far from the FD steps
    assert tg.gradcheck(lambda *ps: _penalty(x, ps, act), [_t(p) for p in params])


@pytest.mark.parametrize("act", ["tanh", "leaky_relu"])
def test_wgan_gp_penalty_matches_torch(act):
    torch = pytest.importorskip("torch")
    tact = torch.tanh if act == "tanh" else (lambda z: torch.nn.functional.leaky_relu(z, 0.2))
    act = _activation(act)
    x, params = _gp_inputs()
    ps = [_t(p) for p in params]
    pen = _penalty(x, ps, act)
    pen.backward()

    tx = torch.tensor(x, requires_grad=True)
    tps = [torch.tensor(p, requires_grad=True) for p in params]
    h = tact(torch.nn.functional.conv2d(tx, tps[0], tps[1], stride=2, padding=1))
    d = torch.nn.functional.conv2d(h, tps[2], tps[3]).reshape(2, -1).sum(1)
    gx, = torch.autograd.grad(d.sum(), tx, create_graph=True)
    tpen = ((gx.reshape(2, -1).pow(2).sum(1).sqrt() - 1) ** 2).mean()
    tpen.backward()
    np.testing.assert_allclose(pen.item(), tpen.item(), rtol=1e-10)
    assert ps[3].grad is None and tps[3].grad is None       # the last bias does not move grad_x D
    for p, tp in zip(ps[:3], tps[:3]):
        # with leaky-ReLU, b1 only moves the (constant) mask: no path here, a zero tensor in torch
        ours = np.zeros(p.shape) if p.grad is None else p.grad.data
        theirs = np.zeros(p.shape) if tp.grad is None else tp.grad.numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------
# PyTorch cross-check (optional): forward and first- and second-order gradients

@settings(max_examples=20, deadline=None)
@given(transpose=st.booleans(), data=st.data(), seed=st.integers(0, 2**16))
def test_matches_torch(transpose, data, seed):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    N, C, OC, H, W, k, s, p, op = data.draw(small_conv(transpose))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((C, OC) + k if transpose else (OC, C) + k)
    b = rng.standard_normal(OC)
    if transpose:
        ours = lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op)
        theirs = lambda x, w, b: TF.conv_transpose2d(x, w, b, s, p, op)
    else:
        ours = lambda x, w, b: F.conv2d(x, w, b, s, p)
        theirs = lambda x, w, b: TF.conv2d(x, w, b, s, p)
    X, Wt, B = _t(x), _t(w), _t(b)
    tX, tW, tB = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y, ty = ours(X, Wt, B), theirs(tX, tW, tB)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    grads = tg.grad(y, [X, Wt, B], Tensor(g), create_graph=True)
    tgrads = torch.autograd.grad(ty, [tX, tW, tB], torch.tensor(g), create_graph=True)
    for a, ta in zip(grads, tgrads):
        np.testing.assert_allclose(a.data, ta.detach().numpy(), rtol=1e-10, atol=1e-12)
    # second order: differentiate a scalar of the first-order gradients
    v = [rng.standard_normal(a.shape) for a in grads]
    second = tg.grad(sum((a * Tensor(vi)).sum() for a, vi in zip(grads, v)), [X, Wt], allow_unused=True)
    tsecond = torch.autograd.grad(sum((a * torch.tensor(vi)).sum() for a, vi in zip(tgrads, v)),
                                  [tX, tW], allow_unused=True)
    for a, ta in zip(second, tsecond):
        np.testing.assert_allclose(a.data, ta.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# Door checks: each bad input raises ValueError/TypeError naming the op, argument and shapes

def _z(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype=dtype))


BAD_CALLS = [
    (lambda: F.conv2d(_z(3, 32, 32), _z(64, 3, 4, 4)), ValueError,
     r"conv2d: input must be 4-D NCHW, got shape \(3, 32, 32\)"),
    (lambda: F.conv2d(_z(8, 3, 32, 32), _z(64, 3, 4)), ValueError,
     r"conv2d: weight must be 4-D \(C_out, C_in, KH, KW\), got shape \(64, 3, 4\)"),
    (lambda: F.conv2d(_z(8, 3, 32, 32), _z(64, 1, 4, 4)), ValueError,
     r"^conv2d: input \(8, 3, 32, 32\) has 3 channels but weight \(64, 1, 4, 4\) expects 1$"),
    (lambda: F.conv2d(_z(1, 1, 2, 3), _z(1, 1, 5, 3), padding=1), ValueError,
     r"conv2d: kernel \(5, 3\) is larger than the padded input \(4, 5\) \(input \(1, 1, 2, 3\), "
     r"weight \(1, 1, 5, 3\), padding \(1, 1\)\)"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(1, 1, 0, 3)), ValueError,
     r"conv2d: weight \(1, 1, 0, 3\) has an empty kernel"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), stride=0), ValueError,
     r"conv2d: stride must be >= 1, got \(0, 0\)"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), stride=(1, 0)), ValueError,
     r"conv2d: stride must be >= 1, got \(1, 0\)"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), padding=(-1, 0)), ValueError,
     r"conv2d: padding must be >= 0, got \(-1, 0\)"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), stride=1.5), TypeError,
     r"conv2d: stride must be an int or a pair of ints, got 1.5"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), padding=(1, 1, 1)), TypeError,
     r"conv2d: padding must be an int or a pair of ints, got \(1, 1, 1\)"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(2, 1, 3, 3), _z(3)), ValueError,
     r"conv2d: bias has shape \(3,\) but weight \(2, 1, 3, 3\) has 2 output channels, expected \(2,\)"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(2, 1, 3, 3), _z(1, 2)), ValueError,
     r"conv2d: bias has shape \(1, 2\) but weight \(2, 1, 3, 3\)"),
    (lambda: F.conv2d(Tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), _z(1, 1, 3, 3)), TypeError,
     r"conv2d: input must be floating point, got int64"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), Tensor(np.zeros((1, 1, 3, 3), dtype=np.int32))), TypeError,
     r"conv2d: weight must be floating point, got int32"),
    (lambda: F.conv2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3, dtype=np.float64)), TypeError,
     r"conv2d: input is float32 but weight is float64"),
    (lambda: F.conv2d([[1.0]], _z(1, 1, 3, 3)), TypeError,
     r"conv2d: input must be a Tensor or an array, got list"),
    (lambda: F.conv_transpose2d(_z(3, 4, 4), _z(3, 2, 4, 4)), ValueError,
     r"conv_transpose2d: input must be 4-D NCHW, got shape \(3, 4, 4\)"),
    (lambda: F.conv_transpose2d(_z(1, 3, 4, 4), _z(3, 2, 4)), ValueError,
     r"conv_transpose2d: weight must be 4-D \(C_in, C_out, KH, KW\), got shape \(3, 2, 4\)"),
    (lambda: F.conv_transpose2d(_z(8, 100, 1, 1), _z(64, 100, 4, 4)), ValueError,
     r"^conv_transpose2d: input \(8, 100, 1, 1\) has 100 channels but weight \(64, 100, 4, 4\) expects 64$"),
    (lambda: F.conv_transpose2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), stride=2, output_padding=2), ValueError,
     r"conv_transpose2d: output_padding \(2, 2\) must be >= 0 and smaller than stride \(2, 2\)"),
    (lambda: F.conv_transpose2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), output_padding=(0, 1)), ValueError,
     r"conv_transpose2d: output_padding \(0, 1\) must be >= 0 and smaller than stride \(1, 1\)"),
    (lambda: F.conv_transpose2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), stride=(2, 0)), ValueError,
     r"conv_transpose2d: stride must be >= 1, got \(2, 0\)"),
    (lambda: F.conv_transpose2d(_z(1, 1, 4, 4), _z(1, 1, 3, 3), padding=-1), ValueError,
     r"conv_transpose2d: padding must be >= 0, got \(-1, -1\)"),
    (lambda: F.conv_transpose2d(_z(1, 1, 1, 1), _z(1, 1, 2, 2), padding=1), ValueError,
     r"conv_transpose2d: output size \(0, 0\) is not positive \(input \(1, 1, 1, 1\), weight "
     r"\(1, 1, 2, 2\), stride \(1, 1\), padding \(1, 1\), output_padding \(0, 0\)\)"),
    (lambda: F.conv_transpose2d(_z(1, 2, 4, 4), _z(2, 3, 3, 3), _z(2)), ValueError,
     r"conv_transpose2d: bias has shape \(2,\) but weight \(2, 3, 3, 3\) has 3 output channels, expected \(3,\)"),
    (lambda: F.conv_transpose2d(_z(1, 2, 4, 4, dtype=np.float16), _z(2, 3, 3, 3)), TypeError,
     r"conv_transpose2d: input is float16 but weight is float32"),
    (lambda: F.conv_transpose2d(_z(1, 1, 2, 2), _z(1, 1, 0, 2)), ValueError,
     r"conv_transpose2d: weight \(1, 1, 0, 2\) has an empty kernel \(0, 2\)"),
    (lambda: F.conv_transpose2d(_z(1, 1, 2, 2), _z(1, 1, 2, 2), _z(1, dtype=np.float64)), TypeError,
     r"conv_transpose2d: input is float32 but bias is float64"),
    (lambda: F.conv2d_grad_weight(_z(2, 3, 5, 5), _z(1, 4, 3, 3), 3), ValueError,
     r"conv2d_grad_weight: gy \(1, 4, 3, 3\) does not match the output \(2, 4, 3, 3\) of conv2d over "
     r"input \(2, 3, 5, 5\) with kernel_size \(3, 3\), stride \(1, 1\), padding \(0, 0\)"),
    (lambda: F.conv2d_grad_weight(_z(2, 3, 5, 5), _z(2, 4, 2, 3), 3, 2, 1), ValueError,
     r"conv2d_grad_weight: gy \(2, 4, 2, 3\) does not match the output \(2, 4, 3, 3\)"),
    (lambda: F.conv2d_grad_weight(_z(3, 5, 5), _z(2, 4, 3, 3), 3), ValueError,
     r"conv2d_grad_weight: input must be 4-D NCHW, got shape \(3, 5, 5\)"),
    (lambda: F.conv2d_grad_weight(_z(2, 3, 5, 5), _z(4, 3, 3), 3), ValueError,
     r"conv2d_grad_weight: gy must be 4-D NCHW, got shape \(4, 3, 3\)"),
    (lambda: F.conv2d_grad_weight(_z(2, 3, 2, 2), _z(2, 4, 1, 1), 3), ValueError,
     r"conv2d_grad_weight: kernel \(3, 3\) is larger than the padded input \(2, 2\)"),
    (lambda: F.conv2d_grad_weight(_z(2, 3, 5, 5), _z(2, 4, 3, 3), (3, 3, 3)), TypeError,
     r"conv2d_grad_weight: kernel_size must be an int or a pair of ints"),
    (lambda: F.conv2d_grad_weight(_z(2, 3, 5, 5), Tensor(np.zeros((2, 4, 3, 3), dtype=np.int64)), 3),
     TypeError, r"conv2d_grad_weight: gy must be floating point, got int64"),
]


@pytest.mark.parametrize("call,exc,message", BAD_CALLS)
def test_bad_input_message(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


def test_good_edge_cases_are_accepted():
    """The limits of the door checks: a kernel exactly as large as the padded input, padding
    larger than the kernel, the largest output_padding, a 1-pixel conv_transpose output."""
    assert F.conv2d(_z(1, 1, 2, 3), _z(1, 1, 4, 3), padding=(1, 0)).shape == (1, 1, 1, 1)
    assert F.conv2d(_z(1, 1, 2, 2), _z(1, 1, 1, 1), padding=2).shape == (1, 1, 6, 6)
    assert F.conv_transpose2d(_z(1, 1, 3, 3), _z(1, 1, 3, 3), stride=(3, 2), output_padding=(2, 1)).shape \
        == (1, 1, 11, 8)
    assert F.conv_transpose2d(_z(1, 1, 1, 1), _z(1, 1, 3, 3), padding=1).shape == (1, 1, 1, 1)
    y = F.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)))      # raw arrays are constants
    assert y.shape == (1, 1, 1, 1) and y.item() == 9.0 and not y.requires_grad


class _FakeGpuArray(np.ndarray):
    """A host array whose type claims to come from CuPy: Tensor.device then reports 'cuda',
    which lets the mixed-device check run on a machine without a GPU."""
    __module__ = "cupy._fake"


@pytest.mark.parametrize("which", ["weight", "bias"])
def test_mixed_devices_name_the_op(which):
    x = _z(1, 2, 4, 4)
    w = Tensor(np.zeros((3, 2, 3, 3), dtype=np.float32).view(_FakeGpuArray) if which == "weight"
               else np.zeros((3, 2, 3, 3), dtype=np.float32))
    b = Tensor(np.zeros(3, dtype=np.float32).view(_FakeGpuArray) if which == "bias"
               else np.zeros(3, dtype=np.float32))
    assert (w if which == "weight" else b).device == "cuda"
    with pytest.raises(ValueError, match=rf"^conv2d: input is on cpu but {which} is on cuda"):
        F.conv2d(x, w, b)
    wt = Tensor(w.data.reshape(2, 3, 3, 3))
    with pytest.raises(ValueError, match=rf"^conv_transpose2d: input is on cpu but {which} is on cuda"):
        F.conv_transpose2d(x, wt, b)


@pytest.mark.gpu
def test_mixed_devices_on_a_real_gpu():
    x = tg.zeros(1, 2, 4, 4)
    w = tg.zeros(3, 2, 3, 3).to("cuda")
    with pytest.raises(ValueError, match=r"^conv2d: input is on cpu but weight is on cuda"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"^conv2d_grad_weight: input is on cpu but gy is on cuda"):
        F.conv2d_grad_weight(x, tg.zeros(1, 3, 2, 2).to("cuda"), 3)


@pytest.mark.gpu
def test_gpu_matches_cpu(rng):
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    cpu = [_t(a) for a in (x, w, b)]
    gpu = [_t(a).to("cuda") for a in (x, w, b)]
    gpu = [Tensor(t.data, requires_grad=True) for t in gpu]
    for args, dev in ((cpu, "cpu"), (gpu, "cuda")):
        y = F.conv_transpose2d(F.conv2d(args[0], args[1], args[2], 2, 1), args[1], None, 2, 1, 1)
        (y * y).sum().backward()
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(c.grad.data, g.grad.numpy(), rtol=1e-10, atol=1e-10)
