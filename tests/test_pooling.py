"""avg_pool2d, max_pool2d, interpolate: values against loop oracles, gradients of first and
second order, the adjoint pairs behind them, PyTorch parity and the door checks."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import tinygan as tg
import tinygan.functional as F
from tinygan import Tensor

from oracles import pool2d_naive, upsample_nearest_naive


def _t(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _distinct(rng, shape):
    """Values at least 0.01 apart, so that no finite-difference step (1e-6) changes an argmax."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) - n / 2) * 0.01 + 0.003


@st.composite
def pool_case(draw, max_numel=48):
    """(shape, kernel_size, stride or None, padding) valid for PyTorch: padding <= kernel // 2."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    assume(k[0] <= shape[2] + 2 * p[0] and k[1] <= shape[3] + 2 * p[1])
    assume(np.prod(shape) <= max_numel)
    return shape, k, s, p


POOLS = {"avg": F.avg_pool2d, "max": F.max_pool2d}


# ---------------------------------------------------------------------------------------
# Pooling

@pytest.mark.parametrize("kind", ["avg", "max"])
@settings(max_examples=20, deadline=None)
@given(case=pool_case(max_numel=100), seed=st.integers(0, 2**16))
def test_pool_forward_matches_oracle(kind, case, seed):
    shape, k, s, p = case
    x = np.random.default_rng(seed).standard_normal(shape)
    y = POOLS[kind](_t(x, False), k, s, p)
    np.testing.assert_allclose(y.data, pool2d_naive(x, k, k if s is None else s, p, kind), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["avg", "max"])
@settings(max_examples=20, deadline=None)
@given(case=pool_case(), seed=st.integers(0, 2**16))
def test_pool_gradcheck_gradgradcheck(kind, case, seed):
    shape, k, s, p = case
    x = _t(_distinct(np.random.default_rng(seed), shape))

    def fn(x):
        return POOLS[kind](x, k, s, p)

    assert tg.gradcheck(fn, [x])
    assert tg.gradgradcheck(fn, [x])


def test_max_pool_gradient_goes_to_the_argmax():
    x = _t([[[[1.0, 5.0, 2.0],
               [3.0, 4.0, 9.0],
               [0.0, 8.0, 7.0]]]])
    y = F.max_pool2d(x, 2, stride=1)                    # overlapping windows share the 9 and the 8
    np.testing.assert_array_equal(y.data[0, 0], [[5.0, 9.0], [8.0, 9.0]])
    y.backward(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0, 1, 0], [0, 0, 1010], [0, 100, 0]])


def test_max_pool_ties_go_to_the_first_maximum_like_torch():
    x = _t(np.ones((1, 1, 4, 4)))
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(x.grad.data[0, 0], expected)


def test_max_pool_double_backward_is_linear_in_the_upstream_gradient():
    """gx = MaxPool2dGrad(gy) with a constant mask: d gx / d x = 0 and d<gx, v>/d gy = max-pool-pick(v)."""
    rng = np.random.default_rng(0)
    x = _t(_distinct(rng, (2, 2, 5, 5)))
    gy = _t(rng.standard_normal((2, 2, 3, 3)))
    y = F.max_pool2d(x, 3, 2, 1)
    gx, = tg.grad(y, x, gy, create_graph=True)
    v = rng.standard_normal(x.shape)
    ggy, = tg.grad((gx * Tensor(v)).sum(), gy)
    # pick v at the argmax of each window of x: the argmax of a window of x + c*onehot(argmax)
    picked = np.zeros(gy.shape)
    for n in range(2):
        for c in range(2):
            for p in range(3):
                for q in range(3):
                    rows, cols = slice(max(2 * p - 1, 0), 2 * p + 2), slice(max(2 * q - 1, 0), 2 * q + 2)
                    window = x.data[n, c, rows, cols]
                    j, i = np.unravel_index(np.argmax(window), window.shape)
                    picked[n, c, p, q] = v[n, c, rows, cols][j, i]
    np.testing.assert_allclose(ggy.data, picked)
    assert tg.grad((gx * Tensor(v)).sum(), x, allow_unused=True)[0] is None


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_pool_adjoint_pairs(kind):
    """<pool(x), gy> = <x, pool_grad(gy)>: the backward is the adjoint, for avg exactly, for max at
    the fixed argmax."""
    rng = np.random.default_rng(1)
    x = _t(_distinct(rng, (2, 3, 7, 6)))
    y = POOLS[kind](x, (3, 2), (2, 1), (1, 1))
    gy = rng.standard_normal(y.shape)
    gx, = tg.grad(y, x, Tensor(gy))
    lhs = np.vdot(y.data, gy)
    np.testing.assert_allclose(np.vdot(x.data, gx.data), lhs, rtol=1e-12)


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 1)), (2, 1, 1), (4, 3, 2)])
def test_pool_matches_torch(kind, k, s, p):
    torch = pytest.importorskip("torch")
    theirs = {"avg": torch.nn.functional.avg_pool2d, "max": torch.nn.functional.max_pool2d}[kind]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6))
    X, tX = _t(x), torch.tensor(x, requires_grad=True)
    y, ty = POOLS[kind](X, k, s, p), theirs(tX, k, s, p)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(X.grad.data, tX.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_pool_float32_default_stride_and_constant_input():
    x = Tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    a, m = F.avg_pool2d(x, 2), F.max_pool2d(x, 2)
    assert a.dtype == m.dtype == np.float32 and a.shape == m.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(a.data[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(m.data[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_allclose(F.avg_pool2d(x, 3, 1, 1).data[0, 0, 0, 0], (0 + 1 + 4 + 5) / 9, rtol=1e-6)


# ---------------------------------------------------------------------------------------
# interpolate (nearest)

@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 3), st.integers(1, 3)),
       scale=st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       seed=st.integers(0, 2**16))
def test_interpolate_integer_scale(shape, scale, seed):
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    x = _t(np.random.default_rng(seed).standard_normal(shape))
    y = F.interpolate(x, scale_factor=scale)
    np.testing.assert_array_equal(y.data, upsample_nearest_naive(x.data, (shape[2] * sh, shape[3] * sw)))

    def fn(x):
        return F.interpolate(x, scale_factor=scale)

    assert tg.gradcheck(fn, [x])
    assert tg.gradgradcheck(fn, [x])


@pytest.mark.parametrize("kwargs,out", [({"size": (5, 7)}, (5, 7)), ({"size": 2}, (2, 2)),
                                        ({"scale_factor": 1.5}, (4, 4)), ({"scale_factor": (0.5, 2.0)}, (1, 6))])
def test_interpolate_other_sizes(kwargs, out):
    x = _t(np.random.default_rng(3).standard_normal((1, 2, 3, 3)))
    y = F.interpolate(x, **kwargs)
    assert y.shape == (1, 2) + out
    if "size" in kwargs:
        np.testing.assert_array_equal(y.data, upsample_nearest_naive(x.data, out))
    assert tg.gradcheck(lambda x: F.interpolate(x, **kwargs), [x])
    assert tg.gradgradcheck(lambda x: F.interpolate(x, **kwargs), [x])


def test_interpolate_backward_sums_each_block():
    x = _t(np.zeros((1, 1, 2, 2)))
    y = F.interpolate(x)                                  # default scale_factor=2
    assert y.shape == (1, 1, 4, 4)
    g = np.arange(16.0).reshape(1, 1, 4, 4)
    y.backward(g)
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                                      [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])


@pytest.mark.parametrize("kwargs", [{"scale_factor": 2}, {"scale_factor": (3, 2)}, {"size": (14, 9)},
                                    {"size": 5}, {"scale_factor": 1.5}, {"scale_factor": 2.4},
                                    {"scale_factor": 0.5}, {"scale_factor": (1.7, 0.34)}])
def test_interpolate_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 6))
    X, tX = _t(x), torch.tensor(x, requires_grad=True)
    y, ty = F.interpolate(X, **kwargs), torch.nn.functional.interpolate(tX, mode="nearest", **kwargs)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(X.grad.data, tX.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------
# Door checks

def _z(*shape, dtype=np.float32):
    return Tensor(np.zeros(shape, dtype=dtype))


BAD_CALLS = [
    (lambda: F.avg_pool2d(_z(3, 8, 8), 2), ValueError, r"avg_pool2d: input must be 4-D NCHW, got shape \(3, 8, 8\)"),
    (lambda: F.max_pool2d(_z(1, 3, 8), 2), ValueError, r"max_pool2d: input must be 4-D NCHW, got shape \(1, 3, 8\)"),
    (lambda: F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), 2), TypeError,
     r"max_pool2d: input must be floating point, got int64"),
    (lambda: F.avg_pool2d(_z(1, 1, 4, 4), 0), ValueError, r"avg_pool2d: kernel_size must be >= 1, got \(0, 0\)"),
    (lambda: F.avg_pool2d(_z(1, 1, 4, 4), (2, 2, 2)), TypeError,
     r"avg_pool2d: kernel_size must be an int or a pair of ints, got \(2, 2, 2\)"),
    (lambda: F.max_pool2d(_z(1, 1, 4, 4), 2, stride=0), ValueError, r"max_pool2d: stride must be >= 1, got \(0, 0\)"),
    (lambda: F.max_pool2d(_z(1, 1, 4, 4), 2, padding=2), ValueError,
     r"max_pool2d: padding \(2, 2\) must be >= 0 and at most half of kernel_size \(2, 2\)"),
    (lambda: F.avg_pool2d(_z(1, 1, 4, 4), 2, padding=-1), ValueError,
     r"avg_pool2d: padding \(-1, -1\) must be >= 0"),
    (lambda: F.max_pool2d(_z(1, 1, 2, 5), 3), ValueError,
     r"max_pool2d: kernel_size \(3, 3\) is larger than the padded input \(2, 5\) \(input \(1, 1, 2, 5\), "
     r"padding \(0, 0\)\)"),
    (lambda: F.avg_pool2d([[1.0]], 2), TypeError, r"avg_pool2d: input must be a Tensor or an array, got list"),
    (lambda: F.interpolate(_z(1, 4, 4), scale_factor=2), ValueError,
     r"interpolate: input must be 4-D NCHW, got shape \(1, 4, 4\)"),
    (lambda: F.interpolate(_z(1, 1, 4, 4), scale_factor=2, mode="area"), ValueError,
     r"interpolate: mode must be one of 'nearest', 'bilinear', 'bicubic', got mode='area'"),
    (lambda: F.interpolate(_z(1, 1, 4, 4), size=8, scale_factor=2), ValueError,
     r"interpolate: give only one of size and scale_factor"),
    (lambda: F.interpolate(_z(1, 1, 4, 4), scale_factor=0), ValueError,
     r"interpolate: scale_factor must be positive, got 0"),
    (lambda: F.interpolate(_z(1, 1, 4, 4), scale_factor=0.1), ValueError,
     r"interpolate: scale_factor 0.1 gives an empty output \(0, 0\) for input \(1, 1, 4, 4\)"),
    (lambda: F.interpolate(_z(1, 1, 4, 4), scale_factor="2"), TypeError,
     r"interpolate: scale_factor must be a number or a pair of numbers, got '2'"),
    (lambda: F.interpolate(_z(1, 1, 4, 4), size=(0, 3)), ValueError, r"interpolate: size must be positive, got \(0, 3\)"),
    (lambda: F.interpolate(_z(1, 1, 4, 4), size=2.5), TypeError, r"interpolate: size must be an int or a pair of ints"),
    (lambda: F.interpolate(Tensor(np.zeros((1, 1, 2, 2), dtype=np.int32))), TypeError,
     r"interpolate: input must be floating point, got int32"),
]


@pytest.mark.parametrize("call,exc,message", BAD_CALLS)
def test_bad_input_message(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.gpu
@pytest.mark.parametrize("op", [lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: F.avg_pool2d(x, 2),
                                lambda x: F.interpolate(x, scale_factor=2), lambda x: F.interpolate(x, size=5)])
def test_gpu_matches_cpu(op, rng):
    x = rng.standard_normal((2, 3, 6, 6))
    grads = []
    for dev in ("cpu", "cuda"):
        X = Tensor(_t(x, False).to(dev).data, requires_grad=True)
        y = op(X)
        (y * y).sum().backward()
        grads.append(X.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)
