"""The autograd engine (tinygan/autograd.py): Tensor, tinygan.tensor and factories, backward,
grad, no_grad, custom Functions, graph traversal.

Op-by-op gradients live in test_basic_ops.py; here the ops are only the means to build graphs.
"""
import gc
import threading
import weakref

import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
from tinygan import Function, Tensor


def f64(*shape, requires_grad=True, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------
# Tensor attributes and conversions

def test_tensor_attributes(device, to_dev):
    x = Tensor(to_dev(np.arange(6.0).reshape(2, 3)))
    assert x.shape == (2, 3) and isinstance(x.shape, tuple)
    assert x.ndim == 2
    assert x.dtype == np.float64
    assert x.device == device
    assert x.grad is None
    assert x.requires_grad is False and x.is_leaf
    assert x.numel() == 6 and x.size() == (2, 3) and x.size(1) == 3 and len(x) == 2
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad = False
    assert not x.requires_grad
    assert "tensor(" in repr(x)


def test_requires_grad_is_settable_on_leaves_only():
    x = f64(3)
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(True)
    d = y.detach()
    d.requires_grad = True                           # a detached copy is a leaf again
    assert d.requires_grad and d.is_leaf


def test_only_float_tensors_can_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor(np.arange(3), requires_grad=True)
    i = tg.tensor(np.arange(3))
    with pytest.raises(TypeError, match="floating"):
        i.requires_grad = True
    with pytest.raises(TypeError):
        tg.tensor(np.array([True, False]), requires_grad=True)
    i.requires_grad = False                          # switching it off is always fine


def test_detach_shares_data_and_leaves_the_graph():
    x = f64(3)
    y = x * 3
    d = y.detach()
    assert d.data is y.data
    assert d.is_leaf and not d.requires_grad and d.grad is None
    (d * x).sum().backward()                         # no gradient flows through d into y's graph
    np.testing.assert_allclose(x.grad.data, y.data)


def test_item_numpy_and_to_cpu():
    x = tg.tensor([[2.5]])
    assert x.item() == 2.5 and isinstance(x.item(), float)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        tg.tensor([1.0, 2.0]).item()
    a = tg.tensor(np.arange(4.0)).numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float64
    np.testing.assert_array_equal(a, np.arange(4.0))
    r = f64(2)
    with pytest.raises(RuntimeError, match="detach"):
        r.numpy()
    np.testing.assert_array_equal(r.detach().numpy(), r.data)
    assert r.to("cpu") is r and r.cpu() is r
    with pytest.raises(ValueError, match="unknown device"):
        r.to("tpu")
    assert tg.tensor([1, 2]).tolist() == [1.0, 2.0]


@pytest.mark.skipif(tg.cuda_available(), reason="checks the error raised without CUDA")
def test_to_cuda_without_a_gpu_says_so():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        tg.tensor([1.0]).to("cuda")


@pytest.mark.gpu
def test_to_moves_between_devices_differentiably():
    x = f64(3)
    y = x.to("cuda")
    assert y.device == "cuda" and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.data, 2 * x.data)


@pytest.mark.gpu
def test_mixed_devices_raise_a_clear_error():
    a, b = f64(3), f64(3).to("cuda")
    with pytest.raises(ValueError, match="different devices"):
        a + b


def test_comparisons_give_boolean_tensors_outside_the_graph():
    x = f64(4)
    m = x > 0
    assert m.dtype == np.bool_ and not m.requires_grad
    np.testing.assert_array_equal(m.data, x.data > 0)
    assert (x <= 0).data.tolist() == (x.data <= 0).tolist()
    assert {x: 1}[x] == 1                            # == stays identity: tensors work as dict keys


def test_ndarray_on_the_left_dispatches_to_tensor():
    x = f64(3)
    y = np.ones(3) + x
    assert isinstance(y, Tensor) and y.requires_grad
    z = np.full(3, 2.0) * x
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0)


# ---------------------------------------------------------------------------------------
# tinygan.tensor and the factories

