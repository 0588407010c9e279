"""Arithmetic, reduction and shape ops (functional/arith.py, reduce.py, shape.py).

Every op: forward against NumPy, first-order gradcheck and second-order gradgradcheck in float64,
with the inputs of kinked functions (abs, clip, maximum, amax) kept > 0.05 from their kinks.
Hypothesis draws broadcastable shape pairs, reduction dims and indexing keys.
"""
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tinygan as tg
import tinygan.functional as F
from tinygan import Tensor


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from(*points, shape, gap=0.05, lo=-2.0, hi=2.0):
    """Uniform values in [lo, hi] at least `gap` from each kink in `points`."""
    def make(rng):
        x = rng.uniform(lo, hi, shape)
        for _ in range(100):
            bad = np.zeros(shape, bool)
            for p in points:
                bad |= np.abs(x - p) < gap
            if not bad.any():
                return x
            x[bad] = rng.uniform(lo, hi, int(bad.sum()))
        raise AssertionError("could not draw values away from the kinks")
    return make


def const(maker):
    """An input that does not require grad (a condition, a constant operand)."""
    maker.constant = True
    return maker


@dataclass
class Case:
    name: str
    fn: object                    # tinygan ops on Tensors
    ref: object                   # the same on NumPy arrays
    makers: list                  # rng -> ndarray, one per input
    second_order: bool = True
    marks: list = field(default_factory=list)


