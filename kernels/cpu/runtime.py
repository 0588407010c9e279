"""What every CPU kernel shares: the threading layer, malloc's settings, the buffer pool,
the serial twins of the parallel loops, and the test that decides whether the compiled loops
apply to a call at all (`unfit`), with which the kernels' routes (see `kernels.routed`) tell
`kernels.explain` which path a call takes and why.
"""
from __future__ import annotations

import ctypes
import os
import threading
import types

import numba

from .. import REFERENCE, blas

# Must happen before the first parallel kernel runs (this module is the package's first
# import); an explicit NUMBA_THREADING_LAYER wins.  `workqueue` beside OpenBLAS, `omp` on the
# GNU OpenMP pool that MKL's products run on (blas.py).
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = blas.numba_threading_layer()

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Below this many elements an elementwise / batch-norm / optimizer loop runs serially.
PARALLEL_MIN = 1 << 17

# Fastmath flag for the loops that only *sum* (batch-norm statistics and gradient sums): a
# running `s += x[i]` is one long chain of dependent float64 adds (4 cycles each); letting
# LLVM reassociate it splits the chain into vector lanes summed at the end.  On the DCGAN's
# batch-norm shapes the statistics took 0.26-0.64x and the gradient sums 0.49-0.69x of the
# strict loops' time, with the same float32 results.  Only 'reassoc': no assumptions about
# NaN or infinity, and the elementwise loops keep strict IEEE order (bit-identical to the
# reference).
REASSOC = {"reassoc"}


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve arrays up to 32 MiB (its limit) from the heap and to keep
    freed memory there for the next array, instead of mmap-ing every array over 128 KiB
    (then page-faulting each 4 KiB page, slow on virtual machines) and unmapping it on
    free — what a caching allocator (PyTorch's, CuPy's) does for a framework.  The price is
    that the process's RSS stays at its high-water mark.  Set TINYGAN_MALLOC=system to keep
    glibc's defaults; a libc without `mallopt` is left alone.  True when applied."""
    if os.environ.get("TINYGAN_MALLOC", "").lower() == "system":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
                    and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


MALLOC_TUNED = keep_freed_memory()


def _serial_twin(kernel):
    """The same loop compiled without threads (prange runs as range), cached on disk under
    its own name, for calls on fewer than PARALLEL_MIN elements.  It keeps the kernel's
    fastmath flags, so that both sum in the same order."""
    f = kernel.py_func
    twin = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial",
                              f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + "_serial"
    return njit(cache=True, fastmath=kernel.targetoptions.get("fastmath", False))(twin)


def _pick(kernel, twin, size):
    return kernel if size >= PARALLEL_MIN else twin


# A kernel's route: (plan, why) for the arguments of a call, computed by the function the
# kernel itself branches on, so that `kernels.explain` and the kernel cannot disagree.
# REFERENCE (the package's) hands the call to the reference kernel; the other plans are
# the kernel's own.
LOOPS = "numba loops"
LOOPS_WHY = "float32/float64 arrays of one dtype, none empty: the compiled loops apply"


def unfit(*arrays) -> str | None:
    """Why the compiled loops do not apply to these arrays, or None when they do: every array
    must have one and the same dtype, float32 or float64, and none may be empty.  An empty
    array (a batch of 0, a 0x0 map, no channels) takes the reference, whose NumPy reductions
    define what it gives; the loops would divide by its zero size or fail to reshape it."""
    dt = arrays[0].dtype
    if dt not in _DTYPES:
        return f"dtype {dt}: the loops are compiled for float32 and float64 only"
    for a in arrays[1:]:
        if a.dtype != dt:
            return f"mixed dtypes {dt} and {a.dtype}"
    for a in arrays:
        if not a.size:
            return f"an empty array of shape {tuple(a.shape)}"
    return None


def loops_unless(why):
    """The route of a kernel whose only choice is its loops or, for a reason `why`, the
    reference."""
    return (REFERENCE, why) if why else (LOOPS, LOOPS_WHY)


def loops_route(*arrays):
    return loops_unless(unfit(*arrays))


def _shapes_differ(**named):
    """A reason when the named arrays (or shape tuples) do not all have one shape, else None."""
    shapes = [tuple(getattr(v, "shape", v)) for v in named.values()]
    if all(s == shapes[0] for s in shapes[1:]):
        return None
    return "shapes differ: " + ", ".join(f"{k} {s}" for k, s in zip(named, shapes))


# ---------------------------------------------------------------------------------------
# Buffer pool: one growing flat buffer per (slot, dtype), per thread.

class _Pool(threading.local):
    def __init__(self):
        self.buffers = {}


_pool = _Pool()


def _scratch(slot: str, shape, dtype):
    """A scratch array of `shape` that stays valid until the next request for the same slot.

    Only for temporaries a kernel consumes before it returns; never hand one to the caller.
    When malloc keeps freed memory (MALLOC_TUNED) the heap already is the pool, so this is a
    plain fresh array that lives only as long as the kernel needs it — the pool's buffers,
    held for the whole run, would add to the peak memory of a DCGAN step.
    """
    if MALLOC_TUNED:
        return np.empty(tuple(int(s) for s in shape), dtype=dtype)
    size = 1
    for s in shape:
        size *= int(s)
    key = (slot, np.dtype(dtype))
    buf = _pool.buffers.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1), dtype=dtype)
        _pool.buffers[key] = buf
    return buf[:size].reshape(shape)


def clear_pool() -> None:
    """Release the scratch buffers of the calling thread."""
    _pool.buffers.clear()