def test_tensor_dtype_rules():
    assert tg.tensor(np.zeros(2, np.float64)).dtype == np.float64     # float64 ndarray stays
    assert tg.tensor(np.zeros(2, np.float32)).dtype == np.float32
    assert tg.tensor(np.zeros(2, np.float16)).dtype == np.float16
    assert tg.tensor([1.0, 2.0]).dtype == np.float32                    # lists become float32
    assert tg.tensor([1, 2]).dtype == np.float32
    assert tg.tensor(3.0).dtype == np.float32 and tg.tensor(3.0).shape == ()
    assert tg.tensor(np.arange(3)).dtype == np.int64                    # integer arrays keep theirs
    assert tg.tensor([1, 2], dtype="float64").dtype == np.float64       # a name ...
    assert tg.tensor([1, 2], dtype=np.float64).dtype == np.float64      # ... or a NumPy dtype
    assert tg.tensor(np.zeros(2), dtype="float32").dtype == np.float32
    assert tg.tensor([1.5, 2.5], dtype="int64").dtype == np.int64
    with pytest.raises(TypeError):
        tg.tensor([1.0], dtype="no-such-dtype")


def test_tensor_copies_its_data_and_makes_a_leaf():
    a = np.zeros(3)
    t = tg.tensor(a, requires_grad=True)
    a[0] = 5.0
    assert t.data[0] == 0.0
    assert t.is_leaf and t.requires_grad and t.device == "cpu"
    u = tg.tensor(t)                                  # from a Tensor: a new leaf, copied
    assert u.data is not t.data and not u.requires_grad
    np.testing.assert_array_equal(u.data, t.data)


def test_tensor_with_device_argument(device):
    t = tg.tensor([1.0, 2.0], device=device)
    assert t.device == device and t.dtype == np.float32
    t64 = tg.tensor(np.ones(2), device=device)
    assert t64.device == device and t64.dtype == np.float64


@pytest.mark.parametrize("make", [tg.zeros, tg.ones, tg.randn, tg.rand])
def test_factories_shapes_dtypes_and_requires_grad(make, device):
    assert make(2, 3, device=device).shape == (2, 3)
    assert make((2, 3), device=device).shape == (2, 3)
    assert make([4], device=device).shape == (4,)
    assert make(2, device=device).dtype == np.float32
    assert make(2, dtype="float64", device=device).dtype == np.float64
    assert make(2, dtype=np.float64, device=device).dtype == np.float64
    t = make(2, requires_grad=True, device=device)
    assert t.requires_grad and t.is_leaf and t.device == device


def test_factory_values():
    np.testing.assert_array_equal(tg.zeros(2, 2).data, np.zeros((2, 2)))
    np.testing.assert_array_equal(tg.ones(3).data, np.ones(3))
    np.testing.assert_array_equal(tg.full((2,), 7.0).data, [7.0, 7.0])
    assert tg.full(3, 1.5).shape == (3,)
    r = tg.rand(1000).data
    assert r.min() >= 0.0 and r.max() < 1.0
    n = tg.randn(4000, dtype="float64").data
    assert abs(n.mean()) < 0.1 and abs(n.std() - 1.0) < 0.1
    x = tg.tensor(np.ones((2, 3), np.float64))
    assert tg.zeros_like(x).dtype == np.float64 and tg.zeros_like(x).shape == (2, 3)
    assert tg.ones_like(x, dtype="float32").dtype == np.float32
    np.testing.assert_array_equal(tg.ones_like(x).data, np.ones((2, 3)))
    assert tg.zeros_like(x, requires_grad=True).requires_grad
    np.testing.assert_array_equal(tg.arange(4).data, np.arange(4))


def test_manual_seed_makes_every_factory_reproducible():
    tg.manual_seed(123)
    a = (tg.randn(5).data, tg.rand(3, dtype="float64").data)
    tg.manual_seed(123)
    b = (tg.randn(5).data, tg.rand(3, dtype="float64").data)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    tg.manual_seed(124)
    assert not np.array_equal(tg.randn(5).data, a[0])
    # Draws in between do not matter: the seed restarts the stream.
    tg.manual_seed(123)
    np.testing.assert_array_equal(tg.randn(5).data, a[0])


