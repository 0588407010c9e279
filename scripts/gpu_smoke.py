"""Launch every CUDA kernel once on tiny inputs and compare it with its reference kernel.

The first thing to run on a new GPU machine (scripts/gpu_check.sh does): it prints the
toolchain (driver, CUDA runtime, CuPy, Numba, numba-cuda, NVVM), says why CUDA is missing when
it is, and then, kernel by kernel, whether it compiles, launches and agrees with
`kernels/reference.py` — with the time of the first call (compiling) and of the second.  One
failing kernel does not stop the others.  Exit code 0: all agree; 1: a failure; 2: no GPU.

    python scripts/gpu_smoke.py [--no-launch-costs]
"""
from __future__ import annotations

import json
import sys
import time
import traceback

import numpy as np


def versions() -> dict:
    info = {"python": sys.version.split()[0], "numpy": np.__version__}
    try:
        import cupy
        info["cupy"] = cupy.__version__
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        info["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["compute_capability"] = f"{props['major']}.{props['minor']}"
        info["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2 ** 30, 1)
    except Exception as e:                      # say what is wrong instead of "no CUDA"
        info["cupy_error"] = f"{type(e).__name__}: {e}"
    try:
        from tinygan.kernels import cuda as K
        info.update(K.describe())
    except Exception as e:
        info["numba_cuda_error"] = f"{type(e).__name__}: {e}"
    return info


def cases(xp):
    """(name, args) for every kernel: shapes that exercise padding, stride, several blocks."""
    rng = np.random.default_rng(0)

    def f(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x, w = f(3, 4, 9, 9), f(5, 4, 4, 4)                 # conv 4 -> 5, 9x9 -> 4x4 (k4 s2 p1)
    y = f(3, 5, 4, 4)
    s, p = (2, 2), (1, 1)
    xb, gb = f(6, 7, 5, 5), f(6, 7, 5, 5)
    C = 7
    mean, var = xb.mean(axis=(0, 2, 3)), xb.var(axis=(0, 2, 3))
    inv = (1 / np.sqrt(var + 1e-5)).astype(np.float32)
    wb, bb = f(C), f(C)
    from tinygan.kernels import reference as R
    yb = R.batch_norm_act_apply(xb, mean, inv, wb, bb, 0.2)
    pv, g, m, v = f(1000), f(1000), f(1000), np.abs(f(1000))
    col = R.im2col(x, 4, 4, s, p)
    host = [
        ("im2col", (x, 4, 4, s, p)),
        ("col2im", (col, x.shape, s, p)),
        ("conv2d", (x, w, s, p)),
        ("conv_transpose2d", (y, w, s, p, (1, 1))),
        ("conv2d_grad_weight", (x, y, (4, 4), s, p)),
        ("batch_norm_stats", (xb,)),
        ("batch_norm_apply", (xb, mean, inv, wb, bb)),
        ("batch_norm_backward", (xb, gb, mean, inv, wb)),
        ("batch_norm_act_apply", (xb, mean, inv, wb, bb, 0.2)),
        ("batch_norm_act_backward", (xb, yb, gb, mean, inv, wb, 0.2)),
        ("leaky_relu", (xb, 0.2)),
        ("leaky_relu_grad", (xb, gb, 0.2)),
        ("sgd_update", (pv, g, m, 0.1, 0.9, 0.0, 0.01, False, False)),
        ("adam_update", (pv, g, m, v, 3, 2e-4, 0.5, 0.999, 1e-8)),
        ("rmsprop_update", (pv, g, v, None, None, 1e-3, 0.99, 1e-8, 0.0, 0.0)),
    ]
    dev = lambda a: xp.asarray(a) if isinstance(a, np.ndarray) else a      # noqa: E731
    return [(name, args, tuple(dev(a) for a in args)) for name, args in host]


def results(out):
    """The arrays a kernel call gives: its return value(s), or for the in-place optimizer
    updates the arrays it updated (returned None)."""
    if isinstance(out, tuple):
        return list(out)
    return [out]


def main() -> int:
    info = versions()
    print(json.dumps(info, indent=1, default=str))
    import tinygan
    if not tinygan.cuda_available():
        print("no working CUDA device:", info.get("cupy_error", "tinygan.cuda_available() is False"))
        return 2
    import cupy as cp
    from tinygan import kernels
    from tinygan.kernels import reference as R
    kernels.set_mode("fast")
    fn = kernels.get("leaky_relu", cp)                # runs the registry's smoke test
    reason = kernels.fallback_reason("cuda")
    if reason:
        print(f"FAIL the CUDA kernels fell back to the reference kernels: {reason}")
        try:                                          # again, for the whole traceback
            from tinygan.kernels import cuda as K
            K.smoke_test()
        except Exception:
            traceback.print_exc(file=sys.stdout)
        return 1
    from tinygan.kernels import cuda as K
    assert fn is K.leaky_relu
    failures = 0
    print(f"{'kernel':26s} {'first ms':>9s} {'again ms':>9s}  result")
    for name, host_args, dev_args in cases(cp):
        try:
            inplace = name.endswith("_update")
            want_args = [a.copy() if isinstance(a, np.ndarray) else a for a in host_args]
            want = getattr(R, name)(*want_args)
            want = [want_args[0], want_args[2]] if inplace else results(want)
            times = []
            for _ in range(2):
                args = [a.copy() if isinstance(a, cp.ndarray) else a for a in dev_args]
                cp.cuda.Device().synchronize()
                t = time.perf_counter()
                got = getattr(K, name)(*args)
                cp.cuda.Device().synchronize()
                times.append((time.perf_counter() - t) * 1e3)
            got = [args[0], args[2]] if inplace else results(got)
            for g, r in zip(got, want):
                np.testing.assert_allclose(cp.asnumpy(g), r, rtol=2e-4, atol=2e-5)
            print(f"{name:26s} {times[0]:9.1f} {times[1]:9.3f}  ok")
        except Exception as e:
            failures += 1
            print(f"{name:26s} {'':9s} {'':9s}  FAIL {type(e).__name__}: {str(e)[:400]}")
            traceback.print_exc(limit=4, file=sys.stdout)
    print("all kernels agree with the reference" if not failures else f"{failures} kernel(s) FAILED")
    if "--no-launch-costs" not in sys.argv:
        launch_costs(cp, K)
    return 1 if failures else 0


def launch_costs(cp, K, n=2000):
    """Host time per call of the smallest possible work (8 floats), where the host is the
    bound: what one op costs a training step before the GPU does anything."""
    x = cp.arange(8, dtype=cp.float32)
    slope = np.float32(0.2)
    stream = K._stream(cp)
    dx, dy = K._dev(x), K._dev(cp.empty_like(x))

    def per_call_us(fn):
        fn()
        cp.cuda.Device().synchronize()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        cp.cuda.Device().synchronize()
        return (time.perf_counter() - t) / n * 1e6

    rows = [("tinygan leaky_relu (alloc + launch)", lambda: K.leaky_relu(x, 0.2)),
            ("the kernel launch alone", lambda: K._run(K._leaky_relu_kernel, 1, cp, (dx, slope, dy))),
            ("numba.cuda.as_cuda_array", lambda: K.cuda.as_cuda_array(x, sync=False)),
            ("CuPy elementwise (x * 2)", lambda: x * 2),
            ("CuPy empty_like", lambda: cp.empty_like(x))]
    try:
        import torch
        t = torch.arange(8, dtype=torch.float32, device="cuda")
        rows.append(("PyTorch elementwise (t * 2)", lambda: t * 2))
        rows.append(("PyTorch leaky_relu", lambda: torch.nn.functional.leaky_relu(t, 0.2)))
    except Exception as e:                          # torch is only a point of comparison
        print(f"(no PyTorch: {type(e).__name__})")
    print(f"\nhost time per call, {n} calls of 8 floats (launch: {K.describe()['launch']}, stream {stream}):")
    for name, fn in rows:
        print(f"  {name:40s} {per_call_us(fn):8.1f} us")


if __name__ == "__main__":
    sys.exit(main())
