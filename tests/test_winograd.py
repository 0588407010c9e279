"""Winograd F(2×2, 2×2) for the k4 s2 p1 convolutions (kernels/winograd.py).

Its readable einsum version against reference.conv2d / conv2d_grad_weight (float64, tight);
the fast kernels against both, on drawn shapes, float32 and float64, contiguous or not; which
calls take the path; the transposed convolution as conv2d's adjoint, the same ways; the
transforms shared by a convolution's two backward products; finite-difference gradients of the conv ops through it (first and second order).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygan as tg
import tinygan.functional as F
from tinygan import Tensor, kernels
from tinygan.kernels import cpu, winograd
from tinygan.kernels import reference as ref
from kernel_checks import TOL, random_array

K, S, P = (4, 4), (2, 2), (1, 1)


@pytest.fixture
def every_channel_count(monkeypatch):
    """Let the path take any channel count, so that tiny shapes exercise it."""
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)



def recording_calls(monkeypatch, name):
    """Wrap winograd.<name> so that each call appends its argument's shape to the list returned."""
    calls, inner = [], getattr(winograd, name)
    monkeypatch.setattr(winograd, name, lambda a: calls.append(a.shape) or inner(a))
    return calls


@st.composite
def wino_case(draw):
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 5)), OC=draw(st.integers(1, 5)),
                H=4 * draw(st.integers(1, 3)), W=4 * draw(st.integers(1, 3)),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                contiguous=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 16)))


@pytest.mark.parametrize("shape, oc", [((2, 3, 8, 8), 5), ((1, 2, 4, 12), 3), ((3, 4, 16, 8), 2)])
def test_readable_version_equals_the_reference(shape, oc):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(shape), rng.standard_normal((oc, shape[1]) + K)
    y = ref.conv2d(x, w, S, P)
    np.testing.assert_allclose(winograd.conv2d_readable(x, w), y, **TOL[np.float64])
    gy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(winograd.conv2d_grad_weight_readable(x, gy),
                               ref.conv2d_grad_weight(x, gy, K, S, P), **TOL[np.float64])
    wt = rng.standard_normal((oc, shape[1]) + K)               # gy (N, oc, ·) -> x's shape
    np.testing.assert_allclose(winograd.conv_transpose2d_readable(gy, wt),
                               ref.conv_transpose2d(gy, wt, S, P, (0, 0)), **TOL[np.float64])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wino_case())
def test_fast_kernels_equal_the_reference(every_channel_count, case):
    rng = np.random.default_rng(case["seed"])
    dt, tol = case["dtype"], TOL[case["dtype"]]
    x = random_array(rng, (case["N"], case["C"], case["H"], case["W"]), dt, case["contiguous"])
    w = random_array(rng, (case["OC"], case["C"]) + K, dt, case["contiguous"])
    assert winograd.applies(x.shape, K, S, P)
    y = cpu.conv2d(x, w, S, P)
    assert y.dtype == dt and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref.conv2d(x, w, S, P), **tol)
    gy = random_array(rng, y.shape, dt, case["contiguous"])
    gw = cpu.conv2d_grad_weight(x, gy, K, S, P)
    assert gw.shape == w.shape and gw.dtype == dt
    np.testing.assert_allclose(gw, ref.conv2d_grad_weight(x, gy, K, S, P), **tol)
    # the Numba input transform computes what the einsums do (up to the order of 4 terms)
    x64 = np.asarray(x, np.float64)
    V = winograd.input_transform(np.ascontiguousarray(x64))
    readable = winograd._input_transform_readable(x64)          # [k, l, c, a, b, n, T, S]
    readable = readable.transpose(0, 1, 2, 3, 4, 6, 7, 5)        # tiles (T, S, n): n innermost
    np.testing.assert_allclose(V, readable.reshape(V.shape), rtol=1e-15, atol=1e-15)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wino_case())
