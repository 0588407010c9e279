"""kernels/blas.py: the one matrix product of the CPU path, against np.matmul.

With MKL (the `mkl` extra) the 2-D float32/float64 products go to cblas_?gemm with the
operands read where they lie (row-major, or the transpose of row-major, with a leading
dimension); everything else goes to np.matmul.  Each case runs under both backends ("mkl"
only where the mkl package is installed), and the MKL cases check that MKL — not the
fallback — served them.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygan
from tinygan import kernels
from tinygan.kernels import blas, cpu
from tinygan.kernels import reference as ref
from kernel_checks import TOL

MKL = blas._load_mkl() is not None


@pytest.fixture(params=["numpy", pytest.param("mkl", marks=pytest.mark.skipif(
    not MKL, reason="the mkl package is not installed"))])
def backend(request):
    before = blas.backend()
    blas.set_backend(request.param)
    yield request.param
    blas.set_backend(before)


@pytest.fixture
def mkl(monkeypatch):
    """MKL serves the products, and np.matmul inside blas.py raises: a product that still
    succeeds was MKL's."""
    if not MKL:
        pytest.skip("the mkl package is not installed")
    before = blas.backend()
    blas.set_backend("mkl")

    class NumpyWithoutMatmul:
        def __getattr__(self, name):
            if name == "matmul":
                raise AssertionError("np.matmul served a product meant for MKL")
            return getattr(np, name)
    monkeypatch.setattr(blas, "np", NumpyWithoutMatmul())
    yield
    monkeypatch.undo()
    blas.set_backend(before)


def _laid_out(rng, shape, dtype, layout):
    """A (rows, cols) array in one of the layouts BLAS can read in place."""
    r, c = shape
    if layout == "C":
        return rng.standard_normal((r, c)).astype(dtype)
    if layout == "F":                                  # e.g. w.T, col.T
        return np.asfortranarray(rng.standard_normal((r, c)).astype(dtype))
    if layout == "row-slice":                          # rows contiguous, rows c+3 apart
        return rng.standard_normal((r, c + 3)).astype(dtype)[:, 1:c + 1]
    if layout == "col-slice":                          # columns contiguous, r+2 apart
        return rng.standard_normal((c, r + 2)).astype(dtype)[:, :r].T
    raise ValueError(layout)


LAYOUTS = ["C", "F", "row-slice", "col-slice"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=st.integers(1, 9), k=st.integers(1, 9), n=st.integers(1, 9),
       la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       dtype=st.sampled_from([np.float32, np.float64]), with_out=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_matmul_matches_numpy_in_every_layout(backend, m, k, n, la, lb, dtype, with_out, seed):
    rng = np.random.default_rng(seed)
    a, b = _laid_out(rng, (m, k), dtype, la), _laid_out(rng, (k, n), dtype, lb)
    out = np.full((m, n), np.nan, dtype) if with_out else None
    y = blas.matmul(a, b, out=out)
    if with_out:
        assert y is out
    assert y.dtype == dtype and y.shape == (m, n) and y.flags.c_contiguous
    np.testing.assert_allclose(y, np.matmul(a, b), **TOL[dtype])


@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
def test_mkl_serves_every_readable_layout(mkl, la, lb):
    rng = np.random.default_rng(0)
    a, b = _laid_out(rng, (5, 7), np.float32, la), _laid_out(rng, (7, 3), np.float32, lb)
    y = blas.matmul(a, b)
    np.testing.assert_allclose(y, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-5, atol=1e-5)


def test_mkl_serves_the_dcgan_and_mlp_products(mkl):
    """The shapes a training step hands over: conv columns (one big GEMM over the batch),
    gy @ colᵀ, and linear's x @ Wᵀ."""
    rng = np.random.default_rng(1)
    w, col = rng.standard_normal((128, 1024)).astype(np.float32), rng.standard_normal((1024, 512)).astype(np.float32)
    out = np.empty((128, 512), np.float32)
    y = blas.matmul(w, col, out=out)
    assert y is out
    np.testing.assert_allclose(y, w.astype(np.float64) @ col, rtol=1e-4, atol=1e-3)
    gy = rng.standard_normal((128, 512)).astype(np.float32)
    np.testing.assert_allclose(blas.matmul(gy, col.T), gy.astype(np.float64) @ col.T, rtol=1e-4, atol=1e-3)
    x, W = rng.standard_normal((64, 784)).astype(np.float32), rng.standard_normal((512, 784)).astype(np.float32)
    np.testing.assert_allclose(blas.matmul(x, W.T), x.astype(np.float64) @ W.T, rtol=1e-4, atol=1e-3)


def test_what_mkl_does_not_take_goes_to_numpy(backend):
    """Batched, mixed-dtype, integer, empty, unreadable strides, an overlapping or mis-shaped
    out: np.matmul's results (and its errors) in either backend."""
    rng = np.random.default_rng(2)
    a32 = rng.standard_normal((4, 3)).astype(np.float32)
    b32 = rng.standard_normal((3, 5)).astype(np.float32)
    cases = [
        (rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 3, 5))),      # batched
        (a32, b32.astype(np.float64)),                                           # mixed dtypes
        (np.arange(12).reshape(4, 3), np.arange(15).reshape(3, 5)),              # integers
        (np.zeros((4, 0), np.float32), np.zeros((0, 5), np.float32)),            # k = 0
        (np.zeros((0, 3), np.float32), b32),                                     # m = 0
        (rng.standard_normal((8, 6)).astype(np.float32)[::2, ::2], b32),         # both strides > 1
        (np.broadcast_to(np.float32(2), (4, 3)), b32),                           # zero strides
        (a32.astype(np.float16), b32.astype(np.float16)),                        # half precision
    ]
    for a, b in cases:
        np.testing.assert_allclose(blas.matmul(a, b), np.matmul(a, b), rtol=1e-6, atol=1e-6)
    # out overlapping an operand: NumPy buffers it, so the result is still a @ b
    sq = rng.standard_normal((4, 4)).astype(np.float32)
    want = sq @ sq
    np.testing.assert_allclose(blas.matmul(sq, sq, out=sq), want, rtol=1e-5, atol=1e-5)
    # an out of another dtype or layout: NumPy casts / writes through the strides
    out64 = np.empty((4, 5), np.float64)
    assert blas.matmul(a32, b32, out=out64) is out64
    np.testing.assert_allclose(out64, a32 @ b32, rtol=1e-6, atol=1e-6)
    outF = np.empty((4, 5), np.float32, order="F")
    np.testing.assert_allclose(blas.matmul(a32, b32, out=outF), a32 @ b32, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError):
        blas.matmul(a32, a32)                         # (4, 3) @ (4, 3): NumPy's error


