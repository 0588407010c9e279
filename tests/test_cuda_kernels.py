"""The GPU kernels of kernels/cuda.py against the reference kernels.

The same checks run in up to three places:

- under Numba's CUDA simulator, on NumPy arrays, in a subprocess: the simulator must be
  switched on (NUMBA_ENABLE_CUDASIM=1) before numba.cuda is first imported, and this pytest
  process uses the real Numba for the CPU kernels.  `test_kernels_under_cuda_simulator`
  re-runs this file that way and the `[sim]` tests are the ones that then run (here they
  show as skipped).  The simulator executes every GPU thread in Python: shapes stay tiny;
- on a real GPU, on CuPy arrays (the `[gpu]` tests, marked `gpu`, skipped without one);
- compiled to PTX by Numba's real CUDA compiler when NVVM is installed
  (scripts/cuda_ptx_check.py), which catches what the simulator cannot: code that does not
  compile for a GPU, and float literals promoting float32 kernels to float64.

Plus, in this process: the module imports on a machine without CUDA and registers itself;
and in the simulator: a small conv/BN/leaky-ReLU/conv-T network and an Adam step through the
functional layer with the CUDA kernels standing in, equal to the reference kernels.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, example, given, settings, strategies as st

from tinygan import backend, kernels
from tinygan.kernels import reference as R

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
ROOT = Path(__file__).resolve().parents[1]
NAMES = ("im2col", "col2im", "conv2d", "conv_transpose2d", "conv2d_grad_weight",
         "batch_norm_stats", "batch_norm_apply", "batch_norm_backward",
         "batch_norm_act_apply", "batch_norm_act_backward", "leaky_relu", "leaky_relu_grad", "sgd_update", "adam_update", "rmsprop_update")

# `where` a check runs: "sim" only inside the simulator subprocess, "gpu" only on a real GPU
# (conftest skips `gpu` without one; under the simulator numba.cuda cannot take CuPy arrays).
where = pytest.mark.parametrize("where", [
    pytest.param("sim", marks=pytest.mark.skipif(not SIM, reason="runs in the simulator subprocess")),
    pytest.param("gpu", marks=[pytest.mark.gpu,
                               pytest.mark.skipif(SIM, reason="needs the real numba.cuda")]),
])
few = settings(max_examples=10, deadline=None)


class Device:
    """How to move test data for `where`: to_dev / to_host, and the kernels module."""

    def __init__(self, where):
        from tinygan.kernels import cuda as K
        self.K = K
        self.xp = np if where == "sim" else backend.xp_for("cuda")
        self.device = "cpu" if where == "sim" else "cuda"

    def to_dev(self, a):
        return backend.to_device(a, self.device) if isinstance(a, np.ndarray) else a

    def to_host(self, a):
        return backend.as_numpy(a)


def layout(a, how, xp):
    """The same values as `a` as a non-contiguous view (or `a` itself for "contiguous")."""
    if how == "transposed" and a.ndim >= 2:
        return xp.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)
    if how == "strided":
        big = xp.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    return a


def close(got, want, dtype):
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, want, **tol)


def close_affine(got, want, x, mean, inv_std, weight, bias, dtype):
    """Batch norm's output x*scale + shift (scale = weight*inv_std, shift = bias - mean*scale)
    against the reference.  When |mean| >> std the two terms nearly cancel, and the sum is only
    as exact as its terms: a GPU fusing it into one multiply-add rounds once where NumPy
    rounds twice, and both may be off by a few ulps of |x*scale| + |shift| (with a batch of 1
    and a mean of 50: 1e-3).  So the tolerance scales with the terms, not the result."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = (weight * inv_std).reshape(shape)
    shift = bias.reshape(shape) - mean.reshape(shape) * scale
    terms = np.abs(x * scale) + np.abs(shift)
    ulps = 8 * np.finfo(dtype).eps * terms
    tol = 1e-4 if dtype == np.float32 else 1e-10
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= tol * np.abs(want) + tol * 0.1 + ulps), (err.max(), got, want)


