"""The gradient checker itself: it must pass right backwards and catch wrong ones.

A checker that never fails proves nothing, so most tests here feed it deliberately broken
custom Functions and look at what it reports.
"""
import re

import numpy as np
import pytest

import tinygan as tg
from tinygan import Function, GradcheckError, Tensor


def leaf(*shape, seed=0, requires_grad=True):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


class Cube(Function):
    """y = x^3 with a configurable mistake in the backward."""

    def __init__(self, bug=None):
        self.bug = bug

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        x, = self.inputs
        if self.bug == "detached":
            # Right value, but 3x^2 is captured as a constant: its derivative 6x is lost.
            return gy * Tensor(3 * x.data ** 2)
        if self.bug == "one_element":
            off = np.zeros(x.shape)
            off[1, 2] = 0.5                        # wrong by 0.5 at exactly one element
            return gy * x * x * 3.0 + gy * off
        if self.bug == "mean_upstream":
            # Right only when the upstream gradient is the same everywhere (all ones).
            return gy.mean() * x * x * 3.0
        return gy * x * x * 3.0


PARSE = re.compile(r"input (\d+) \(shape (\([\d, ]*\))\) at index (\([\d, ]*\)): "
                   r"analytic (\S+) vs numerical (\S+)")


def parse(err: GradcheckError):
    m = PARSE.search(str(err))
    assert m, f"unexpected message: {err}"
    return int(m[1]), m[2], eval(m[3]), float(m[4]), float(m[5])


def test_passes_a_correct_backward_and_returns_true():
    x = leaf(2, 3)
    assert tg.gradcheck(lambda t: Cube()(t), [x]) is True
    assert tg.gradgradcheck(lambda t: Cube()(t), [x]) is True
    assert tg.gradcheck(lambda t: Cube()(t), x) is True          # a single input needs no list


def test_error_is_an_assertion_error_and_exported():
    assert issubclass(tg.GradcheckError, AssertionError)
    assert tg.GradcheckError is GradcheckError


def test_catches_a_wrong_element_and_names_input_index_and_values():
    x, w = leaf(2, 3, seed=1), leaf(2, 3, seed=2)
    fn = lambda a, b: a * b + Cube("one_element")(b)              # noqa: E731  wrong in input 1 only
    with pytest.raises(GradcheckError) as info:
        tg.gradcheck(fn, [x, w])
    i, shape, index, analytic, numeric = parse(info.value)
    assert (i, shape, index) == (1, "(2, 3)", (1, 2))
    # Both values are the Jacobian's own entries d out[1, 2] / d b[1, 2], not projections on
    # the random upstream gradient the check itself uses.
    true = x.data[1, 2] + 3 * w.data[1, 2] ** 2
    assert numeric == pytest.approx(true, rel=1e-6)
    assert analytic == pytest.approx(true + 0.5, rel=1e-6)
    assert "d output[1, 2] / d input 1[1, 2]" in str(info.value)