# ---------------------------------------------------------------------------------------
# Tensor.backward

def test_backward_of_a_scalar_fills_leaf_grads():
    x, w = f64(3, seed=1), f64(3, seed=2)
    (x * w).sum().backward()
    np.testing.assert_allclose(x.grad.data, w.data)
    np.testing.assert_allclose(w.grad.data, x.data)
    assert isinstance(x.grad, Tensor) and x.grad.shape == x.shape
    assert not x.grad.requires_grad and x.grad.is_leaf


def test_grad_accumulates_across_backward_calls():
    x = f64(3)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 4 * x.data)
    x.grad = None                                     # what zero_grad() does
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3.0)


def test_leaf_the_backward_never_reached_keeps_grad_none():
    x, unused = f64(3), f64(3)
    no_grad_leaf = f64(3, requires_grad=False)
    (x * no_grad_leaf).sum().backward()
    assert unused.grad is None
    assert no_grad_leaf.grad is None
    assert x.grad is not None


def test_backward_with_inputs_fills_only_those_and_skips_the_rest():
    """loss.backward(inputs=[...]) as in torch: only those .grad are written, and the ops on
    the way are asked only for the gradients that lead there (no dL/dW_d for a G update)."""
    asked = []

    class Spy(Function):                    # y = a @ b, recording what backward is asked for
        def forward(self, a, b):
            return a @ b

        def backward(self, gy):
            asked.append(self.needs_input_grad)
            a, b = self.inputs
            return (gy @ b.T if self.needs_input_grad[0] else None,
                    a.T @ gy if self.needs_input_grad[1] else None)

    z, w_g, w_d = f64(4, 3, requires_grad=False, seed=1), f64(3, 5, seed=2), f64(5, 2, seed=3)
    Spy()(Spy()(z, w_g), w_d).sum().backward(inputs=[w_g])
    assert w_d.grad is None and w_g.grad is not None
    assert asked == [(True, False), (False, True)]       # "D" gives dL/dh only; "G" dL/dW_g
    expected = w_g.grad.data.copy()
    w_g.grad, asked[:] = None, []
    Spy()(Spy()(z, w_g), w_d).sum().backward()
    np.testing.assert_allclose(w_g.grad.data, expected)
    assert w_d.grad is not None and asked == [(True, True), (False, True)]
    with pytest.raises(ValueError, match="inputs"):
        (w_g * 2).sum().backward(inputs=[z])


def test_first_grads_are_buffers_of_their_own():
    a, b = f64(3, seed=1), f64(3, seed=2)
    (a + b).sum().backward()                 # both leaves receive the same upstream gradient
    assert a.grad.data is not b.grad.data and a.grad.data.flags.writeable
    a.grad.data += 1.0
    np.testing.assert_allclose(b.grad.data, 1.0)
    w = f64(4, 3)
    (F.matmul(f64(2, 3, requires_grad=False), w.T).sum()
     + F.matmul(f64(2, 3, requires_grad=False, seed=5), w.T).sum()).backward()
    assert w.grad.data.flags.c_contiguous    # (a sum of two transposed views is F-ordered)
    x, g = f64(3), np.full(3, 2.0)
    x.backward(g)                            # the caller's array is never adopted
    assert x.grad.data is not g
    x.grad.data += 1.0
    np.testing.assert_allclose(g, 2.0)


def test_non_leaf_tensors_get_no_grad():
    x = f64(3)
    h = x * 2
    (h * h).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(x.grad.data, 8 * x.data)


@pytest.mark.parametrize("kind", ["tensor", "array"])
def test_backward_accepts_a_tensor_or_an_array(kind):
    x = f64(2, 3)
    g = np.arange(6.0).reshape(2, 3)
    (x * 5.0).backward(Tensor(g) if kind == "tensor" else g)
    np.testing.assert_allclose(x.grad.data, 5.0 * g)