# ---------------------------------------------------------------------------------------
# In this process

def test_module_imports_without_a_gpu_and_registers_every_kernel():
    from tinygan.kernels import cuda as K

    class NotNumpy:             # any array module other than numpy selects the "cuda" backend
        pass

    old = kernels.get_mode()
    try:
        for name in NAMES:
            kernels.set_mode("fast")
            assert kernels.get(name, NotNumpy) is getattr(K, name)
            assert kernels.get(name, np) is not getattr(K, name)
            kernels.set_mode("reference")
            assert kernels.get(name, NotNumpy) is getattr(R, name)
    finally:
        kernels.set_mode(old)


def _fresh_backend(monkeypatch, module_source, tmp_path):
    """Point the registry's "cuda" backend at a module written from `module_source`."""
    import importlib
    name = f"fake_fast_{abs(hash(module_source))}"
    (tmp_path / f"{name}.py").write_text(module_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setitem(kernels._FAST_MODULES, "cuda", name)
    monkeypatch.setitem(kernels._fast, "cuda", {})
    monkeypatch.delitem(kernels._loaded, "cuda", raising=False)
    monkeypatch.delitem(kernels._fallback_reason, "cuda", raising=False)
    monkeypatch.setattr(kernels, "_mode", "fast")


class NotNumpy:                 # any array module other than numpy selects the "cuda" backend
    pass


@pytest.mark.parametrize("failure", [
    "def smoke_test():\n    raise RuntimeError('CUDA_ERROR_UNSUPPORTED_PTX_VERSION: PTX 9.5')\n",
    "raise OSError('libnvvm.so: cannot open shared object file')\n",
    "raise ImportError('no numba.cuda')\n",
])
def test_a_toolchain_that_cannot_launch_falls_back_to_the_reference_kernels(
        monkeypatch, tmp_path, failure):
    """A fast module that fails to import, or imports but fails its smoke launch, is set
    aside: every kernel comes from the reference, with one warning that carries the error."""
    source = ("from tinygan import kernels\n"
              "def leaky_relu(x, slope):\n    raise AssertionError('must not be called')\n"
              "kernels.register('leaky_relu', 'cuda', leaky_relu)\n" + failure)
    _fresh_backend(monkeypatch, source, tmp_path)
    with pytest.warns(RuntimeWarning, match="reference kernels serve instead") as record:
        assert kernels.get("leaky_relu", NotNumpy) is R.leaky_relu
    assert len(record) == 1
    reason = kernels.fallback_reason("cuda")
    assert reason and reason.split(":")[0] in ("RuntimeError", "OSError", "ImportError")
    assert str(record[0].message).endswith(f"({reason})")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # warned once: later lookups are silent
        assert kernels.get("conv2d", NotNumpy) is R.conv2d
        assert kernels.get("leaky_relu", NotNumpy) is R.leaky_relu


def test_a_toolchain_whose_smoke_launch_passes_is_used(monkeypatch, tmp_path):
    source = ("from tinygan import kernels\n"
              "calls = []\n"
              "def leaky_relu(x, slope):\n    return 'fast'\n"
              "kernels.register('leaky_relu', 'cuda', leaky_relu)\n"
              "def smoke_test():\n    calls.append(1)\n")
    _fresh_backend(monkeypatch, source, tmp_path)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels.get("leaky_relu", NotNumpy)(None, 0.2) == "fast"
        assert kernels.get("leaky_relu", NotNumpy)(None, 0.2) == "fast"
    import sys as _sys
    assert _sys.modules[kernels._FAST_MODULES["cuda"]].calls == [1]      # proved once
    assert kernels.fallback_reason("cuda") is None


@pytest.mark.skipif(SIM, reason="this is the simulator run itself")
def test_kernels_under_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-q", "-p", "no:cacheprovider",
         "-k", "sim and not under_cuda_simulator", "-W", "ignore::pytest.PytestUnraisableExceptionWarning"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 6 and "skipped" not in summary, summary


@pytest.mark.skipif(SIM, reason="compiles for a real GPU, not for the simulator")
def test_kernels_compile_to_ptx():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "cuda_ptx_check.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode == 77:
        pytest.skip("no NVVM (pip install nvidia-cuda-nvcc-cu12 or set CUDA_HOME)")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------
# Kernel checks, in the simulator or on a GPU

@st.composite
def conv_case(draw):
    """Shapes for a conv2d that is valid, and the draws for its transposed counterpart."""
    N, C, OC = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    assume(H + 2 * p[0] >= k[0] and W + 2 * p[1] >= k[1])
    op = (draw(st.integers(0, s[0] - 1)), draw(st.integers(0, s[1] - 1)))
    return N, C, OC, H, W, k, s, p, op


@where
@few
@given(case=conv_case(), dtype=st.sampled_from([np.float64, np.float32]),
       how=st.sampled_from(["contiguous", "transposed", "strided"]))
@example(case=(2, 3, 2, 6, 6, (4, 4), (2, 2), (1, 1), (1, 1)), dtype=np.float32, how="contiguous")
def test_conv_family(where, case, dtype, how):
    """im2col, col2im, conv2d, conv2d_grad_weight, conv_transpose2d on one drawn geometry."""
    d = Device(where)
    N, C, OC, H, W, (KH, KW), s, p, op = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((OC, C, KH, KW)).astype(dtype)
    xd = layout(d.to_dev(x), how, d.xp)

    col = d.K.im2col(xd, KH, KW, s, p)
    np.testing.assert_array_equal(d.to_host(col), R.im2col(x, KH, KW, s, p))   # a pure copy
    gcol = rng.standard_normal(col.shape).astype(dtype)
    close(d.to_host(d.K.col2im(layout(d.to_dev(gcol), how, d.xp), x.shape, s, p)),
          R.col2im(gcol, x.shape, s, p), dtype)

    y = d.K.conv2d(xd, d.to_dev(w), s, p)
    assert y.dtype == dtype and y.flags.c_contiguous
    close(d.to_host(y), R.conv2d(x, w, s, p), dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    close(d.to_host(d.K.conv2d_grad_weight(xd, d.to_dev(gy), (KH, KW), s, p)),
          R.conv2d_grad_weight(x, gy, (KH, KW), s, p), dtype)

    # conv_transpose2d maps (N, OC, OH, OW) back to a (N, C, H', W') image; output_padding
    # only has to be < stride, and the output non-empty.
    OHt = R.conv_transpose_output_size(y.shape[2], KH, s[0], p[0], op[0])
    OWt = R.conv_transpose_output_size(y.shape[3], KW, s[1], p[1], op[1])
    if OHt >= 1 and OWt >= 1:
        wt = rng.standard_normal((OC, C, KH, KW)).astype(dtype)
        close(d.to_host(d.K.conv_transpose2d(layout(d.to_dev(gy), how, d.xp), d.to_dev(wt), s, p, op)),
              R.conv_transpose2d(gy, wt, s, p, op), dtype)


@where
def test_conv2d_grad_weight_rejects_mismatched_gy(where):
    d = Device(where)
    x = d.to_dev(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="conv2d_grad_weight"):
        d.K.conv2d_grad_weight(x, d.to_dev(np.zeros((1, 1, 3, 3))), (3, 3), (1, 1), (0, 0))


@where
@few
@given(N=st.integers(1, 3), C=st.integers(1, 3),
       hw=st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))),
       dtype=st.sampled_from([np.float64, np.float32]), offset=st.sampled_from([0.0, 50.0]))
