"""tinygan benchmarks: `python -m bench` (or `tinygan bench`).

What is timed (batch 64, float32 by default; `--batch N` to change; shapes in `shapes.py`):
  kernels   every kernel of kernels/reference.py at the DCGAN shapes, called raw;
  layers    the 8 DCGAN convs (G1..G4 ConvT, D1..D4 Conv) and the BN+activation layers,
            forward ("fwd") and forward+backward ("fwd+bwd", the gradients of the input and
            of the weights) through tinygan.functional and autograd;
  steps     one `train_step` of the real variants `gan` (Keras MLP nets) and `dcgan` (D on
            real+fake, then G), and one `wgan_gp` iteration = 5 critic updates with gradient
            penalty + 1 G update (critic without BN), on a fixed random batch in [-1, 1].

How to read the numbers:
  - tinygan's matrix products run on the BLAS that kernels/blas.py picked (MKL when the
    `mkl` extra is installed, else NumPy's OpenBLAS; TINYGAN_BLAS chooses); the header names it.
  - "ours ms" is tinygan with its fast kernels (Numba on CPU, CUDA on GPU) where they exist;
    "ref ms" is the same code with `tinygan.kernels.set_mode("reference")` in the same
    process (left blank when no fast kernel is registered: then both are the same code).
    With MKL the reference kernels' products are still NumPy's (OpenBLAS), beside the Numba
    `omp` pool, and some of them stall (they wait behind the spinning pool): for fair
    ours/ref ratios run with TINYGAN_BLAS=numpy;
    "torch ms" is PyTorch on the same workload (same nets, same step, same shapes) in a
    separate worker process (`torch_worker.py`, `torch.set_num_threads(2)`), because two
    BLAS/OpenMP runtimes in one process fight over the cores.  torch is never imported in
    the process that times tinygan.
  - Every time is a median over samples taken in alternating rounds (ours fast, ours
    reference, torch, again ...), so that a slow spell of this shared machine hits all sides
    alike; warm-up calls (compilation, first-touch page faults) are never counted.  A sample
    of a fast workload is the mean over enough back-to-back calls to last ~20-30 ms.
  - Ratios are TIME ratios: ours/ref < 1 means the fast kernels pay off, ours/torch < 1 means
    tinygan beats PyTorch.  Absolute times drift between runs on a shared VM by 10-30 %;
    only numbers from one run side by side mean anything (docs/performance.md).
  - GFLOP/s = counted FLOPs / median time (convs: 2·N·C_out·OH·OW·C_in·KH·KW per forward,
    fwd+bwd = 3× forward; steps: every conv/linear product the engine computes, see
    `shapes.step_flops`).  Memory-bound work (BN, activations, optimizers) and the WGAN-GP
    double backward have no FLOP count: blank.
  - Peak memory ("Peak memory of one step"): each side runs the step in a FRESH process
    (`python -m bench.ours --memory dcgan`, `python -m bench.torch_worker --memory dcgan`)
    with glibc told to return large blocks to the OS at once (MALLOC_MMAP_THRESHOLD_ and
    MALLOC_TRIM_THRESHOLD_ at 128 KiB, both sides), so that the resident set follows live
    memory.  After set-up and one warm-up step, the kernel's RSS high-water mark is reset
    (/proc/self/clear_refs) and one more step runs: the number is high-water RSS minus the
    RSS before that step — the transient memory of a step (activations, gradients,
    workspaces), not the parameters and optimizer state both sides already hold.  RSS counts
    what NumPy, Numba and PyTorch's allocators really take from the OS, which tracemalloc
    (NumPy only) and torch.profiler (torch only) cannot do for both; tracemalloc's figure for
    tinygan is printed beside it for information (it misses Numba-internal allocations).

Output: a Markdown table on stdout, the JSON report in runs/bench/latest.json under the current
folder (`--out`; with machine info, per-workload samples and ratios) and the same table beside it
as .md.  bench/results/ holds the committed reports; only an explicit --out writes there.
Flags: --quick (batch 4, 2 samples: a smoke test), --no-torch, --only kernels|layers|steps,
--out FILE, --device cpu|cuda (PyTorch+cuDNN in the worker, CuPy arrays on our side),
--batch N, --threads N (PyTorch threads), --no-memory, --quiet.
"""


def main(argv=None) -> int:
    """Run the benchmarks with command-line arguments `argv`; returns the exit code."""
    from .run import main as _main       # lazy: the torch worker imports this package too
    return _main(argv)
