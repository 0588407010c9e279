"""The conv kernels against the loop-level oracles of tests/oracles.py, and their adjointness.

Shapes, strides, paddings and output paddings are drawn by hypothesis; inputs come in several
memory layouts (contiguous, channels-last, a transposed view, a strided slice) because kernels
are where contiguity assumptions break.  Each test runs on the kernel that
`tinygan.kernels.get` returns in both modes: the reference one, and the fast one when a backend
registers it (until then "fast" falls back to the reference).
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from tinygan import kernels

from oracles import conv2d_grad_weight_naive, conv2d_naive, conv_transpose2d_naive

LAYOUTS = ["contiguous", "channels_last", "transposed", "strided"]


def layout(a, how):
    """The same values as `a` in another memory layout (a non-contiguous view but for the first)."""
    if how == "channels_last":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if how == "transposed":
        return np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)
    if how == "strided":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    return a


def kernel_for(mode):
    """kernel(name) -> the implementation `tinygan.kernels.get` picks in `mode`."""
    def kernel(name):
        old = kernels.get_mode()
        kernels.set_mode(mode)
        try:
            return kernels.get(name, np)
        finally:
            kernels.set_mode(old)
    return kernel


modes = pytest.mark.parametrize("mode", kernels.MODES)


@st.composite
def conv_case(draw, transpose=False):
    """(N, C, OC, H, W, (KH, KW), stride, padding, output_padding) for a valid conv or conv-T."""
    N, C, OC = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    if transpose:
        op = (draw(st.integers(0, s[0] - 1)), draw(st.integers(0, s[1] - 1)))
        assume(all((n - 1) * si - 2 * pi + ki + oi >= 1 for n, si, pi, ki, oi in zip((H, W), s, p, k, op)))
    else:
        op = (0, 0)
        assume(k[0] <= H + 2 * p[0] and k[1] <= W + 2 * p[1])
    return N, C, OC, H, W, k, s, p, op


def _conv_out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


@modes
@settings(max_examples=25, deadline=None)
@given(case=conv_case(), how=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**16))
def test_conv2d_matches_oracle(mode, case, how, seed):
    kernel = kernel_for(mode)
    N, C, OC, H, W, k, s, p, _ = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((OC, C) + k)
    y = kernel("conv2d")(layout(x, how), layout(w, how), s, p)
    expected = conv2d_naive(x, w, s, p)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@modes
@settings(max_examples=25, deadline=None)
@given(case=conv_case(transpose=True), how=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**16))
def test_conv_transpose2d_matches_oracle(mode, case, how, seed):
    kernel = kernel_for(mode)
    N, C, OC, H, W, k, s, p, op = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((C, OC) + k)
    y = kernel("conv_transpose2d")(layout(x, how), layout(w, how), s, p, op)
    expected = conv_transpose2d_naive(x, w, s, p, op)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@modes
@settings(max_examples=25, deadline=None)
@given(case=conv_case(), how=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**16))
def test_conv2d_grad_weight_matches_oracle(mode, case, how, seed):
    kernel = kernel_for(mode)
    N, C, OC, H, W, k, s, p, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    gy = rng.standard_normal((N, OC, _conv_out(H, k[0], s[0], p[0]), _conv_out(W, k[1], s[1], p[1])))
    gw = kernel("conv2d_grad_weight")(layout(x, how), layout(gy, how), k, s, p)
    expected = conv2d_grad_weight_naive(x, gy, k, s, p)
    assert gw.shape == expected.shape == (OC, C) + k
    np.testing.assert_allclose(gw, expected, rtol=1e-12, atol=1e-12)


@modes
@settings(max_examples=25, deadline=None)
@given(case=conv_case(), seed=st.integers(0, 2**16))
def test_adjointness(mode, case, seed):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> = <w, conv2d_grad_weight(x, y)>: the three
    kernels are one bilinear form read three ways (this is why the backward is made of them)."""
    kernel = kernel_for(mode)
    N, C, OC, H, W, k, s, p, _ = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((N, C, H, W)), rng.standard_normal((OC, C) + k)
    conv = kernel("conv2d")(x, w, s, p)
    y = rng.standard_normal(conv.shape)
    op = tuple((n + 2 * pi - ki) % si for n, ki, si, pi in zip((H, W), k, s, p))   # restores H, W
    back = kernel("conv_transpose2d")(y, w, s, p, op)
    gw = kernel("conv2d_grad_weight")(x, y, k, s, p)
    assert back.shape == x.shape
    lhs = np.vdot(conv, y)
    np.testing.assert_allclose(np.vdot(x, back), lhs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.vdot(w, gw), lhs, rtol=1e-10, atol=1e-10)


@modes
@settings(max_examples=15, deadline=None)
@given(case=conv_case(), seed=st.integers(0, 2**16))
def test_im2col_col2im_are_adjoint(mode, case, seed):
    kernel = kernel_for(mode)
    N, C, _, H, W, (KH, KW), s, p, _ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    col = kernel("im2col")(x, KH, KW, s, p)
    c = rng.standard_normal(col.shape)
    back = kernel("col2im")(c, x.shape, s, p)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(col, c), np.vdot(x, back), rtol=1e-10, atol=1e-10)


@modes
@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d", "conv2d_grad_weight"])
def test_float32_stays_float32(mode, name):
    kernel = kernel_for(mode)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    if name == "conv2d":
        out, ref = kernel(name)(x, w, (2, 1), (1, 0)), conv2d_naive(x, w, (2, 1), (1, 0))
    elif name == "conv_transpose2d":
        out, ref = kernel(name)(x, w, (2, 1), (1, 0), (1, 0)), conv_transpose2d_naive(x, w, (2, 1), (1, 0), (1, 0))
    else:
        gy = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
        out, ref = kernel(name)(x, gy, (3, 2), (2, 1), (1, 0)), conv2d_grad_weight_naive(x, gy, (3, 2), (2, 1), (1, 0))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_oracles_on_a_hand_computed_case():
    """The oracles themselves, on numbers small enough to check by hand."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)            # 0 1 2 / 3 4 5 / 6 7 8
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])        # x[p, q] - x[p+1, q+1]
    np.testing.assert_array_equal(conv2d_naive(x, w), np.full((1, 1, 2, 2), -4.0))
    np.testing.assert_array_equal(conv2d_naive(x, w, (2, 2), (1, 1))[0, 0], [[0.0, -2.0], [-6.0, -4.0]])
    one = np.ones((1, 1, 1, 1))
    np.testing.assert_array_equal(conv_transpose2d_naive(one, w, (2, 2))[0, 0], w[0, 0])
    two = np.ones((1, 1, 2, 1))                         # kernels at rows 0 and 2, output_padding 1
    np.testing.assert_array_equal(conv_transpose2d_naive(two, w, (2, 1), (0, 0), (1, 0))[0, 0],
                                  [[1, 0], [0, -1], [1, 0], [0, -1], [0, 0]])
    np.testing.assert_array_equal(conv2d_grad_weight_naive(x, np.ones((1, 1, 2, 2)), (2, 2))[0, 0],
                                  [[8.0, 12.0], [20.0, 24.0]])