@example(N=2, C=3, hw=(6, 6), dtype=np.float32, offset=0.0)   # M = 72 values: several per thread
@example(N=1, C=2, hw=None, dtype=np.float32, offset=50.0)   # var 0: the terms cancel (GPU: 6e-4)
def test_batch_norm(where, N, C, hw, dtype, offset):
    d = Device(where)
    rng = np.random.default_rng(1)
    shape = (N, C) + (hw or ())
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    weight, bias = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    xd = d.to_dev(x)

    mean, var = d.K.batch_norm_stats(xd)
    rmean, rvar = R.batch_norm_stats(x)
    assert mean.dtype == dtype and var.dtype == dtype
    close(d.to_host(mean), rmean, dtype)
    close(d.to_host(var), rvar, dtype)

    inv_std = (1 / np.sqrt(rvar + 1e-5)).astype(dtype)
    close_affine(d.to_host(d.K.batch_norm_apply(xd, d.to_dev(rmean), d.to_dev(inv_std),
                                                d.to_dev(weight), d.to_dev(bias))),
                 R.batch_norm_apply(x, rmean, inv_std, weight, bias),
                 x, rmean, inv_std, weight, bias, dtype)

    got = d.K.batch_norm_backward(xd, d.to_dev(gy), d.to_dev(rmean), d.to_dev(inv_std),
                                  d.to_dev(weight))
    want = R.batch_norm_backward(x, gy, rmean, inv_std, weight)
    for g, r in zip(got, want):
        assert g.shape == r.shape and g.dtype == dtype
        close(d.to_host(g), r, dtype)