def sum_to_np(g, shape):
    """Reference for reducing a broadcast gradient back to an operand's shape."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


MASK = np.array([[True, False, True], [False, False, True]])
IDX_REPEATS = np.array([0, 2, 0, 0, 1])
COND = np.array([[True, False, True], [False, True, True]])

CASES = [
    # --- arith ------------------------------------------------------------------------
    Case("add", lambda a, b: a + b, np.add, [normal(2, 3), normal(3)]),
    Case("add_both_broadcast", F.add, np.add, [normal(2, 1, 3), normal(4, 1)]),
    Case("add_scalar", lambda a: a + 2.0, lambda a: a + 2.0, [normal(2, 3)]),
    Case("sub", lambda a, b: a - b, np.subtract, [normal(3, 1), normal(1, 4)]),
    Case("rsub_scalar", lambda a: 2.0 - a, lambda a: 2.0 - a, [normal(3)]),
    Case("mul", lambda a, b: a * b, np.multiply, [normal(2, 3), normal(2, 3)]),
    Case("mul_const_array", lambda a, c: a * c, np.multiply, [normal(2, 3), const(normal(3))]),
    Case("div", lambda a, b: a / b, np.divide, [normal(2, 3), positive(2, 1)]),
    Case("rdiv_scalar", lambda a: 3.0 / a, lambda a: 3.0 / a, [positive(4)]),
    Case("neg", lambda a: -a, np.negative, [normal(2, 3)]),
    Case("pow2", lambda a: a ** 2, lambda a: a ** 2, [normal(2, 3)]),
    Case("pow3", lambda a: F.pow(a, 3), lambda a: a ** 3, [normal(2, 3)]),
    Case("pow_half", lambda a: a ** 0.5, np.sqrt, [positive(2, 3)]),
    Case("pow_negative", lambda a: a ** -1.5, lambda a: a ** -1.5, [positive(2, 3)]),
    Case("pow_tensor_exponent", lambda a, b: a ** b, np.power, [positive(2, 3), normal(3)]),
    Case("rpow_scalar_base", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [normal(4)]),
    Case("exp", F.exp, np.exp, [normal(2, 3)]),
    Case("exp_method", lambda a: a.exp(), np.exp, [normal(3)]),
    Case("log", F.log, np.log, [positive(2, 3)]),
    Case("sqrt", lambda a: a.sqrt(), np.sqrt, [positive(2, 3)]),
    Case("abs", F.abs, np.abs, [away_from(0.0, shape=(2, 3))]),
    Case("abs_builtin", lambda a: abs(a), np.abs, [away_from(0.0, shape=(4,))]),
    Case("clip", lambda a: a.clip(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7),
         [away_from(-0.5, 0.7, shape=(3, 4))]),
    Case("clip_min_only", lambda a: F.clip(a, min=0.2), lambda a: np.maximum(a, 0.2),
         [away_from(0.2, shape=(3, 4))]),
    Case("clamp_max_only", lambda a: F.clamp(a, max=-0.1), lambda a: np.minimum(a, -0.1),
         [away_from(-0.1, shape=(3, 4))]),
    Case("maximum", F.maximum, np.maximum,
         [lambda rng: rng.choice([-1, 1], (2, 3)) * rng.uniform(0.6, 2.0, (2, 3)),
          lambda rng: rng.uniform(-0.4, 0.4, 3)]),
    Case("where", lambda c, a, b: F.where(c, a, b), np.where,
         [const(lambda rng: COND), normal(2, 3), normal(3)]),
    Case("where_scalar", lambda c, a: F.where(c, a, 0.5), lambda c, a: np.where(c, a, 0.5),
         [const(lambda rng: COND), normal(2, 3)]),
    Case("matmul", lambda a, b: a @ b, np.matmul, [normal(3, 4), normal(4, 2)]),
    Case("matmul_batched", F.matmul, np.matmul, [normal(2, 3, 4), normal(2, 4, 2)]),
    Case("matmul_broadcast", F.matmul, np.matmul, [normal(2, 1, 3, 4), normal(3, 4, 2)]),
    Case("matmul_vec_vec", F.matmul, np.matmul, [normal(4), normal(4)]),
    Case("matmul_vec_mat", F.matmul, np.matmul, [normal(4), normal(4, 2)]),
    Case("matmul_mat_vec", F.matmul, np.matmul, [normal(3, 4), normal(4)]),
    Case("matmul_batched_vec", F.matmul, np.matmul, [normal(2, 3, 4), normal(4)]),
    Case("rmatmul_const", lambda b, a: a @ b, lambda b, a: a @ b, [normal(4, 2), const(normal(3, 4))]),
    # --- reduce -------------------------------------------------------------------------
    Case("sum_all", lambda a: a.sum(), np.sum, [normal(2, 3, 4)]),
    Case("sum_dim", lambda a: a.sum(1), lambda a: a.sum(1), [normal(2, 3, 4)]),
    Case("sum_dims_keepdim", lambda a: a.sum((0, 2), keepdim=True),
         lambda a: a.sum((0, 2), keepdims=True), [normal(2, 3, 4)]),
    Case("sum_neg_dim", lambda a: F.sum(a, -1, True), lambda a: a.sum(-1, keepdims=True),
         [normal(2, 3)]),
    Case("mean_all", lambda a: a.mean(), np.mean, [normal(2, 3, 4)]),
    Case("mean_dim", lambda a: a.mean(dim=0), lambda a: a.mean(0), [normal(2, 3, 4)]),
    Case("mean_dims_keepdim", lambda a: F.mean(a, (1, 2), keepdim=True),
         lambda a: a.mean((1, 2), keepdims=True), [normal(2, 3, 4)]),
    Case("var_all", lambda a: a.var(), lambda a: a.var(ddof=1), [normal(2, 3, 4)]),
    Case("var_dim", lambda a: a.var(1), lambda a: a.var(1, ddof=1), [normal(2, 3, 4)]),
    Case("var_dims_keepdim_biased", lambda a: F.var(a, (0, 2), keepdim=True, unbiased=False),
         lambda a: a.var((0, 2), keepdims=True), [normal(2, 3, 4)]),
    Case("amax_all", lambda a: a.max(), np.max, [normal(2, 3, 4)]),
    Case("amax_dim", lambda a: a.max(1), lambda a: a.max(1), [normal(2, 3, 4)]),
    Case("amax_dims_keepdim", lambda a: F.amax(a, (0, 2), keepdim=True),
         lambda a: a.max((0, 2), keepdims=True), [normal(2, 3, 4)]),
    Case("sum_to", lambda a: F.sum_to(a, (3, 1)), lambda a: sum_to_np(a, (3, 1)), [normal(2, 3, 4)]),
    Case("sum_to_scalar", lambda a: F.sum_to(a, ()), np.sum, [normal(2, 3)]),
    Case("broadcast_to", lambda a: F.broadcast_to(a, (2, 3, 4)),
         lambda a: np.broadcast_to(a, (2, 3, 4)), [normal(3, 1)]),
    Case("expand", lambda a: a.expand(2, 3), lambda a: np.broadcast_to(a, (2, 3)), [normal(3)]),
    # --- shape --------------------------------------------------------------------------
    Case("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [normal(2, 3, 4)]),
    Case("reshape_tuple", lambda a: F.reshape(a, (6, 4)), lambda a: a.reshape(6, 4), [normal(2, 3, 4)]),
    Case("view", lambda a: a.view(-1), lambda a: a.reshape(-1), [normal(2, 3)]),
    Case("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [normal(2, 3, 4)]),
    Case("permute_tuple", lambda a: F.permute(a, (1, 0, 2)), lambda a: a.transpose(1, 0, 2),
         [normal(2, 3, 4)]),
    Case("transpose", lambda a: a.transpose(0, -1), lambda a: a.swapaxes(0, -1), [normal(2, 3, 4)]),
    Case("T", lambda a: a.T, lambda a: a.T, [normal(2, 3)]),
    Case("getitem_int", lambda a: a[1], lambda a: a[1], [normal(3, 4)]),
    Case("getitem_negative_int", lambda a: a[-1, 2], lambda a: a[-1, 2], [normal(3, 4)]),
    Case("getitem_slices", lambda a: a[:, 1:3], lambda a: a[:, 1:3], [normal(3, 4)]),
    Case("getitem_step_reverse", lambda a: a[::-1, ::2], lambda a: a[::-1, ::2], [normal(3, 4)]),
    Case("getitem_ellipsis", lambda a: a[..., 0], lambda a: a[..., 0], [normal(2, 3, 4)]),
    Case("getitem_none", lambda a: a[None, 1, :, None], lambda a: a[None, 1, :, None], [normal(3, 4)]),
    Case("getitem_int_array_repeats", lambda a: a[IDX_REPEATS], lambda a: a[IDX_REPEATS],
         [normal(3, 2)]),
    Case("getitem_list_repeats", lambda a: a[[2, 2, 0]], lambda a: a[[2, 2, 0]], [normal(3, 2)]),
    Case("getitem_2d_int_array", lambda a: a[:, np.array([[1, 1], [0, 3]])],
         lambda a: a[:, np.array([[1, 1], [0, 3]])], [normal(2, 4)]),
    Case("getitem_paired_arrays", lambda a: a[np.array([0, 1, 1]), np.array([2, 2, 0])],
         lambda a: a[np.array([0, 1, 1]), np.array([2, 2, 0])], [normal(2, 3)]),
    Case("getitem_bool_mask", lambda a: a[MASK], lambda a: a[MASK], [normal(2, 3)]),
    Case("getitem_bool_mask_tensor", lambda a: a[Tensor(MASK[0])], lambda a: a[MASK[0]],
         [normal(3, 2)]),
    Case("cat", lambda a, b, c: F.cat([a, b, c]), lambda a, b, c: np.concatenate([a, b, c]),
         [normal(1, 3), normal(2, 3), normal(1, 3)]),
    Case("cat_last_dim_with_const", lambda a, b: F.cat([a, b], dim=-1),
         lambda a, b: np.concatenate([a, b], -1), [normal(2, 2), const(normal(2, 3))]),
    Case("stack", lambda a, b: F.stack([a, b]), lambda a, b: np.stack([a, b]),
         [normal(2, 3), normal(2, 3)]),
    Case("stack_last_dim", lambda a, b: F.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], -1),
         [normal(2, 3), normal(2, 3)]),
    Case("flatten", F.flatten, lambda a: a.reshape(2, -1), [normal(2, 3, 2, 2)]),
    Case("flatten_all_method", lambda a: a.flatten(), lambda a: a.reshape(-1), [normal(2, 3, 2)]),
    Case("flatten_middle", lambda a: F.flatten(a, 1, 2), lambda a: a.reshape(2, 6, 2),
         [normal(2, 3, 2, 2)]),
    Case("squeeze_all", lambda a: a.squeeze(), lambda a: a.squeeze(), [normal(1, 3, 1, 2)]),
    Case("squeeze_dim", lambda a: F.squeeze(a, 2), lambda a: a.squeeze(2), [normal(1, 3, 1, 2)]),
    Case("squeeze_non_one_is_identity", lambda a: a.squeeze(1), lambda a: a, [normal(1, 3)]),
    Case("unsqueeze", lambda a: a.unsqueeze(0), lambda a: a[None], [normal(2, 3)]),
    Case("unsqueeze_negative", lambda a: F.unsqueeze(a, -1), lambda a: a[..., None], [normal(2, 3)]),
]


def _inputs(case, rng, to_dev):
    arrays = [m(rng) for m in case.makers]
    tensors = [Tensor(to_dev(a), requires_grad=not getattr(m, "constant", False))
               for a, m in zip(arrays, case.makers)]
    return arrays, tensors


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward_matches_numpy(case, device, to_dev, rng):
    arrays, tensors = _inputs(case, rng, to_dev)
    y = case.fn(*tensors)
    expected = case.ref(*arrays)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(tg.backend.as_numpy(y.data), expected, rtol=1e-12, atol=1e-12)
    assert y.requires_grad


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradcheck(case, device, to_dev, rng):
    _, tensors = _inputs(case, rng, to_dev)
    assert tg.gradcheck(case.fn, tensors)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradgradcheck(case, device, to_dev, rng):
    _, tensors = _inputs(case, rng, to_dev)
    assert tg.gradgradcheck(case.fn, tensors)


def test_torch_style_keyword_signatures():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(a)
    np.testing.assert_array_equal(x.sum(dim=1, keepdim=True).data, a.sum(1, keepdims=True))
    np.testing.assert_array_equal(x.mean(dim=(0, 2)).data, a.mean((0, 2)))
    np.testing.assert_array_equal(x.max(dim=-1, keepdim=False).data, a.max(-1))   # values only
    assert x.max().shape == () and x.max().item() == 23.0
    assert x.transpose(dim0=0, dim1=2).shape == (4, 3, 2)
    assert x.permute(1, 2, 0).shape == (3, 4, 2) and x.permute((1, 2, 0)).shape == (3, 4, 2)
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((3, -1)).shape == (3, 8)
    assert x.var(dim=1, keepdim=True, unbiased=False).shape == (2, 1, 4)
    assert x.clip(min=1.0).data.min() == 1.0 and x.clamp(max=2.0).data.max() == 2.0


def test_float32_inputs_give_float32_outputs_and_grads():
    x = tg.randn(2, 3, requires_grad=True)
    for y in (x + 1.0, x * 2, 1.0 / (x * x + 1.0), x ** 2, x.exp(), x.sum(), x.mean(0), x[0],
              x.reshape(-1), F.cat([x, x]), x @ x.T):
        assert y.dtype == np.float32, y
    (x * 3.0 + 1.0).sum().backward()
    assert x.grad.dtype == np.float32


def test_astype_moves_the_gradient_back_to_the_source_dtype():
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    y = F.astype(x, "float32")
    assert y.dtype == np.float32 and y.requires_grad
    assert F.astype(x, np.float64) is x                     # no-op when the dtype matches
    assert x.float().dtype == np.float32 and y.double().dtype == np.float64
    (y * 2.0).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.data, 2.0)
    # Through a float32 round trip the finite differences need a larger step.
    fn = lambda a: F.astype(F.astype(a, "float32"), "float64") * a      # noqa: E731
    assert tg.gradcheck(fn, [x], eps=1e-3, atol=1e-3)
    assert tg.gradgradcheck(fn, [x], eps=1e-3, atol=1e-3)


def test_integer_tensors_do_not_join_the_graph():
    x = tg.tensor(np.arange(4))
    y = x * 2 + 1                                           # Python ints keep the int dtype
    assert y.dtype == np.int64 and not y.requires_grad
    np.testing.assert_array_equal(y.data, [1, 3, 5, 7])
    assert (x * 0.5).dtype.kind == "f"
    w = tg.randn(4, requires_grad=True)
    z = F.astype(w, "int64")
    assert not z.requires_grad and z.dtype == np.int64


# ---------------------------------------------------------------------------------------
# amax ties: the gradient is shared equally among the maxima (torch.amax)

def test_amax_ties_share_the_gradient():
    x = Tensor(np.array([[1.0, 3.0, 3.0, 3.0], [2.0, 0.0, 2.0, -1.0]]), requires_grad=True)
    x.max(1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 1 / 3, 1 / 3, 1 / 3], [0.5, 0, 0.5, 0]])
    x.grad = None
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 1 / 3, 1 / 3, 1 / 3], [0, 0, 0, 0]])


def test_amax_two_way_tie_matches_central_differences():
    """With two tied maxima a central difference sees slope 1/2 on each: equal sharing."""
    x = Tensor(np.array([[0.5, 2.0, 2.0], [1.0, -1.0, 1.0]]), requires_grad=True)
    assert tg.gradcheck(lambda t: t.max(1), [x])
    assert tg.gradcheck(lambda t: t.max(), [Tensor(np.array([1.0, 4.0, 4.0]), requires_grad=True)])


def test_amax_ties_against_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x = Tensor(a, requires_grad=True)
    x.max(0).sum().backward()
    t = torch.tensor(a, requires_grad=True)
    torch.amax(t, 0).sum().backward()
    np.testing.assert_allclose(x.grad.data, t.grad.numpy())


# ---------------------------------------------------------------------------------------
# Broadcasting: hypothesis draws broadcastable shape pairs

BINARY = {
    "add": (lambda a, b: a + b, np.add, lambda a, b, g: (g, g)),
    "sub": (lambda a, b: a - b, np.subtract, lambda a, b, g: (g, -g)),
    "mul": (lambda a, b: a * b, np.multiply, lambda a, b, g: (g * b, g * a)),
    "div": (lambda a, b: a / b, np.divide, lambda a, b, g: (g / b, -g * a / b ** 2)),
    "maximum": (F.maximum, np.maximum, lambda a, b, g: (g * (a >= b), g * (a < b))),
}


@settings(max_examples=25, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2 ** 16))
def test_broadcast_grads_are_reduced_to_operand_shapes(shapes, op, seed):
    fn, ref, dref = BINARY[op]
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(sa)
    b = rng.uniform(0.5, 2.0, sb) * rng.choice([-1, 1], sb)      # away from 0 for div
    if op == "maximum":
        a = np.where(rng.random(sa) < 0.5, 3.0, -3.0) + 0.1 * a   # |a - b| >= 0.8
    A, B = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = fn(A, B)
    assert y.shape == out_shape
    np.testing.assert_allclose(y.data, ref(a, b))
    g = rng.standard_normal(out_shape)
    y.backward(g)
    assert A.grad.shape == sa and B.grad.shape == sb
    ga, gb = dref(np.broadcast_to(a, out_shape), np.broadcast_to(b, out_shape), g)
    np.testing.assert_allclose(A.grad.data, sum_to_np(np.asarray(ga, float), sa), atol=1e-12)
    np.testing.assert_allclose(B.grad.data, sum_to_np(np.asarray(gb, float), sb), atol=1e-12)
    assert tg.gradcheck(fn, [Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)])


@settings(max_examples=10, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=2),
       op=st.sampled_from(["add", "mul", "div"]), seed=st.integers(0, 2 ** 16))
def test_broadcast_second_order(shapes, op, seed):
    fn = BINARY[op][0]
    rng = np.random.default_rng(seed)
    (sa, sb) = shapes.input_shapes
    a = Tensor(rng.standard_normal(sa), requires_grad=True)
    b = Tensor(rng.uniform(0.5, 2.0, sb), requires_grad=True)
    assert tg.gradgradcheck(fn, [a, b])


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_reductions_over_random_dims(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    dims = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3,
                              unique_by=lambda d: d % len(shape)))
    keepdim = data.draw(st.booleans())
    name = data.draw(st.sampled_from(["sum", "mean", "var", "amax"]))
    seed = data.draw(st.integers(0, 2 ** 16))
    a = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) * 0.5 + 0.1
    x = Tensor(a, requires_grad=True)                        # distinct values: no amax ties
    dim = tuple(dims)
    fn = {"sum": lambda t: t.sum(dim, keepdim), "mean": lambda t: t.mean(dim, keepdim),
          "var": lambda t: t.var(dim, keepdim), "amax": lambda t: t.max(dim, keepdim)}[name]
    n = int(np.prod([shape[d] for d in dims]))
    ref = {"sum": lambda: a.sum(dim, keepdims=keepdim), "mean": lambda: a.mean(dim, keepdims=keepdim),
           "var": lambda: a.var(dim, keepdims=keepdim, ddof=1 if n > 1 else 0),
           "amax": lambda: a.max(dim, keepdims=keepdim)}[name]
    if name == "var" and n == 1:
        return                                               # 0/0: unbiased variance of one value
    np.testing.assert_allclose(fn(x).data, ref(), rtol=1e-12, atol=1e-12)
    assert tg.gradcheck(fn, [x])


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_getitem_random_basic_and_advanced_keys(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    kind = data.draw(st.sampled_from(["basic", "int_array", "bool"]))
    if kind == "basic":
        key = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    elif kind == "int_array":
        key = data.draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(
            min_dims=1, max_dims=2, max_side=4)))
    else:
        key = data.draw(hnp.arrays(bool, shape))
    a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    x = Tensor(a, requires_grad=True)
    y = x[key]
    np.testing.assert_array_equal(y.data, a[key])
    g = np.random.default_rng(0).standard_normal(np.shape(a[key]))
    if y.requires_grad:
        y.backward(g)
        expected = np.zeros(shape)
        np.add.at(expected, key, g)                          # repeated indices add up
        np.testing.assert_allclose(x.grad.data, expected)
    assert tg.gradcheck(lambda t: t[key], [Tensor(a, requires_grad=True)])


# ---------------------------------------------------------------------------------------
# Cross-check of a few broadcasting grads against PyTorch (optional)

def test_matmul_and_var_grads_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for sa, sb in [((2, 1, 3, 4), (3, 4, 2)), ((4,), (4,)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))]:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        A, B = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        y, ty = A @ B, ta @ tb
        g = rng.standard_normal(ty.shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(A.grad.data, ta.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(B.grad.data, tb.grad.numpy(), rtol=1e-10)
    x = rng.standard_normal((3, 4))
    X, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    X.var(1).sum().backward()
    tx.var(1).sum().backward()
    np.testing.assert_allclose(X.grad.data, tx.grad.numpy(), rtol=1e-10)


# ---------------------------------------------------------------------------------------
# Bad input: errors name the op and the shapes

@pytest.mark.parametrize("call, message", [
    (lambda: tg.zeros(2, 3) + tg.zeros(4), r"add: shapes \(2, 3\) and \(4,\)"),
    (lambda: tg.zeros(2, 3) - np.zeros(2), r"sub: shapes \(2, 3\) and \(2,\)"),
    (lambda: tg.zeros(2, 3) * tg.zeros(3, 2), r"mul: shapes \(2, 3\) and \(3, 2\)"),
    (lambda: tg.zeros(2, 3) / tg.zeros(2, 2), r"div: shapes \(2, 3\) and \(2, 2\)"),
    (lambda: F.maximum(tg.zeros(2), tg.zeros(3)), r"maximum: shapes \(2,\) and \(3,\)"),
    (lambda: F.where(np.ones(4, bool), tg.zeros(2, 3), 0.0), r"where: condition \(4,\), a \(2, 3\)"),
    (lambda: tg.zeros(2, 3) @ tg.zeros(2, 3), r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    (lambda: F.matmul(tg.zeros(3), tg.tensor(1.0)), r"matmul: .*\(3,\) and \(\)"),
    (lambda: tg.zeros(2, 3).reshape(4, 2), r"reshape: cannot reshape \(2, 3\) \(6 elements\)"),
    (lambda: F.broadcast_to(tg.zeros(2, 3), (3, 3)), r"broadcast_to: cannot broadcast \(2, 3\)"),
    (lambda: tg.zeros(2, 3).permute(0, 0), r"permute: \(0, 0\) is not a permutation .*\(2, 3\)"),
    (lambda: tg.zeros(2, 3).transpose(0, 2), r"transpose: dim 2 is out of range .*rank 2"),
    (lambda: tg.zeros(2, 3).sum(2), r"sum: dim 2 is out of range"),
    (lambda: tg.zeros(2, 3).mean(-3), r"mean: dim -3 is out of range"),
    (lambda: tg.zeros(2, 3).max(5), r"max: dim 5 is out of range"),
    (lambda: tg.zeros(0).max(), r"amax: empty"),
    (lambda: F.cat([tg.zeros(2, 3), tg.zeros(2, 4)]), r"cat: shapes \[\(2, 3\), \(2, 4\)\]"),
    (lambda: F.cat([]), r"cat: expected a non-empty"),
    (lambda: F.stack([tg.zeros(2), tg.zeros(3)]), r"stack: .*\[\(2,\), \(3,\)\]"),
    (lambda: F.flatten(tg.zeros(2, 3, 4), 2, 1), r"flatten: start_dim 2 comes after end_dim 1"),
    (lambda: tg.zeros(2, 3).unsqueeze(4), r"unsqueeze: dim 4 is out of range"),
    (lambda: tg.zeros(2).clip(), r"clip: at least one of min and max"),
])
def test_bad_input_names_the_op_and_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()