def test_failure_names_the_jacobian_entry_a_learner_can_check_by_hand():
    """f(t) = Σ t² + t₂·detach(t₂): df/dt₂ is 2·7 + 7 = 21 by the graph, 4·7 = 28 in truth.
    The message says so, not 2.64 vs 3.52 (both times the random upstream gradient 0.126)."""
    t = Tensor(np.array([0.25, -1.5, 7.0]), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        tg.gradcheck(lambda t: (t * t).sum() + t[2] * t[2].detach(), [t])
    i, shape, index, analytic, numeric = parse(info.value)
    assert (i, shape, index) == (0, "(3,)", (2,))
    assert analytic == pytest.approx(21.0, rel=1e-9)
    assert numeric == pytest.approx(28.0, rel=1e-6)
    assert "analytic 21 vs numerical 28 " in str(info.value)


def test_uses_random_upstream_gradients():
    """A backward that is right only for all-ones upstream gradients must be caught."""
    x = leaf(2, 3)
    g, = tg.grad(Cube("mean_upstream")(x).sum(), x)             # all-ones: looks right
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    with pytest.raises(GradcheckError):
        tg.gradcheck(lambda t: Cube("mean_upstream")(t), [x])


def test_second_order_only_bug_passes_gradcheck_but_fails_gradgradcheck():
    x = leaf(2, 3)
    fn = lambda t: Cube("detached")(t)                           # noqa: E731
    assert tg.gradcheck(fn, [x])
    with pytest.raises(GradcheckError) as info:
        tg.gradgradcheck(fn, [x])
    i, shape, index, analytic, numeric = parse(info.value)
    assert i == 0 and shape == "(2, 3)"
    assert analytic == 0.0                                       # the lost 6x term
    assert abs(numeric) > 1e-3


def test_gradgradcheck_also_checks_the_upstream_gradient_input():
    """The first-order function is (x, v) -> d<v, f(x)>/dx; it must be linear in v too."""
    x = Tensor(np.array([[0.5, -1.0, 2.0]]), requires_grad=True)

    class Leaky(Function):
        def forward(self, x):
            return x * x

        def backward(self, gy):
            x, = self.inputs
            return gy * gy * x * 2.0 / gy.detach()     # right value, but d/dgy is doubled

    assert tg.gradcheck(lambda t: Leaky()(t), [x])
    with pytest.raises(GradcheckError) as info:
        tg.gradgradcheck(lambda t: Leaky()(t), [x])
    assert parse(info.value)[0] == 1                              # input 1 is the upstream grad v


def test_tuple_outputs_are_checked():
    x = leaf(2, 3)

    def fn(t):
        return t * 2.0, Cube()(t).sum(1)

    assert tg.gradcheck(fn, [x])
    assert tg.gradgradcheck(fn, [x])

    def broken(t):
        return t * 2.0, Cube("one_element")(t)

    with pytest.raises(GradcheckError, match=r"input 0 .* at index \(1, 2\)"):
        tg.gradcheck(broken, [x])


def test_inputs_not_requiring_grad_are_not_checked():
    x = leaf(2, 3)
    c = leaf(2, 3, seed=5, requires_grad=False)
    # Cube("one_element") is wrong, but only for an input that nobody asked about.
    assert tg.gradcheck(lambda a, b: a * Cube("one_element")(b), [x, c])
    idx = tg.tensor(np.array([2, 0, 0]))                          # an integer input passes through
    assert tg.gradcheck(lambda a, i: a[:, i.data], [x, idx])
    assert tg.gradgradcheck(lambda a, i: a[:, i.data] * a[:, i.data], [x, idx])


def test_an_unused_input_has_zero_gradient_both_ways():
    x, unused = leaf(3), leaf(3, seed=1)
    assert tg.gradcheck(lambda a, b: a * 2.0, [x, unused])
    assert tg.gradgradcheck(lambda a, b: a * a, [x, unused])


def test_unused_input_with_a_nonzero_numerical_gradient_is_caught():
    """If fn secretly depends on an input through raw arrays, analytic 0 != numerical."""
    x, w = leaf(3), leaf(3, seed=1)
    with pytest.raises(GradcheckError, match=r"input 1 .* analytic 0 vs numerical"):
        tg.gradcheck(lambda a, b: a * Tensor(b.data), [x, w])


def test_no_input_requiring_grad_is_an_error():
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        tg.gradcheck(lambda a: a * 2.0, [leaf(3, requires_grad=False)])
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        tg.gradgradcheck(lambda a: a * 2.0, [leaf(3, requires_grad=False)])


def test_float32_inputs_are_checked_in_float64_without_touching_them():
    x = tg.randn(2, 3, requires_grad=True)
    before = x.data.copy()
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return Cube()(t)

    assert tg.gradcheck(fn, [x], atol=1e-7, rtol=1e-6)            # float32 could not pass this
    assert seen and all(dt == np.float64 for dt in seen)
    np.testing.assert_array_equal(x.data, before)
    assert x.dtype == np.float32 and x.grad is None


def test_explicit_grad_outputs_and_tolerances():
    x = leaf(2, 3)
    v = np.ones((2, 3))
    assert tg.gradgradcheck(lambda t: Cube()(t), [x], grad_outputs=[v])
    assert tg.gradcheck(lambda t: Cube()(t), [x], grad_outputs=Tensor(v), eps=1e-5)
    # The all-ones upstream hides this bug, which is why gradcheck draws random ones by default.
    assert tg.gradcheck(lambda t: Cube("mean_upstream")(t), [x], grad_outputs=[v])
    # A loose tolerance lets the one-element bug through; the default one does not.
    assert tg.gradcheck(lambda t: Cube("one_element")(t), [x], atol=10.0)
    with pytest.raises(GradcheckError, match=r"atol=1e-05, rtol=0.001, eps=1e-06"):
        tg.gradcheck(lambda t: Cube("one_element")(t), [x])