@where
@few
@given(N=st.integers(1, 3), C=st.integers(1, 3),
       hw=st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))),
       dtype=st.sampled_from([np.float64, np.float32]), slope=st.sampled_from([0.0, 0.2, 1.0]))
@example(N=2, C=3, hw=(6, 6), dtype=np.float32, slope=0.2)
def test_batch_norm_act(where, N, C, hw, dtype, slope):
    d = Device(where)
    rng = np.random.default_rng(4)
    shape = (N, C) + (hw or ())
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    weight, bias = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    mean, var = R.batch_norm_stats(x)
    inv_std = (1 / np.sqrt(var + 1e-5)).astype(dtype)
    y = R.batch_norm_act_apply(x, mean, inv_std, weight, bias, slope)
    dev = [d.to_dev(a) for a in (x, mean, inv_std, weight, bias)]
    got = d.K.batch_norm_act_apply(*dev, slope)
    assert got.shape == x.shape and got.dtype == dtype
    close_affine(d.to_host(got), y, x, mean, inv_std, weight, bias, dtype)
    got = d.K.batch_norm_act_backward(d.to_dev(x), d.to_dev(y), d.to_dev(gy), d.to_dev(mean),
                                      d.to_dev(inv_std), d.to_dev(weight), slope)
    want = R.batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope)
    for g, r in zip(got, want):
        assert g.shape == r.shape and g.dtype == dtype
        close(d.to_host(g), r, dtype)


@where
def test_batch_norm_stats_variance_survives_a_large_mean(where):
    """float32 values 1e4 ± 1: E[x²] - E[x]² would have no correct digit left; two passes do."""
    d = Device(where)
    x = (1e4 + np.random.default_rng(2).standard_normal((3, 2, 5, 5))).astype(np.float32)
    _, var = d.K.batch_norm_stats(d.to_dev(x))
    np.testing.assert_allclose(d.to_host(var), x.astype(np.float64).var(axis=(0, 2, 3)), rtol=1e-3)


@where
@few
@given(shape=st.sampled_from([(5,), (2, 3), (2, 3, 2, 2)]),
       slope=st.sampled_from([0.0, 0.01, 0.2, -0.5, 1.0, 1.5]),
       dtype=st.sampled_from([np.float64, np.float32]),
       how=st.sampled_from(["contiguous", "transposed", "strided"]))
def test_leaky_relu(where, shape, slope, dtype, how):
    d = Device(where)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    xd = layout(d.to_dev(x), how, d.xp)
    y = d.K.leaky_relu(xd, slope)
    assert y.shape == x.shape and y.dtype == dtype
    close(d.to_host(y), R.leaky_relu(x, slope), dtype)
    close(d.to_host(d.K.leaky_relu_grad(xd, layout(d.to_dev(gy), how, d.xp), slope)),
          R.leaky_relu_grad(x, gy, slope), dtype)


