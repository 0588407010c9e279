"""Where a training step's time goes: each fast CPU kernel's share, timed inside the step.

    .venv/bin/python scripts/step_breakdown.py dcgan --steps 6

Builds the benchmark step of `bench/ours.py` (batch 64, float32, fast kernels), warms it up,
then times every call of the Numba kernels and of the matrix products (`blas.matmul`: the
convolutions' and `linear`'s), and
prints per-step milliseconds and call counts, largest first; "other" is the rest of the step
(Python, autograd, NumPy's small ops).  Times are wall-clock on a noisy machine:
compare rows within one run, not across runs.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ours import make_step  # noqa: E402  (imports tinygan before numpy)

from tinygan import kernels  # noqa: E402

KERNELS = ["_im2col_kernel", "_im2col_table_kernel", "_col2im_kernel", "_swap01",
           "_batch_minor_kernel", "_col2im_batch_minor_kernel",
           "_bn_stats_kernel", "_bn_act_kernel", "_bn_backward_sums_kernel",
           "_bn_backward_gx_kernel", "_bn_stats_rows", "_bn_act_rows", "_bn_backward_sums_rows",
           "_bn_backward_gx_rows", "_leaky_relu_kernel", "_leaky_relu_grad_kernel",
           "_adam_kernel", "_pairwise_l1_kernel", "_pairwise_l1_grad_kernel",
           "_pairwise_l1_grad_adjoint_kernel"]
# the Winograd transforms of the k4 s2 p1 convolutions (kernels/winograd.py)
WINOGRAD_KERNELS = ["_input_kernel", "_filter_kernel", "_output_kernel", "_gy_kernel",
                    "_grad_weight_output_kernel"]


def instrument(cpu, seconds, calls):
    """Wrap the kernels (module globals, looked up at call time) and blas.matmul."""
    from tinygan.kernels import winograd
    busy = [False]                      # time only the outermost of nested timed calls

    def timed(name, fn):
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
    blas.matmul = timed("matmul (BLAS)", blas.matmul)


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
    instrument(cpu, seconds, calls)
    step = make_step(a.variant, 64)
    for _ in range(3):
        step()
    seconds.clear()
    calls.clear()
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
        print(f"  {name:28s} {ms:7.1f} ms  {calls[name] / a.steps:5.0f} calls")
    print(f"  {'other':28s} {total - timed_ms:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
