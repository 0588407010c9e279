"""F.logsumexp: torch semantics, stability at extreme values, first and second derivatives."""
import numpy as np
import pytest

import tinygan.functional as F
from tinygan import Tensor, gradcheck, gradgradcheck


def leaf(*shape, seed=0, scale=1.0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape) * scale, requires_grad=True)


@pytest.mark.parametrize("dim, keepdim", [(0, False), (-1, True), ((0, 2), False), (None, False)])
def test_values_and_shapes_match_the_naive_formula(dim, keepdim):
    x = leaf(3, 4, 5)
    naive = np.log(np.exp(x.data).sum(axis=dim, keepdims=keepdim))
    y = F.logsumexp(x, dim, keepdim=keepdim)
    assert y.shape == naive.shape
    np.testing.assert_allclose(y.data, naive, rtol=1e-12)


def test_large_and_minus_infinite_inputs():
    # exp(1000) overflows: the naive formula gives inf, the shifted one 1000 + log 2.
    x = Tensor(np.array([[1000.0, 1000.0], [-1000.0, -1001.0], [-np.inf, -np.inf], [-np.inf, 3.0]]))
    y = F.logsumexp(x, 1).data
    np.testing.assert_allclose(y[:2], [1000 + np.log(2), -1000 + np.log1p(np.exp(-1))], rtol=1e-12)
    assert y[2] == -np.inf and y[3] == 3.0
    # float32 input stays float32 and finite where float32 exp would overflow
    big = Tensor(np.array([[100.0, 90.0]], np.float32))
    out = F.logsumexp(big, -1)
    assert out.dtype == np.float32 and np.isfinite(out.data).all()


@pytest.mark.parametrize("dim, keepdim", [(1, False), (-1, True), ((0, 2), False)])
def test_first_and_second_derivatives(dim, keepdim):
    x = leaf(2, 3, 4, scale=3.0)
    fn = lambda a: F.logsumexp(a, dim, keepdim=keepdim)   # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_gradient_is_the_softmax():
    x = leaf(4, 6, seed=1)
    F.logsumexp(x, 1).sum().backward()
    e = np.exp(x.data - x.data.max(1, keepdims=True))
    np.testing.assert_allclose(x.grad.data, e / e.sum(1, keepdims=True), rtol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="logsumexp: dim 3 is out of range"):
        F.logsumexp(leaf(2, 3), 3)
    with pytest.raises(ValueError, match="logsumexp: empty tensor"):
        F.logsumexp(Tensor(np.zeros((0, 3))), 1)
