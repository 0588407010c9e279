"""Compile every numba.cuda kernel of kernels/cuda.py to PTX, with no GPU and no driver.

The CUDA simulator runs the kernels as Python, so it accepts things the real compiler
rejects (an unsupported call, a type that does not unify) and cannot see a float literal
quietly promoting a float32 kernel to float64.  This script runs Numba's real CUDA front end
and NVVM (`numba.cuda.compile_ptx`) on each kernel for float32 and float64, and fails when a
kernel does not compile or when a float32 kernel contains float64 arithmetic.

It needs libnvvm: CUDA_HOME pointing at a CUDA toolkit, or the `nvidia-cuda-nvcc-cu12` wheel
installed in the environment (pip install nvidia-cuda-nvcc-cu12; no GPU needed).  Exit code
0: all compiled; 1: a failure; 77: no NVVM found (nothing checked).

    python scripts/cuda_ptx_check.py [--cc 9.0]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path


def find_cuda_home() -> str | None:
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "cuda_nvcc"
        if (candidate / "nvvm" / "lib64" / "libnvvm.so").exists():
            return str(candidate)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc", default="9.0", help="compute capability to compile for (default 9.0)")
    cc = tuple(int(v) for v in ap.parse_args().cc.split("."))

    home = find_cuda_home()
    if home is None:
        print("no NVVM found (set CUDA_HOME or pip install nvidia-cuda-nvcc-cu12)")
        return 77
    os.environ["CUDA_HOME"] = home              # read by Numba when it first looks for NVVM
    os.environ.pop("NUMBA_ENABLE_CUDASIM", None)

    import numpy as np
    import numba.cuda.dispatcher
    from numba import cuda, types

    # A kernel that calls a device function compiles that function for "the current device",
    # which needs a driver; tell it the target instead (compile_ptx itself takes cc=).
    class _Target:
        compute_capability = cc
    numba.cuda.dispatcher.get_current_device = lambda: _Target()

    from tinygan.kernels import cuda as K

    failures = 0
    for ft in (types.float32, types.float64):
        def A(ndim):                            # any layout (strided views)
            return ft[(slice(None),) * ndim]
        v, ncl = ft[::1], ft[:, :, ::1]         # contiguous vector / (N, C, L)
        i8, b = types.int64, types.boolean
        stats, grad_sums = K._bn_reduction_kernels(np.dtype(str(ft)))
        signatures = {
            "im2col": (K._im2col_kernel, (A(4), A(6), i8, i8, i8, i8, ft)),
            "col2im": (K._col2im_kernel, (A(6), A(4), i8, i8, i8, i8, ft)),
            "batch_norm_stats": (stats, (ncl, v, v, ft, ft)),
            "batch_norm_grad_sums": (grad_sums, (ncl, ncl, ncl, b, ft, v, v, v, v, ft)),
            "batch_norm_act_apply": (K._bn_act_kernel, (v, v, v, ft, v, i8, i8)),
            "batch_norm_backward": (K._bn_backward_kernel,
                                    (v, v, v, b, ft, v, v, v, v, v, ft, v, i8, i8)),
            "leaky_relu": (K._leaky_relu_kernel, (v, ft, v)),
            "leaky_relu_grad": (K._leaky_relu_grad_kernel, (v, v, ft, v)),
            "sgd_update": (K._sgd_kernel, (v, v, v, ft, ft, ft, ft, b, b, b, b)),
            "adam_update": (K._adam_kernel, (v, v, v, v) + (ft,) * 7 + (b,)),
            "rmsprop_update": (K._rmsprop_kernel, (v,) * 5 + (ft,) * 6 + (b, b, b)),
        }
        for name, (kernel, sig) in signatures.items():
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=cc)
            except Exception as e:                          # report every kernel, then fail
                failures += 1
                print(f"FAIL {name} [{ft}]: {type(e).__name__}: {e}")
                continue
            promoted = ft == types.float32 and ".f64" in ptx
            failures += promoted
            print(f"{'FAIL' if promoted else 'ok  '} {name} [{ft}]"
                  + (": float64 arithmetic in a float32 kernel" if promoted else ""))
    print("all kernels compiled" if not failures else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
