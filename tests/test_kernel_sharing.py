"""`kernels.sharing_inputs`: the two backward products of a convolution build gy's columns
(or its channel-major copy) once, and get exactly what they would get without sharing."""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import kernels
from tinygan.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.MALLOC_TUNED,
                                reason="sharing is off with the buffer pool (TINYGAN_MALLOC=system)")


class _Counter:
    def __init__(self, monkeypatch, name):
        self.calls = 0
        inner = getattr(cpu, name)

        def counted(*a, **k):
            self.calls += 1
            return inner(*a, **k)
        monkeypatch.setattr(cpu, name, counted)


def test_memo_reuses_by_array_identity_and_params_only_inside_a_block():
    x, y = np.ones(3), np.ones(3)
    made = []

    def compute(tag):
        return lambda: made.append(tag) or len(made)

    assert kernels.shared("k", x, 1, compute("a")) == 1        # no block: always computed
    assert kernels.shared("k", x, 1, compute("b")) == 2
    with kernels.sharing_inputs():
        assert kernels.shared("k", x, 1, compute("c")) == 3
        assert kernels.shared("k", x, 1, compute("d")) == 3    # same kind, array, params
        assert kernels.shared("k", y, 1, compute("e")) == 4    # an equal but other array
        assert kernels.shared("k", x, 2, compute("f")) == 5    # other params
        assert kernels.shared("j", x, 1, compute("g")) == 6    # other kind
        with kernels.sharing_inputs():                         # nested: the same memo
            assert kernels.shared("k", x, 1, compute("h")) == 3
        assert kernels.shared("k", x, 1, compute("i")) == 3    # still open after the inner one
    assert kernels._shared.memo is None
    with kernels.sharing_inputs():                             # a new block starts empty
        assert kernels.shared("k", x, 1, compute("j")) == 7


def test_memo_is_dropped_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with kernels.sharing_inputs():
            kernels.shared("k", np.ones(2), 0, lambda: 1)
            raise RuntimeError("boom")
    assert kernels._shared.memo is None


@pytest.mark.parametrize("layer", ["conv", "convT"])
def test_a_conv_backward_builds_gy_columns_once_and_matches_unshared(monkeypatch, layer):
    rng = np.random.default_rng(0)
    kernels.set_mode("fast")
    if layer == "conv":
        x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
        w = rng.standard_normal((5, 3, 4, 4)).astype(np.float32)
        op = lambda a, b: F.conv2d(a, b, stride=2, padding=1)
    else:
        x = rng.standard_normal((4, 5, 4, 4)).astype(np.float32)
        w = rng.standard_normal((5, 3, 4, 4)).astype(np.float32)
        op = lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1)
    gy = None

    def grads():
        nonlocal gy
        xt, wt = tinygan.Tensor(x, requires_grad=True), tinygan.Tensor(w, requires_grad=True)
        y = op(xt, wt)
        if gy is None:
            gy = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(tinygan.Tensor(gy))
        return xt.grad.numpy(), wt.grad.numpy()

    im2col = _Counter(monkeypatch, "_im2col_uncached")
    swaps = _Counter(monkeypatch, "_transpose01")
    shared_gx, shared_gw = grads()
    # conv: the forward's columns of x + the weight gradient's; gy's (OC, N, ·) copy once, for
    # the weight gradient (the input gradient copies gy batch-innermost instead).
    # convT: gy's columns once for both products; x's (C, N, ·) copy for the weight gradient
    # (the forward's copy is batch-innermost).
    assert im2col.calls == (2 if layer == "conv" else 1)
    assert swaps.calls == 1

    monkeypatch.setattr(kernels, "sharing_inputs", _no_sharing)
    plain_gx, plain_gw = grads()
    np.testing.assert_array_equal(shared_gx, plain_gx)
    np.testing.assert_array_equal(shared_gw, plain_gw)


class _no_sharing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
