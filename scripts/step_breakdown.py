"""Where a training step's time goes: each fast CPU kernel's share, timed inside the step.

    .venv/bin/python scripts/step_breakdown.py dcgan --steps 6

Builds the benchmark step of `bench/ours.py` (batch 64, float32, fast kernels), warms it up,
then times every call of the Numba kernels and of the matrix products (`blas.matmul`: the
convolutions' and `linear`'s), and
prints per-step milliseconds and call counts, largest first; "other" is the rest of the step
(Python, autograd, NumPy's small ops).  Times are wall-clock on a noisy machine:
compare rows within one run, not across runs.

Beside each row, the rate it ran at: GFLOP/s for the matrix products (2·m·k·n a product), and
for the other kernels GB/s of *array traffic* — the bytes of every array the call is handed
(its inputs and its outputs), each counted once, over its time.  That is a lower bound of what
the loop moves (a kernel that reads an array twice, or a scratch buffer it keeps, is not
counted again), so a kernel near the machine's copy bandwidth (printed at the end: a 2-thread
copy between two 64 MiB arrays, read + write counted, the best of 5) is bound by memory, and
only moving fewer bytes would make it faster.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ours import make_step  # noqa: E402  (imports tinygan before numpy)

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from tinygan import kernels  # noqa: E402

KERNELS = ["_im2col_kernel", "_im2col_table_kernel", "_col2im_kernel", "_swap01",
           "_batch_minor_kernel", "_col2im_batch_minor_kernel",
           "_bn_stats_kernel", "_bn_act_kernel", "_bn_backward_sums_kernel",
           "_bn_backward_gx_kernel", "_bn_stats_rows", "_bn_act_rows", "_bn_backward_sums_rows",
           "_bn_backward_gx_rows", "_leaky_relu_kernel", "_leaky_relu_grad_kernel",
           "_adam_kernel", "_pairwise_l1_kernel", "_pairwise_l1_grad_kernel",
           "_pairwise_l1_grad_adjoint_kernel"]
# the Winograd transforms of the k4 s2 p1 convolutions (kernels/winograd.py)
WINOGRAD_KERNELS = ["_input_kernel", "_filter_kernel", "_output_kernel", "_gy_kernel", "_input_adjoint_kernel",
                    "_grad_weight_output_kernel"]


def array_bytes(args) -> int:
    """Bytes of the NumPy arrays among a kernel call's arguments, each counted once."""
    seen, total = set(), 0
    for a in args:
        if isinstance(a, np.ndarray) and id(a) not in seen:
            seen.add(id(a))
            total += a.nbytes
    return total


def product_flops(args) -> int:
    """2·m·k·n of a blas.matmul(a, b, ...) call."""
    a, b = args[0], args[1]
    return 2 * a.shape[0] * a.shape[1] * b.shape[1]


def instrument(cpu, seconds, calls, work=None):
    """Wrap the kernels (module globals, looked up at call time) and blas.matmul; `work`, a
    dict when given, sums each row's array bytes (kernels) or FLOPs (the products)."""
    from tinygan.kernels import winograd
    busy = [False]                      # time only the outermost of nested timed calls

    def timed(name, fn, measure=array_bytes):
        def call(*args, **kwargs):
            if busy[0]:
                return fn(*args, **kwargs)
            busy[0] = True
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - t
                calls[name] += 1
                busy[0] = False
                if work is not None:
                    work[name] += measure(args)
        return call

    for name in KERNELS:                # each parallel kernel and its serial twin, if any
        twin = name.replace("_kernel", "_serial") if "_kernel" in name else name + "_serial"
        for variant in (name, twin):
            if hasattr(cpu, variant):
                setattr(cpu, variant, timed(name.strip("_"), getattr(cpu, variant)))

    for name in WINOGRAD_KERNELS:
        setattr(winograd, name, timed("winograd" + name.replace("_kernel", ""),
                                      getattr(winograd, name)))
    from tinygan.kernels import blas
    blas.matmul = timed(PRODUCTS, blas.matmul, product_flops)


PRODUCTS = "matmul (BLAS)"


@njit(parallel=True)
def _copy(src, dst):
    for i in prange(src.size):
        dst[i] = src[i]


def copy_bandwidth(mib: int = 64, repeats: int = 5) -> float:
    """GB/s of a parallel copy between two `mib` MiB float32 arrays (read + write), the best of
    `repeats` after a first, page-faulting pass: the rate a memory-bound kernel can reach."""
    src = np.ones(mib << 18, dtype=np.float32)
    dst = np.empty_like(src)
    _copy(src, dst)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        _copy(src, dst)
        best = min(best, time.perf_counter() - t)
    return 2 * src.nbytes / best / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variant", choices=["gan", "dcgan", "wgan_gp"])
    ap.add_argument("--steps", type=int, default=6, help="timed steps (after 3 warm-up steps)")
    a = ap.parse_args(argv)
    if a.steps < 1:
        ap.error("--steps must be >= 1")
    kernels.set_mode("fast")
    kernels._load_fast("cpu")
    from tinygan.kernels import cpu
    seconds, calls = collections.defaultdict(float), collections.Counter()
    work = collections.Counter()
    instrument(cpu, seconds, calls, work)
    step = make_step(a.variant, 64)
    for _ in range(3):
        step()
    seconds.clear()
    calls.clear()
    work.clear()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    total = (time.perf_counter() - t0) / a.steps * 1e3
    from tinygan.kernels import blas
    print(f"{a.variant} step: {total:.1f} ms (mean of {a.steps}); BLAS: {blas.describe()}")
    timed_ms = 0.0
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        ms = s / a.steps * 1e3
        timed_ms += ms
        rate, unit = (work[name] / s / 1e9, "GFLOP/s" if name == PRODUCTS else "GB/s") if s else (0, "")
        print(f"  {name:28s} {ms:7.1f} ms  {calls[name] / a.steps:5.0f} calls  {rate:6.1f} {unit}")
    print(f"  {'other':28s} {total - timed_ms:7.1f} ms")
    print(f"copy bandwidth here: {copy_bandwidth():.1f} GB/s (2 threads, 64 MiB arrays, read + write)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
