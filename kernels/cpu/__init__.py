"""Fast CPU kernels: Numba loops for the gathers, scatters and elementwise passes; a BLAS for
every matrix product (`blas.matmul`: MKL when the optional `mkl` package is installed, else
NumPy's `np.matmul`).

Same names, signatures and results as `reference.py` (tested against it); registered with
`tinygan.kernels.register(name, "cpu", fn)` at import.  What makes them faster (the
measurements: docs/performance.md):

- **One big GEMM per convolution.**  The im2col columns are laid out channel-major,
  col[(c, j, i), (n, p, q)], so conv2d is ONE product of W (OC, C·KH·KW) and col over the
  whole batch, instead of N thin per-sample products; the weight gradient is gy · colᵀ with
  the batch folded into the contraction.  The price is one transpose of the output (or of
  gy / x), which a parallel copy does in a fraction of the GEMM's time.  The transposed
  convolution's columns are batch-innermost instead, col[(o, j, i), (h, w, n)], so that its
  scatter vectorises over the batch.
- **Winograd for the stride-2 4×4 layers** (winograd.py): conv2d, its weight gradient and the
  transposed convolution (conv2d's adjoint) with kernel 4, stride 2, padding 1 (the DCGAN's)
  and C ≥ 16 channels on the image side run as 9 GEMMs with 0.5625× the FLOPs, between
  transforms that only add and subtract.
- **im2col / col2im as parallel gathers.**  Each channel (or a chunk of the batch of one channel)
  is owned by one thread, so col2im adds into its planes without races and in the
  reference's order (bit-identical).  The public batch-major im2col/col2im reuse the same
  channel-major kernels plus one transpose, so one compiled kernel per dtype serves all.
- **No page faults for the multi-MB temporaries** (columns, GEMM results, transposes):
  glibc is told to keep freed memory (see below), so a fresh array reuses warm pages; where
  that cannot be set, a buffer pool (`_scratch`) keeps one buffer per slot instead.  Pool
  memory never leaves a kernel: every array a kernel returns is freshly allocated.
- **Fused passes** for batch norm (statistics, apply, backward) and the leaky ReLU, and one
  loop per optimizer update instead of ~10 NumPy temporaries.
- **A threading layer that shares the cores with the BLAS**: beside OpenBLAS, `workqueue`
  (Numba's OpenMP layer leaves its workers spinning after a parallel region, and they steal
  the second core from OpenBLAS); beside MKL, `omp` on the same GNU OpenMP pool as MKL's
  products (see blas.py).
- **Serial twins for small arrays.**  Handing a loop to the worker threads costs tens of µs,
  far more while OpenBLAS's threads still spin after a GEMM; below `PARALLEL_MIN` elements
  (the MLP's batch-norm layers, biases, most optimizer updates) the same loop runs
  single-threaded in the caller.
- **malloc keeps freed memory** (`keep_freed_memory`, at import): glibc otherwise maps every
  array over 128 KiB afresh and unmaps it on free, so each new activation or gradient pays the
  page faults again, a large part of a small MLP `gan` step.

Every kernel accepts float32 and float64 and any strides (inputs are made C-contiguous first,
a no-op for the usual case); each Numba kernel is compiled for those two dtypes only, to keep
the compile time that CI pays small (`cache=True` keeps it on disk after the first run).
Anything else (mixed dtypes, other float types) falls back to the reference kernel.

The package's modules follow reference.py's sections: `runtime` (threading layer, malloc,
buffer pool, serial twins, the `unfit` test), `gathers` (im2col / col2im and the layout
copies), `conv` (matmul and the convolution family), `batch_norm`, `elementwise` (leaky ReLU
and the optimizer updates) and `pairwise` (minibatch discrimination's L1 distances).  Every
name of theirs is also a name of this package (`cpu.conv2d`, `cpu.TABLE_ROW`,
`cpu._im2col_kernel`), and setting one here (`cpu.PARALLEL_MIN = 0`, `monkeypatch.setattr(cpu,
...)`, a timing wrapper around `cpu._swap01`) sets it in each module that reads it.

Each public kernel carries a `route` (its arguments -> (plan, why)), the very function it
branches on; `tinygan.kernels.explain` reports it.
"""
from __future__ import annotations

import sys
import types

from .. import register
# runtime first: it sets Numba's threading layer before any parallel kernel compiles.
from . import runtime  # noqa: I001
from . import batch_norm, conv, elementwise, gathers, pairwise

MODULES = (runtime, gathers, conv, batch_norm, elementwise, pairwise)


def _own_names(module):
    """The names `module` defines (functions, Numba kernels, constants), not the ones it
    imports from NumPy, Numba or the parent package."""
    for name, value in vars(module).items():
        if (name.startswith("__") or isinstance(value, types.ModuleType)
                or type(value).__module__ == "__future__"):
            continue
        if callable(value) and getattr(value, "__module__", module.__name__) != module.__name__:
            continue
        yield name, value


# name -> the modules that hold it as a global (where it is defined, and where it is imported)
_HOLDERS: dict[str, list] = {}
for _module in MODULES:
    for _name, _value in _own_names(_module):
        globals().setdefault(_name, _value)
        _HOLDERS.setdefault(_name, [])
for _name, _holders in _HOLDERS.items():
    _holders.extend(m for m in MODULES if _name in vars(m))


class _Package(types.ModuleType):
    """Setting a name on the package sets it in every module that reads it (tests flip
    TABLE_ROW or MALLOC_TUNED, scripts/step_breakdown.py wraps kernels in timers)."""

    def __setattr__(self, name, value):
        for module in _HOLDERS.get(name, ()):
            setattr(module, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

KERNELS = ("matmul", "im2col", "col2im", "conv2d", "conv_transpose2d", "conv2d_grad_weight",
           "batch_norm_stats", "batch_norm_apply", "batch_norm_backward",
           "batch_norm_act_apply", "batch_norm_act_backward",
           "leaky_relu", "leaky_relu_grad", "sgd_update", "adam_update", "rmsprop_update",
           "pairwise_l1", "pairwise_l1_grad", "pairwise_l1_grad_adjoint")
for _name in KERNELS:
    # A public kernel names the package as its module (what `kernels.get(...).__module__`
    # and pickle see), wherever in it it is defined.
    globals()[_name].__module__ = __name__
    register(_name, "cpu", globals()[_name])