def test_non_scalar_backward_without_grad_raises():
    y = f64(2, 3) * 2
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        y.backward()
    (f64(1, 1) * 2).backward()                        # one element is a scalar


def test_backward_with_a_grad_of_the_wrong_shape_raises():
    y = f64(2, 3) * 2
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))


def test_backward_on_a_tensor_outside_any_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.tensor([1.0, 2.0]).sum().backward()


def test_leaf_grads_are_fresh_writable_buffers():
    a, b = f64(2, 3, seed=1), f64(2, 3, seed=2)
    g = np.ones((2, 3))
    (a + b).backward(g)
    assert a.grad.data is not g and b.grad.data is not g
    assert not np.shares_memory(a.grad.data, b.grad.data)
    c = f64(2, 3)
    c.sum().backward()                    # its gradient is a broadcast of one number
    assert c.grad.data.flags.writeable and c.grad.data.flags.c_contiguous
    c.grad.data *= 0.0                    # in-place use (clipping, an optimizer) must be safe
    a.grad.data += 1.0
    np.testing.assert_array_equal(b.grad.data, 1.0)
    np.testing.assert_array_equal(g, 1.0)


def test_backward_with_create_graph_gives_differentiable_grads():
    x = f64(3)
    (x * x * x).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.requires_grad                           # 3 x^2, still in a graph
    np.testing.assert_allclose(gx.data, 3 * x.data ** 2)
    x.grad = None
    gx.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


@pytest.mark.parametrize("create_graph", [False, True])
def test_backward_records_a_graph_only_with_create_graph(create_graph):
    modes = []

    class Spy(Function):
        def forward(self, x):
            return x * 2.0

        def backward(self, gy):
            modes.append(tg.is_grad_enabled())
            return gy * 2.0

    x = f64(3)
    y = (Spy()(x) * x).sum()
    g, = tg.grad(y, x, create_graph=create_graph, retain_graph=True)
    y.backward(create_graph=create_graph)
    assert modes == [create_graph, create_graph]
    assert g.requires_grad == create_graph and x.grad.requires_grad == create_graph
    assert tg.is_grad_enabled()


def test_intermediate_gradients_are_freed_during_backward():
    """A gradient buffer lives only until the op that consumes it has run."""
    seen = {}

    class Probe(Function):
        def __init__(self, name):
            self.name = name

        def forward(self, x):
            return x * 1.0

        def backward(self, gy):
            seen[self.name] = weakref.ref(gy)
            if self.name == "first":                  # runs last
                seen["alive_at_first"] = seen["second"]() is not None
            return gy * 1.0

    x = f64(3)
    y = Probe("second")(Probe("first")(x) * 2.0)
    (y * 3.0).sum().backward()
    assert seen["alive_at_first"] is False


# ---------------------------------------------------------------------------------------
# tinygan.grad

def test_grad_with_create_graph_builds_a_gradient_penalty():
    """WGAN-GP in miniature: L = sum(g^2) with g = d(sum x^3)/dx = 3x^2  =>  dL/dx = 36 x^3."""
    x = f64(4)
    w = f64(4, seed=3)
    y = (x * x * x).sum() + (w * 0.0).sum()
    g, = tg.grad(y, x, create_graph=True)
    assert isinstance(g, Tensor) and g.requires_grad
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    penalty = (g * g).sum()
    penalty.backward()
    np.testing.assert_allclose(x.grad.data, 36 * x.data ** 3)
    assert w.grad is None                              # the penalty does not involve w


def test_grad_without_create_graph_returns_plain_tensors():
    x = f64(3)
    g, = tg.grad((x * x).sum(), [x])
    assert not g.requires_grad and g.is_leaf
    np.testing.assert_allclose(g.data, 2 * x.data)


