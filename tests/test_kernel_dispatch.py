"""Which implementation serves a kernel call, and why: `kernels.explain`, the
TINYGAN_KERNEL_LOG log, the warning of a fast module that cannot load, and the CPU kernels'
package layout (names reachable and settable on `cpu`, Numba's on-disk cache)."""
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fake_device
from tinygan import kernels
from tinygan.kernels import blas, cpu, reference, winograd

ROOT = Path(__file__).resolve().parents[1]
f32, f64 = np.float32, np.float64


def _a(*shape, dtype=f32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(kernels, "_mode", "fast")


@pytest.fixture
def broken(monkeypatch):
    """A registry whose fast modules have not been loaded yet and whose cpu and cuda modules
    fail to import (the registry's state is restored afterwards)."""
    monkeypatch.setattr(kernels, "_mode", "fast")
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.setattr(kernels, "_fallback_reason", {})
    monkeypatch.setattr(kernels, "_fast", {"cpu": {}, "cuda": {}})
    monkeypatch.setattr(kernels, "_FAST_MODULES", {"cpu": "tinygan.kernels._no_such_cpu",
                                                   "cuda": "tinygan.kernels._no_such_cuda"})


# ---------------------------------------------------------------------------------------
# explain

def test_explain_reference_mode(monkeypatch):
    monkeypatch.setattr(kernels, "_mode", "reference")
    e = kernels.explain("conv2d", _a(2, 16, 8, 8), _a(4, 16, 4, 4), (2, 2), (1, 1))
    assert e.implementation == "reference.conv2d"
    assert e.reasons == ("the mode is 'reference' (TINYGAN_KERNELS or set_mode)",)
    assert str(e).splitlines()[0] == "conv2d: reference.conv2d"


def test_explain_fast_float32_and_float64_loops(fast):
    for dt in (f32, f64):
        e = kernels.explain("leaky_relu", _a(3, 5, dtype=dt), 0.2)
        assert e.implementation == "cpu.leaky_relu -> numba loops"
        assert "the compiled loops apply" in e.reasons[-1]


@pytest.mark.parametrize("args, why", [
    ((_a(4, 3, dtype=np.float16), 0.2), "dtype float16"),
    ((_a(0, 3), 0.2), "an empty array of shape (0, 3)"),
])
def test_explain_dtype_and_empty_fallbacks(fast, args, why):
    e = kernels.explain("leaky_relu", *args)
    assert e.implementation == "reference.leaky_relu (cpu.leaky_relu hands it over)"
    assert why in e.reasons[-1]


def test_explain_mixed_dtypes_and_shape_fallbacks(fast):
    e = kernels.explain("conv2d", _a(2, 3, 8, 8, dtype=f64), _a(4, 3, 3, 3))
    assert e.implementation.startswith("reference.conv2d")
    assert e.reasons[-1] == "mixed dtypes float64 and float32"
    e = kernels.explain("leaky_relu_grad", _a(2, 3), _a(3, 2), 0.2)
    assert e.reasons[-1] == "shapes differ: y (2, 3), gy (3, 2)"
    e = kernels.explain("batch_norm_act_apply", _a(4, 3), *(_a(3),) * 4, 1.5)
    assert e.reasons[-1] == "slope 1.5 outside [0, 1]"


# (kernel, args, plan): the DCGAN's k4 s2 p1 layers with >= 16 channels on the image side
# take Winograd; fewer channels, another stride or a map that is no multiple of 4 take
# the columns; a 1x1 input to a transposed convolution is one GEMM.
CASES = [
    ("conv2d", (_a(2, 16, 8, 8), _a(4, 16, 4, 4), (2, 2), (1, 1)), "winograd F(2x2,2x2)"),
    ("conv2d", (_a(2, 8, 8, 8), _a(4, 8, 4, 4), (2, 2), (1, 1)), "im2col + GEMM"),
    ("conv2d", (_a(2, 16, 8, 8), _a(4, 16, 4, 4), (1, 1), (1, 1)), "im2col + GEMM"),
    ("conv2d", (_a(2, 16, 6, 6), _a(4, 16, 4, 4), (2, 2), (1, 1)), "im2col + GEMM"),
    ("conv2d_grad_weight", (_a(2, 16, 8, 8), _a(2, 4, 4, 4), (4, 4), (2, 2), (1, 1)),
     "winograd F(2x2,2x2)"),
    ("conv2d_grad_weight", (_a(2, 3, 8, 8), _a(2, 4, 4, 4), (4, 4), (2, 2), (1, 1)),
     "im2col + GEMM"),
    ("conv_transpose2d", (_a(2, 4, 4, 4), _a(4, 16, 4, 4), (2, 2), (1, 1)), "winograd F(2x2,2x2)"),
    ("conv_transpose2d", (_a(2, 4, 4, 4), _a(4, 3, 4, 4), (2, 2), (1, 1)), "GEMM + col2im scatter"),
    ("conv_transpose2d", (_a(2, 5, 1, 1), _a(5, 3, 4, 4)), "one GEMM (1x1 input)"),
    ("conv2d", (_a(2, 16, 8, 8, dtype=f64), _a(4, 16, 4, 4), (2, 2), (1, 1)), "reference"),
]


@pytest.mark.parametrize("name, args, plan", CASES)
def test_explained_plan_is_what_runs(fast, monkeypatch, name, args, plan):
    """Count the calls into each path the convolutions can take, run the kernel, and compare
    the path it took with the one `explain` named."""
    taken = []

    def spy(owner, attr, label):
        inner = getattr(owner, attr)
        monkeypatch.setattr(owner, attr, lambda *a, **k: taken.append(label) or inner(*a, **k))

    for attr in ("conv2d", "conv2d_grad_weight", "conv_transpose2d"):
        spy(winograd, attr, "winograd F(2x2,2x2)")
        spy(reference, attr, "reference")
    spy(cpu, "_im2col_channel_major", "im2col + GEMM")       # set on the package: reaches conv
    spy(cpu, "_col2im_batch_minor_kernel", "GEMM + col2im scatter")
    spy(blas, "matmul", "GEMM")
    e = kernels.explain(name, *args)
    assert e.implementation.endswith(plan) or e.implementation.startswith(plan)
    kernels.get(name)(*args)
    expected = {"one GEMM (1x1 input)": ["GEMM"]}.get(plan, [plan])
    assert [t for t in taken if t != "GEMM"] == [t for t in expected if t != "GEMM"]
    if plan == "one GEMM (1x1 input)":
        assert taken == ["GEMM"]
    if "GEMM" in plan or "winograd" in plan:
        assert e.reasons[-1].startswith("products by ")


def test_explain_matmul_names_the_blas_decision(fast, monkeypatch):
    if blas.backend() == "mkl":
        e = kernels.explain("matmul", _a(3, 4, 5), _a(5, 2))
        assert (e.implementation, e.reasons[-1]) == ("cpu.matmul -> np.matmul",
                                                     "a batched (N-D) product")
        e = kernels.explain("matmul", _a(3, 4), _a(4, 2))
        assert e.implementation == "cpu.matmul -> BLAS GEMM"
        assert e.reasons[-1] == f"by {blas.describe()}"
    monkeypatch.setattr(blas, "_active", "numpy")
    e = kernels.explain("matmul", _a(3, 4), _a(4, 2))
    assert e.implementation == "cpu.matmul -> np.matmul"
    assert e.reasons[-1].startswith("NumPy's BLAS is the one in use")


def test_explain_rejects_an_unknown_kernel():
    with pytest.raises(ValueError, match="no kernel named 'conv3d'"):
        kernels.explain("conv3d", _a(2, 2))


def test_explain_cuda_unavailable(broken, monkeypatch):
    """CuPy arrays (the fake device's) on a machine whose fast CUDA module cannot load."""
    fake_device.install(monkeypatch)
    monkeypatch.setattr(kernels, "_mode", "fast")
    x = fake_device.fake_cupy.ones((2, 3), dtype=f32)
    with pytest.warns(RuntimeWarning, match="fast cuda kernels cannot run here"):
        e = kernels.explain("leaky_relu", x, 0.2)
    assert e.implementation == "reference.leaky_relu"
    assert e.reasons[0].startswith("the fast cuda kernels cannot run here: ModuleNotFoundError")


def test_cuda_routes_name_their_fallbacks():
    """The CUDA kernels that hand some calls to the reference say so through their routes
    too (the module imports without a GPU; a route launches nothing)."""
    from tinygan.kernels import cuda as K
    x, v = _a(4, 3), _a(3)
    assert K.batch_norm_act_apply.route(x, v, v, v, v, 0.2)[0] == "cuda kernel"
    assert K.batch_norm_act_backward.route(x, x, x, v, v, v, 1.5) == (
        "reference", "slope 1.5 outside [0, 1]")
    strided = _a(4, 6)[:, ::2]
    assert K.adam_update.route(strided, strided, _a(4, 3), _a(4, 3), 1, 1e-3, 0.9, 0.999,
                               1e-8)[0] == "reference"
    assert K.sgd_update.route(_a(3), _a(3), None, 0.1)[0] == "cuda kernel"
    assert K.rmsprop_update.route(_a(3), _a(3), _a(3), None, _a(6)[::2], 0.1, 0.9, 1e-8)[0] \
        == "reference"


# ---------------------------------------------------------------------------------------
# The fast module's import failure

def test_a_failing_fast_module_warns_once_naming_the_error(broken):
    with pytest.warns(RuntimeWarning, match=r"ModuleNotFoundError: No module named "
                                            r"'tinygan.kernels._no_such_cpu'"):
        fn = kernels.get("conv2d")
    assert fn is reference.conv2d
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # a second warning would raise
        assert kernels.get("leaky_relu") is reference.leaky_relu
        e = kernels.explain("leaky_relu", _a(2, 2), 0.2)
    assert e.implementation == "reference.leaky_relu"
    assert "ModuleNotFoundError" in e.reasons[0]
    assert kernels.fallback_reason("cpu").startswith("ModuleNotFoundError")


# ---------------------------------------------------------------------------------------
# TINYGAN_KERNEL_LOG

def test_log_is_off_by_default_and_get_returns_the_kernel_itself(fast, monkeypatch):
    monkeypatch.setattr(kernels, "_log_on", False)
    assert kernels.get("leaky_relu") is cpu.leaky_relu


def test_log_writes_each_distinct_call_once(fast, monkeypatch, caplog):
    monkeypatch.setattr(kernels, "_log_on", True)
    monkeypatch.setattr(kernels, "_logged", set())
    caplog.set_level(logging.INFO, logger="tinygan.kernels")
    x, y = _a(4, 3), _a(5, 3)
    for _ in range(3):
        kernels.get("leaky_relu")(x, 0.2)
    kernels.get("leaky_relu")(y, 0.2)                   # another shape
    kernels.get("leaky_relu")(x.astype(np.float16), 0.2)   # another dtype and implementation
    np.testing.assert_array_equal(kernels.get("leaky_relu")(x, 0.2), cpu.leaky_relu(x, 0.2))
    lines = [r.getMessage() for r in caplog.records if r.name == "tinygan.kernels"]
    assert lines == [
        "leaky_relu(float32(4, 3)) -> cpu.leaky_relu -> numba loops",
        "leaky_relu(float32(5, 3)) -> cpu.leaky_relu -> numba loops",
        "leaky_relu(float16(4, 3)) -> reference.leaky_relu (cpu.leaky_relu hands it over)"]


def test_log_env_variable_reaches_stderr():
    code = ("import numpy as np, tinygan as tg, tinygan.functional as F\n"
            "x = tg.tensor(np.ones((4, 16, 8, 8), np.float32), requires_grad=True)\n"
            "w = tg.tensor(np.ones((8, 16, 4, 4), np.float32), requires_grad=True)\n"
            "for _ in range(2):\n"
            "    F.conv2d(x, w, stride=2, padding=1).sum().backward()\n")
    env = dict(os.environ, TINYGAN_KERNEL_LOG="1", TINYGAN_KERNELS="fast",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + sys.path))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("tinygan.kernels: ")]
    assert ("tinygan.kernels: conv2d(float32(4, 16, 8, 8), float32(8, 16, 4, 4)) -> "
            "cpu.conv2d -> winograd F(2x2,2x2)") in lines
    assert any(ln.startswith("tinygan.kernels: conv2d_grad_weight(") for ln in lines)
    assert len(lines) == len(set(lines))                 # two steps, each line once