def test_operand_layouts():
    a = np.zeros((4, 6), np.float32)
    assert blas._operand(a) == (blas._NO_TRANS, 6)
    assert blas._operand(a.T) == (blas._TRANS, 6)
    assert blas._operand(a[:, 1:4]) == (blas._NO_TRANS, 6)
    assert blas._operand(a[1:3, :].T) == (blas._TRANS, 6)
    assert blas._operand(a[::2, ::2]) is None
    assert blas._operand(np.broadcast_to(np.float32(1), (3, 4))) is None
    assert blas._operand(np.zeros((5, 1), np.float32)) == (blas._NO_TRANS, 1)
    assert blas._operand(np.zeros((1, 5), np.float32)) == (blas._NO_TRANS, 5)


def test_backend_choice_and_its_errors(monkeypatch):
    before = blas.backend()
    try:
        assert blas.set_backend("numpy") == "numpy" and blas.backend() == "numpy"
        assert "np.matmul" in blas.describe()
        assert blas.set_backend("auto") == ("mkl" if MKL else "numpy")
        with pytest.raises(ValueError, match="TINYGAN_BLAS must be one of"):
            blas.set_backend("openblas")
        # MKL missing: auto falls back, mkl says why
        monkeypatch.setattr(blas, "_mkl", None)
        monkeypatch.setattr(blas, "_mkl_error", None)
        monkeypatch.setattr(blas, "_find_mkl", lambda: None)
        assert blas.set_backend("auto") == "numpy"
        with pytest.raises(RuntimeError, match="mkl package is not installed"):
            blas.set_backend("mkl")
    finally:
        monkeypatch.undo()
        blas.set_backend(before)


@pytest.mark.parametrize("value, expect", [("numpy", "numpy"), ("auto", "mkl" if MKL else "numpy")])
def test_tinygan_blas_is_read_at_import(value, expect):
    env = dict(os.environ, TINYGAN_BLAS=value)
    env.pop("NUMBA_THREADING_LAYER", None)
    code = ("import tinygan, numba, numpy as np; from tinygan.kernels import blas, cpu; "
            "cpu.leaky_relu(np.ones(cpu.PARALLEL_MIN, np.float32), 0.2); "
            "print(blas.backend(), numba.threading_layer())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out[0] == expect
    if expect == "numpy":
        assert out[1] in ("workqueue", "tbb")          # never OpenMP beside OpenBLAS


def test_bad_tinygan_blas_names_the_variable():
    env = dict(os.environ, TINYGAN_BLAS="openblas")
    r = subprocess.run([sys.executable, "-c", "import tinygan.kernels.blas"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "TINYGAN_BLAS must be one of" in r.stderr


def test_the_matmul_kernel_is_registered():
    previous = kernels.get_mode()
    try:
        kernels.set_mode("fast")
        assert kernels.get("matmul", np) is cpu.matmul
        kernels.set_mode("reference")
        assert kernels.get("matmul", np) is ref.matmul
    finally:
        kernels.set_mode(previous)


def test_linear_and_matmul_run_through_the_kernel(backend, monkeypatch):
    """linear's x @ Wᵀ and the MatMul op's a @ b are the registry's matmul, in both modes."""
    calls = []
    plain = blas.matmul
    monkeypatch.setattr(blas, "matmul", lambda a, b, out=None: calls.append(1) or plain(a, b, out))
    x = tinygan.randn(4, 3, requires_grad=True)
    W = tinygan.randn(5, 3, requires_grad=True)
    y = tinygan.functional.linear(x, W)
    z = x @ W.transpose(0, 1)
    np.testing.assert_allclose(y.data, z.data, rtol=1e-6)
    previous = kernels.get_mode()
    try:
        kernels.set_mode("fast")
        n = len(calls)
        tinygan.functional.linear(x, W).sum().backward()
        assert len(calls) >= n + 3                    # forward, gx, gW
        kernels.set_mode("reference")
        n = len(calls)
        tinygan.functional.linear(x, W).sum().backward()
        assert len(calls) == n                        # reference: a @ b, no BLAS wrapper
    finally:
        kernels.set_mode(previous)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.sampled_from([((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)),
                              ((1, 7), (7, 1))]),
       dtype=st.sampled_from([np.float32, np.float64]), transposed=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_fast_matmul_kernel_matches_its_reference(backend, shape, dtype, transposed, seed):
    """cpu.matmul against reference.matmul (a @ b), 2-D and batched, b contiguous or a
    transposed view (linear's Wᵀ)."""
    rng = np.random.default_rng(seed)
    (sa, sb) = shape
    a = rng.standard_normal(sa).astype(dtype)
    b = rng.standard_normal(sb).astype(dtype)
    if transposed:
        b = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)
    np.testing.assert_allclose(cpu.matmul(a, b), ref.matmul(a, b), **TOL[dtype])