def test_grad_never_touches_dot_grad():
    x, w = f64(3), f64(3, seed=1)
    sentinel = Tensor(np.full(3, 42.0))
    x.grad = sentinel
    g, = tg.grad((x * w).sum(), x)
    assert x.grad is sentinel and w.grad is None
    np.testing.assert_allclose(g.data, w.data)
    g2, = tg.grad((x * w).sum(), x, create_graph=True)
    assert x.grad is sentinel and w.grad is None


def test_grad_returns_a_tuple_for_several_inputs_and_outputs():
    x, w = f64(3), f64(3, seed=1)
    out = tg.grad([(x * w).sum(), (x * x).sum()], [x, w])
    assert isinstance(out, tuple) and len(out) == 2
    np.testing.assert_allclose(out[0].data, w.data + 2 * x.data)
    np.testing.assert_allclose(out[1].data, x.data)


def test_backward_frees_the_graph_unless_retained():
    """As in torch: each op drops its saved inputs once its backward ran, so activations go
    while the loss is still referenced; a second pass raises unless the first retained."""
    x = f64(1000)
    h = x * 2.0
    probe = weakref.ref(h)
    loss = (h * h).sum()
    del h
    assert probe() is not None                # held by the graph
    loss.backward()
    assert probe() is None                    # freed by the backward, with `loss` still alive
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        loss.backward()
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()                              # retained: a second pass works and accumulates
    np.testing.assert_allclose(x.grad.data, 8 * x.data + 2 * (2 * x.data))   # loss, y twice
    z = (x * 3.0).sum()
    with pytest.raises(RuntimeError, match="not reached"):
        tg.grad(z, [x, f64(2)])               # refused before the walk: the graph survives
    np.testing.assert_allclose(tg.grad(z, x)[0].data, 3.0)


def test_grad_with_grad_outputs_and_non_scalar_outputs():
    x = f64(2, 3)
    y = x * x
    v = np.arange(6.0).reshape(2, 3)
    g, = tg.grad(y, x, grad_outputs=Tensor(v), retain_graph=True)
    np.testing.assert_allclose(g.data, 2 * x.data * v)
    g, = tg.grad([y], [x], grad_outputs=[v])           # an array works too
    np.testing.assert_allclose(g.data, 2 * x.data * v)
    with pytest.raises(RuntimeError, match=r"grad_outputs.*\(2, 3\)"):
        tg.grad(y, x)


def test_grad_with_respect_to_an_intermediate_tensor():
    x = f64(3)
    h = x * 2.0
    y = (h * h).sum()
    gh, gx = tg.grad(y, [h, x])
    np.testing.assert_allclose(gh.data, 2 * h.data)
    np.testing.assert_allclose(gx.data, 8 * x.data)