OPTIMIZER_CASES = [
    ("sgd_update", dict(lr=0.1)),
    ("sgd_update", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd_update", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("adam_update", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("adam_update", dict(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8, weight_decay=0.1)),
    ("rmsprop_update", dict(lr=1e-2, alpha=0.99, eps=1e-8)),
    ("rmsprop_update", dict(lr=5e-5, alpha=0.9, eps=1e-8, weight_decay=0.1, momentum=0.5,
                            centered=True)),
]


def optimizer_run(K, name, opts, p, grads, xp, to_dev):
    """Three in-place steps of kernel `name` of module K; returns p and the state arrays."""
    p = to_dev(p.copy())
    zeros = lambda: xp.zeros_like(p)                                        # noqa: E731
    opts = dict(opts)
    if name == "sgd_update":
        buf = zeros() if opts.get("momentum", 0) else None
        for t, g in enumerate(grads):
            K.sgd_update(p, to_dev(g), buf, first=(t == 0), **opts)
        state = [buf]
    elif name == "adam_update":
        m, v = zeros(), zeros()
        for t, g in enumerate(grads, start=1):
            K.adam_update(p, to_dev(g), m, v, t, **opts)
        state = [m, v]
    else:
        centered = opts.pop("centered", False)
        s, a = zeros(), zeros() if centered else None
        buf = zeros() if opts.get("momentum", 0) else None
        for g in grads:
            K.rmsprop_update(p, to_dev(g), s, a, buf, **opts)
        state = [s, a, buf]
    return [p] + [a for a in state if a is not None]


@where
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 2, 2)])
def test_optimizer_updates(where, dtype, shape):
    """Every optimizer case, three steps each, equal to the reference to rounding."""
    d = Device(where)
    rng = np.random.default_rng(4)
    p = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    for name, opts in OPTIMIZER_CASES:
        got = optimizer_run(d.K, name, opts, p, grads, d.xp, d.to_dev)
        want = optimizer_run(R, name, opts, p, grads, np, lambda a: a)
        assert len(got) == len(want)
        for g, r in zip(got, want):
            np.testing.assert_allclose(d.to_host(g), r, rtol=1e-6 if dtype == np.float32 else 1e-13,
                                       atol=1e-7 if dtype == np.float32 else 1e-15,
                                       err_msg=f"{name} {opts}")