# ---------------------------------------------------------------------------------------
# The package kernels/cpu/

def test_every_cpu_kernel_is_registered_routed_and_settable():
    for name in cpu.KERNELS:
        assert kernels._fast["cpu"][name] is getattr(cpu, name)
        assert callable(getattr(cpu, name).route)
    saved = cpu.TABLE_ROW
    try:
        cpu.TABLE_ROW = 3
        assert cpu.gathers.TABLE_ROW == 3
    finally:
        cpu.TABLE_ROW = saved
    assert cpu.gathers.TABLE_ROW == saved
    # a name imported by several modules is set in each of them
    assert {m.__name__ for m in cpu._HOLDERS["MALLOC_TUNED"]} >= {
        "tinygan.kernels.cpu.runtime", "tinygan.kernels.cpu.gathers", "tinygan.kernels.cpu.conv"}


def test_numba_cache_serves_a_second_process():
    """The kernels' cache files are keyed by their module's file: after one process has run
    a kernel of each module, a second loads them from disk instead of compiling."""
    code = ("import numpy as np\n"
            "from tinygan.kernels import cpu\n"
            "x = np.ones((2, 3, 4, 4), np.float32)\n"
            "cpu.leaky_relu(x, 0.2); cpu.batch_norm_stats(x); cpu.im2col(x, 2, 2, (1, 1), (0, 0))\n"
            "ks = [cpu._leaky_relu_serial, cpu._bn_stats_rows_serial, cpu._im2col_table_kernel]\n"
            "print(sum(len(k.stats.cache_misses) for k in ks), "
            "sum(len(k.stats.cache_hits) for k in ks))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + sys.path))
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=600) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    misses, hits = map(int, runs[1].stdout.split())
    assert (misses, hits) == (0, 3)