def test_grad_allow_unused():
    x, unused = f64(3), f64(3, seed=1)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match=r"input 1 .*not reached.*allow_unused"):
        tg.grad(y, [x, unused])
    gx, gu = tg.grad(y, [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.data, 2.0)


def test_grad_refuses_inputs_that_do_not_require_grad():
    x = f64(3)
    c = f64(3, requires_grad=False)
    with pytest.raises(RuntimeError, match="input 1 does not require grad"):
        tg.grad((x * c).sum(), [x, c])


class Counting(Function):
    """Identity that counts how often its backward runs, and what it was asked for."""

    calls = []

    def forward(self, *xs):
        return xs[0] + sum(xs[1:]) if len(xs) > 1 else xs[0].copy()

    def backward(self, gy):
        Counting.calls.append(self.needs_input_grad)
        return tuple(gy if need else None for need in self.needs_input_grad)


def test_grad_only_walks_paths_to_its_inputs():
    Counting.calls = []
    x, w = f64(3), f64(3, seed=1)
    side = Counting()(w)                               # leads only to w
    both = Counting()(x, w)                            # leads to x and w
    y = (side * both).sum()
    g, = tg.grad(y, x, retain_graph=True)
    np.testing.assert_allclose(g.data, side.data)
    assert Counting.calls == [(True, False)]           # `side` never ran; no gw was asked for
    Counting.calls = []
    y.backward()                                        # backward() wants every leaf
    assert sorted(Counting.calls) == [(True,), (True, True)]


def test_each_node_is_visited_once_in_a_diamond():
    Counting.calls = []
    x = f64(3)
    c = Counting()(x)
    y = c * c + c * c                                   # four uses of c, one node
    y.sum().backward()
    assert len(Counting.calls) == 1
    np.testing.assert_allclose(x.grad.data, 4 * x.data)


def test_each_node_is_visited_once_with_create_graph():
    Counting.calls = []
    x = f64(3)
    c = Counting()(x)
    h = c * c
    y = (h + h * c + h).sum()                           # 2c^2 + c^3
    g, = tg.grad(y, x, create_graph=True)
    assert len(Counting.calls) == 1
    np.testing.assert_allclose(g.data, 4 * x.data + 3 * x.data ** 2)
    Counting.calls = []
    g.sum().backward()                                   # d/dx of 4x + 3x^2
    np.testing.assert_allclose(x.grad.data, 4 + 6 * x.data)


def test_a_10000_op_chain_backpropagates_without_recursion():
    x = tg.tensor(1.0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001 ** 10_000, rtol=1e-9)
    del y
    gc.collect()                                         # tearing the chain down is fine too


def test_a_10000_deep_second_derivative():
    """y = x ** (c ** n) built as n = 10,000 nested powers, differentiated twice (create_graph)."""
    c, n, x0 = 1.0001, 10_000, 0.7
    x = tg.tensor(x0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(n):
        y = y ** c
    p = c ** n
    g, = tg.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.item(), p * x0 ** (p - 1), rtol=1e-9)
    gg, = tg.grad(g, x)
    np.testing.assert_allclose(gg.item(), p * (p - 1) * x0 ** (p - 2), rtol=1e-9)


# ---------------------------------------------------------------------------------------
# no_grad

def test_no_grad_records_nothing_and_restores():
    x = f64(3)
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2
        with tg.enable_grad():
            z = x * 2
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()                         # restored after an exception


def test_no_grad_as_a_decorator():
    @tg.no_grad()
    def infer(t):
        assert not tg.is_grad_enabled()
        return t * 2

    y = infer(f64(3))
    assert not y.requires_grad and tg.is_grad_enabled()
    assert infer.__name__ == "infer"

    @tg.set_grad_enabled(False)
    def also(t):
        return t * 2

    assert not also(f64(3)).requires_grad


def test_grad_mode_is_thread_local():
    x = f64(3)
    results = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        results["enabled"] = tg.is_grad_enabled()
        results["records"] = (x * 2).requires_grad
        with tg.no_grad():
            inside.set()
            release.wait(5)

    with tg.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        assert inside.wait(5)
        # The worker is inside its own no_grad; this thread's mode is its own business.
        results["main_in_no_grad"] = tg.is_grad_enabled()
    results["main_after"] = (x * 2).requires_grad
    release.set()
    t.join(5)
    assert results == {"enabled": True, "records": True, "main_in_no_grad": False,
                       "main_after": True}


# ---------------------------------------------------------------------------------------
# Custom Functions (tinygan.Function: forward on arrays, backward in differentiable ops)

class ScaledProduct(Function):
    """y = alpha * x * w.  Options go in __init__; forward on raw arrays; backward in ops."""

    def __init__(self, alpha):
        self.alpha = alpha
        self.forward_got = None

    def forward(self, x, w):
        self.forward_got = (type(x), type(w))
        return self.alpha * x * w

    def backward(self, gy):
        x, w = self.inputs
        assert isinstance(gy, Tensor) and isinstance(x, Tensor)
        gx = gy * w * self.alpha if self.needs_input_grad[0] else None
        gw = gy * x * self.alpha if self.needs_input_grad[1] else None
        return gx, gw


def test_custom_function_forward_sees_arrays_and_backward_sees_tensors():
    x, w = f64(3), f64(3, seed=1)
    op = ScaledProduct(2.0)
    y = op(x, w)
    assert op.forward_got == (np.ndarray, np.ndarray)
    assert isinstance(y, Tensor) and y.creator is op and y.requires_grad
    assert op.inputs == (x, w) and op.needs_input_grad == (True, True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * w.data)
    np.testing.assert_allclose(w.grad.data, 2.0 * x.data)


def test_custom_function_needs_input_grad_and_constants():
    x = f64(3)
    w = np.array([1.0, 2.0, 3.0])                      # a raw array: a constant input
    op = ScaledProduct(3.0)
    y = op(x, w)
    assert op.needs_input_grad == (True, False)
    assert isinstance(op.inputs[1], Tensor) and not op.inputs[1].requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3.0 * w)
    y2 = ScaledProduct(1.0)(x, 2.0)                     # a Python number, too
    assert y2.dtype == np.float64
    np.testing.assert_allclose(y2.data, 2.0 * x.data)