def test_fast_transposed_convolution_equals_the_reference(every_channel_count, monkeypatch, case):
    """conv_transpose2d(x, w (C_in = OC, C_out = C)) to an (H, W) output, by conv2d's adjoint."""
    rng = np.random.default_rng(case["seed"])
    dt, tol = case["dtype"], TOL[case["dtype"]]
    x = random_array(rng, (case["N"], case["OC"], case["H"] // 2, case["W"] // 2), dt,
                     case["contiguous"])
    w = random_array(rng, (case["OC"], case["C"]) + K, dt, case["contiguous"])
    assert winograd.applies_transposed(x.shape, w.shape, S, P)
    calls = recording_calls(monkeypatch, "gy_transform")
    y = cpu.conv_transpose2d(x, w, S, P, (0, 0))
    assert calls == [x.shape]                                   # the path was taken
    assert y.shape == (case["N"], case["C"], case["H"], case["W"]) and y.dtype == dt
    assert y.flags.c_contiguous
    np.testing.assert_allclose(y, ref.conv_transpose2d(x, w, S, P, (0, 0)), **tol)
    # the Numba kernels compute what the einsums do (up to the order of a few terms)
    x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
    gM = winograd.gy_transform(np.ascontiguousarray(x64))
    np.testing.assert_allclose(winograd.conv_transpose2d(gM, w64, x.shape),
                               winograd.conv_transpose2d_readable(x64, w64), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("x_shape, c_out, s, p, op, takes", [
    ((2, 3, 4, 4), 16, (2, 2), (1, 1), (0, 0), True),
    ((2, 3, 2, 6), 16, (2, 2), (1, 1), (0, 0), True),
    ((2, 3, 4, 4), 15, (2, 2), (1, 1), (0, 0), False),     # too few output channels
    ((2, 3, 3, 4), 16, (2, 2), (1, 1), (0, 0), False),     # output height 6
    ((2, 3, 4, 4), 16, (2, 2), (1, 1), (1, 1), False),     # output_padding: a 9x9 output
    ((2, 3, 4, 4), 16, (1, 1), (1, 1), (0, 0), False),
    ((2, 3, 4, 4), 16, (2, 2), (0, 0), (0, 0), False),
    ((0, 3, 4, 4), 16, (2, 2), (1, 1), (0, 0), False),
])
def test_which_transposed_convolutions_take_the_path(monkeypatch, x_shape, c_out, s, p, op, takes):
    calls = recording_calls(monkeypatch, "gy_transform")
    rng = np.random.default_rng(5)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((x_shape[1], c_out) + K).astype(np.float32)
    y = cpu.conv_transpose2d(x, w, s, p, op)
    np.testing.assert_allclose(y, ref.conv_transpose2d(x, w, s, p, op), rtol=1e-4, atol=1e-4)
    assert len(calls) == (1 if takes else 0)


def test_dcgan_shapes_at_the_real_threshold():
    """D2's and D3's layers (and G2's, G3's input gradients) at batch 8, without the fixture."""
    rng = np.random.default_rng(1)
    for C, OC, H in [(64, 128, 16), (128, 256, 8)]:
        x = rng.standard_normal((8, C, H, H)).astype(np.float32)
        w = (0.02 * rng.standard_normal((OC, C) + K)).astype(np.float32)
        assert winograd.applies(x.shape, K, S, P)
        y = cpu.conv2d(x, w, S, P)
        np.testing.assert_allclose(y, ref.conv2d(x, w, S, P), rtol=1e-4, atol=1e-5)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        np.testing.assert_allclose(cpu.conv2d_grad_weight(x, gy, K, S, P),
                                   ref.conv2d_grad_weight(x, gy, K, S, P), rtol=1e-4, atol=1e-3)
        # the transposed convolution back to x's shape (D2's, D3's input gradient; G3, G2)
        np.testing.assert_allclose(cpu.conv_transpose2d(gy, w, S, P, (0, 0)),
                                   ref.conv_transpose2d(gy, w, S, P, (0, 0)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape, k, s, p, takes", [
    ((2, 16, 8, 8), (4, 4), (2, 2), (1, 1), True),
    ((2, 16, 4, 12), (4, 4), (2, 2), (1, 1), True),
    ((2, 15, 8, 8), (4, 4), (2, 2), (1, 1), False),      # too few channels
    ((2, 16, 6, 8), (4, 4), (2, 2), (1, 1), False),      # H not a multiple of 4
    ((2, 16, 8, 10), (4, 4), (2, 2), (1, 1), False),     # W not a multiple of 4
    ((2, 16, 8, 8), (3, 3), (2, 2), (1, 1), False),
    ((2, 16, 8, 8), (4, 4), (1, 1), (1, 1), False),
    ((2, 16, 8, 8), (4, 4), (2, 2), (0, 0), False),
    ((2, 16, 8, 8), (4, 4), (2, 1), (1, 1), False),
    ((0, 16, 8, 8), (4, 4), (2, 2), (1, 1), False),
    ((2, 16, 0, 8), (4, 4), (2, 2), (1, 1), False),      # an empty map
])
def test_which_calls_take_the_path(monkeypatch, shape, k, s, p, takes):
    assert winograd.applies(shape, k, s, p) is takes
    calls = recording_calls(monkeypatch, "input_transform")
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((3, shape[1]) + k).astype(np.float32)
    y = cpu.conv2d(x, w, s, p)
    np.testing.assert_allclose(y, ref.conv2d(x, w, s, p), rtol=1e-4, atol=1e-4)
    if x.size:
        cpu.conv2d_grad_weight(x, y, k, s, p)
    assert len(calls) == (2 if takes else 0)


@pytest.mark.skipif(not cpu.MALLOC_TUNED, reason="sharing is off with the buffer pool")
def test_a_transposed_conv_backward_transforms_gy_once(monkeypatch):
    kernels.set_mode("fast")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 4, 4)).astype(np.float32)
    w = rng.standard_normal((8, 16, 4, 4)).astype(np.float32)     # C_in 8 -> C_out 16
    calls = recording_calls(monkeypatch, "input_transform")
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = F.conv_transpose2d(xt, wt, stride=2, padding=1)          # (2, 16, 8, 8)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(Tensor(gy))
    assert calls == [(2, 16, 8, 8)]              # conv2d(gy, W) and the weight gradient share it
    np.testing.assert_allclose(xt.grad.numpy(), ref.conv2d(gy, w, S, P), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wt.grad.numpy(), ref.conv2d_grad_weight(gy, x, K, S, P),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not cpu.MALLOC_TUNED, reason="sharing is off with the buffer pool")