@where
def test_optimizer_update_of_a_strided_parameter_is_in_place(where):
    """A non-contiguous parameter or state is left to the reference kernel, still in place."""
    d = Device(where)
    rng = np.random.default_rng(5)
    p0, g = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    big = d.to_dev(np.zeros((3, 8)))
    big[:, ::2] = d.to_dev(p0)
    view = big[:, ::2]
    m, v = d.xp.zeros_like(view), d.xp.zeros_like(view)
    d.K.adam_update(view, d.to_dev(g), m, v, 1, 0.1, 0.9, 0.999, 1e-8)
    want = p0.copy()
    R.adam_update(want, g, np.zeros_like(g), np.zeros_like(g), 1, 0.1, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(d.to_host(big[:, ::2]), want, rtol=1e-13)


@pytest.mark.gpu
@pytest.mark.skipif(SIM, reason="needs the real numba.cuda")
def test_registry_hands_out_these_kernels_for_cupy():
    """`kernels.get(name, cupy)` returns the CUDA kernel (numpy arrays select the CPU backend,
    so in the simulator this is checked with a stand-in module, above)."""
    d = Device("gpu")
    old = kernels.get_mode()
    try:
        kernels.set_mode("fast")
        for name in NAMES:
            assert kernels.get(name, d.xp) is getattr(d.K, name)
    finally:
        kernels.set_mode(old)


@pytest.mark.skipif(not SIM, reason="runs in the simulator subprocess")
def test_functional_ops_and_adam_through_the_cuda_kernels_sim(monkeypatch):
    """conv2d -> batch_norm -> leaky_relu -> conv_transpose2d, backward, one Adam step, with
    the CUDA kernels standing in for the CPU ones: the same results as the reference kernels,
    so the wrappers accept exactly what the functional layer and the optimizer pass them."""
    import tinygan
    import tinygan.functional as F
    from tinygan import optim
    from tinygan.kernels import cuda as K

    def step():
        rng = np.random.default_rng(6)
        x = tinygan.tensor(rng.standard_normal((2, 2, 6, 6)).astype(np.float32))
        w1, w2 = (tinygan.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
                  for s in ((3, 2, 3, 3), (3, 2, 4, 4)))
        g = tinygan.tensor(np.ones(3, np.float32), requires_grad=True)
        b = tinygan.tensor(np.zeros(3, np.float32), requires_grad=True)
        rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
        h = F.batch_norm(F.conv2d(x, w1, stride=2, padding=1), rm, rv, g, b, training=True)
        y = F.conv_transpose2d(F.leaky_relu(h, 0.2), w2, stride=2, padding=1)
        opt = optim.Adam([w1, w2, g, b], lr=1e-2)
        (y * y).mean().backward()
        opt.step()
        return [t.data.copy() for t in (y, w1, w2, g, b)] + [rm, rv]

    monkeypatch.setattr(kernels, "_mode", "reference")
    want = step()
    monkeypatch.setattr(kernels, "_mode", "fast")
    monkeypatch.setitem(kernels._fast, "cpu", {name: getattr(K, name) for name in NAMES})
    monkeypatch.setitem(kernels._loaded, "cpu", True)
    got = step()
    for a, r in zip(got, want):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(SIM, reason="the smoke test has nothing to prove in the simulator")
@pytest.mark.parametrize("error, switch_before, want", [
    ("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", False, "retried through nvJitLink"),
    ("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", True, "raised"),       # already on: nothing to try
    ("CUDA_ERROR_OUT_OF_MEMORY", False, "raised"),                # no known cure
])
def test_smoke_test_retries_an_unloadable_ptx_through_nvjitlink(monkeypatch, error,
                                                                 switch_before, want):
    """PTX newer than the driver: the one failure the smoke test cures itself (nvJitLink
    compiles it for the older driver of the same major version); anything else propagates."""
    from tinygan.kernels import cuda as K

    class Config:
        CUDA_ENABLE_PYNVJITLINK = switch_before

    launches = []

    def launch_once():
        launches.append(Config.CUDA_ENABLE_PYNVJITLINK)
        if not Config.CUDA_ENABLE_PYNVJITLINK or switch_before:
            raise RuntimeError(f"[222] Call to cuLinkAddData results in {error}")

    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    monkeypatch.setattr(K, "_launch_once", launch_once)
    monkeypatch.setattr(K, "_linker_setting", lambda: (Config, "CUDA_ENABLE_PYNVJITLINK"))
    if want == "raised":
        with pytest.raises(RuntimeError, match=error):
            K.smoke_test()
        assert len(launches) == 1
    else:
        K.smoke_test()
        assert launches == [False, True]


@pytest.mark.skipif(SIM, reason="the smoke test has nothing to prove in the simulator")
def test_smoke_test_sets_a_failing_direct_launcher_aside(monkeypatch):
    """The direct launcher leans on numba-cuda internals: if the smoke kernel fails through it,
    Numba's dispatcher launches from then on, with a warning that says why."""
    from tinygan.kernels import cuda as K
    launches = []

    def launch_once():
        launches.append(K._direct)
        if K._direct is not None:
            raise TypeError("launch() got an unexpected keyword argument")

    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    monkeypatch.setattr(K, "_launch_once", launch_once)
    monkeypatch.setattr(K, "_direct", "a direct launcher")
    with pytest.warns(RuntimeWarning, match="failed through the direct launcher.*dispatcher"):
        K.smoke_test()
    assert launches == ["a direct launcher", None] and K._direct is None