def test_custom_function_is_not_recorded_without_grad():
    x, w = f64(3, requires_grad=False), f64(3, requires_grad=False)
    y = ScaledProduct(1.0)(x, w)
    assert y.creator is None and not y.requires_grad
    with tg.no_grad():
        y = ScaledProduct(1.0)(f64(3), w)
    assert y.creator is None and not y.requires_grad


def test_custom_function_double_backward_and_gradchecks():
    x, w = f64(2, 3), f64(2, 3, seed=1)
    assert tg.gradcheck(lambda a, b: ScaledProduct(1.5)(a, b), [x, w])
    assert tg.gradgradcheck(lambda a, b: ScaledProduct(1.5)(a, b), [x, w])


def test_custom_function_can_use_its_output():
    class Exp(Function):
        def forward(self, x):
            return np.exp(x)

        def backward(self, gy):
            return gy * self.output()

    x = f64(4)
    assert tg.gradcheck(lambda t: Exp()(t), [x])
    assert tg.gradgradcheck(lambda t: Exp()(t), [x])


def test_custom_function_with_two_outputs_one_discarded():
    class SplitScale(Function):
        def forward(self, x):
            return x * 2.0, x * 3.0

        def backward(self, ga, gb):
            return ga * 2.0 + gb * 3.0

    x = f64(3)
    a = SplitScale()(x)[0]                              # the second output is dropped at once
    gc.collect()
    a.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2.0)
    assert tg.gradcheck(lambda t: SplitScale()(t), [x])
    assert tg.gradgradcheck(lambda t: SplitScale()(t), [x])


def test_integer_outputs_stay_out_of_the_graph():
    class ArgmaxAndMax(Function):
        def forward(self, x):
            return x.argmax(), x.max()

        def backward(self, gi, gm):
            x = self.inputs[0]
            mask = (x.data == x.data.max()).astype(x.dtype)
            return gm * mask

    x = f64(4)
    i, m = ArgmaxAndMax()(x)
    assert not i.requires_grad and i.creator is None
    assert m.requires_grad
    m.backward()
    assert x.grad.data[int(i.item())] == 1.0 and x.grad.data.sum() == 1.0


def test_custom_function_mistakes_are_reported():
    class TooMany(Function):
        def forward(self, x):
            return x * 1.0

        def backward(self, gy):
            return gy, gy

    class WrongShape(Function):
        def forward(self, x):
            return x * 1.0

        def backward(self, gy):
            return gy.sum()

    with pytest.raises(RuntimeError, match="TooMany.backward returned 2 gradients for 1 inputs"):
        TooMany()(f64(3)).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward: gradient of shape \(\).*\(3,\)"):
        WrongShape()(f64(3)).sum().backward()
    with pytest.raises(TypeError, match="ScaledProduct: expected at least one Tensor"):
        ScaledProduct(1.0)(np.ones(2), np.ones(2))


def test_builtin_ops_are_functions_too():
    x = f64(3)
    y = F.exp(x)
    assert isinstance(y.creator, Function)