def test_a_conv_backward_transforms_gy_once(monkeypatch):
    """conv2d's input gradient (the Winograd transposed convolution) and its weight gradient
    both start from gy's tile transform: computed once."""
    kernels.set_mode("fast")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 16, 8, 8)).astype(np.float32)
    w = rng.standard_normal((8, 16, 4, 4)).astype(np.float32)     # C 16 -> OC 8
    calls = recording_calls(monkeypatch, "gy_transform")
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, stride=2, padding=1)                    # (2, 8, 4, 4)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(Tensor(gy))
    assert calls == [(2, 8, 4, 4)]
    np.testing.assert_allclose(xt.grad.numpy(), ref.conv_transpose2d(gy, w, S, P, (0, 0)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wt.grad.numpy(), ref.conv2d_grad_weight(x, gy, K, S, P),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d", "conv2d_grad_weight"])
def test_gradients_through_the_path(every_channel_count, op):
    """First and second order finite differences (float64) of each conv op on a shape that
    takes the Winograd path in its forward or backward."""
    kernels.set_mode("fast")
    rng = np.random.default_rng(4)
    t = lambda *shape: Tensor(rng.standard_normal(shape), requires_grad=True)
    if op == "conv2d":
        inputs, fn = [t(1, 2, 4, 4), t(2, 2, 4, 4)], lambda x, w: F.conv2d(x, w, None, S, P)
    elif op == "conv_transpose2d":
        inputs = [t(1, 2, 2, 2), t(2, 2, 4, 4)]
        fn = lambda x, w: F.conv_transpose2d(x, w, None, S, P)
    else:
        from tinygan.functional.conv import Conv2dGradWeight
        inputs = [t(1, 2, 4, 4), t(1, 2, 2, 2)]
        fn = lambda x, gy: Conv2dGradWeight(K, S, P)(x, gy)
    calls = []
    inner, inner_gy = winograd.input_transform, winograd.gy_transform
    winograd.input_transform = lambda a: calls.append("input") or inner(a)
    winograd.gy_transform = lambda a: calls.append("gy") or inner_gy(a)
    try:
        assert tg.gradcheck(fn, inputs)
        assert tg.gradgradcheck(fn, inputs)
    finally:
        winograd.input_transform, winograd.gy_transform = inner, inner_gy
    assert {"input", "gy"} <= set(calls)           # the path was taken, forward and adjoint
