"""The one matrix product of the CPU path: `matmul(a, b, out=None)`, as `np.matmul` behaves.

Every GEMM the fast CPU kernels run (the convolutions' products) and the `matmul` kernel
(`linear` and the MatMul op) comes through here, so which BLAS computes them is decided in
one place:

- **numpy**: `np.matmul`, i.e. the BLAS the NumPy wheel ships (OpenBLAS).
- **mkl**: Intel MKL's `cblas_sgemm` / `cblas_dgemm`, called through ctypes, when the optional
  `mkl` package is installed (`pip install -e ".[mkl]"`, which puts `libmkl_rt` in the
  environment's `lib/`).  On the Intel Xeon (AVX-512) CI machine the DCGAN's GEMMs ran faster
  in MKL than in OpenBLAS (its SkylakeX kernel), the MLP's small ones most (docs/performance.md);
  PyTorch's CPU wheel computes its products with MKL too, so with it the comparison against
  PyTorch measures what tinygan itself does around the products.

`TINYGAN_BLAS` picks one: `auto` (the default: MKL if its library loads, else NumPy), `mkl`
(an error if it does not load) or `numpy`; `set_backend` changes it at run time.

Only 2-D float32 / float64 products of equal dtypes go to MKL.  An operand is handed over where
it lies, as row-major with a leading dimension (rows contiguous) or as the transpose of one
(columns contiguous: a Fortran-ordered array, `w.T`, `col.T`), so no operand is copied.
Anything else — batched (N-D) products, other or mixed dtypes, empty or oddly strided arrays,
an `out` that is not a fresh C-ordered buffer of the result's shape — is `np.matmul`'s: the
same result up to floating-point rounding, with NumPy's own errors for bad shapes.

**Threads: one OpenMP runtime for MKL and the Numba kernels.**  MKL threads its products with
OpenMP.  Its worker threads keep spinning for a while after each product (that is what makes
the next small product fast: with Intel OpenMP's `KMP_BLOCKTIME=0` the MLP `gan` step's
products got slower).  If the Numba kernels that run between the products have
a pool of their own (the `workqueue` layer), the two pools fight over the 2 cores: the DCGAN
step's im2col and col2im then run slower.  So when MKL is chosen and GNU OpenMP
(`libgomp`) loads, MKL runs on its GNU OpenMP layer and the CPU kernels take Numba's `omp` layer,
which is built on the same `libgomp`: one pool of threads serves both (DCGAN and MLP `gan`
steps measured against NumPy + workqueue: docs/performance.md).  Without `libgomp`, MKL takes
Intel OpenMP and Numba keeps `workqueue`.  `MKL_THREADING_LAYER`, `MKL_NUM_THREADS` and
`NUMBA_THREADING_LAYER`, when set, win.  The layers are set when the kernels are first
imported: `set_backend` later switches only where the products go.
The price of the shared pool: a product left to NumPy (OpenBLAS has threads of its own) right
after a Numba kernel waits behind the spinning pool, several times its own time (the bench's
reference column meets it).  The fast path sends every product here, so only the reference
kernels and this module's fallbacks meet it.
"""
from __future__ import annotations

import ctypes
import glob
import os
import re
import sys

import numpy as np

BACKENDS = ("auto", "mkl", "numpy")

# CBLAS enums (cblas.h)
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_MKL_THREADING_INTEL, _MKL_THREADING_GNU = 0, 3
_INT_MAX = 2 ** 31 - 1               # MKL_INT of the LP64 interface that libmkl_rt defaults to


class _MKL:
    """libmkl_rt's two GEMMs, with their argument types declared once."""

    def __init__(self, path: str):
        lib = ctypes.CDLL(path)
        if "MKL_DISABLE_FAST_MM" not in os.environ:
            # MKL's own allocator keeps its packing buffers for the process's life, which
            # raises a DCGAN step's peak memory well above PyTorch's.  Off, the buffers come
            # from malloc, which keeps freed memory here (cpu.keep_freed_memory), and the DCGAN
            # step is no slower.  Must come before MKL's first allocation.
            lib.mkl_disable_fast_mm()
        self.gnu_openmp = False
        if "MKL_THREADING_LAYER" not in os.environ:
            self.gnu_openmp = _gnu_openmp_loads()
            layer = _MKL_THREADING_GNU if self.gnu_openmp else _MKL_THREADING_INTEL
            lib.MKL_Set_Threading_Layer(ctypes.c_int(layer))
        i, p = ctypes.c_int, ctypes.c_void_p
        self.gemm = {}
        for dtype, name, real in ((np.float32, "cblas_sgemm", ctypes.c_float),
                                  (np.float64, "cblas_dgemm", ctypes.c_double)):
            f = getattr(lib, name)
            f.argtypes = [i, i, i, i, i, i, real, p, i, p, i, real, p, i]
            f.restype = None
            self.gemm[np.dtype(dtype)] = f
        buf = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buf, ctypes.c_int(len(buf)))
        text = buf.value.decode(errors="replace")
        version = re.search(r"Version ([\w.]+)", text)
        self.version = version.group(1) if version else text.strip()
        self.path = path


def _gnu_openmp_loads() -> bool:
    """GNU OpenMP's runtime is on this system (MKL's GNU layer and Numba's `omp` layer both
    need it; loaded first here, the two then find this one copy)."""
    try:
        ctypes.CDLL("libgomp.so.1", mode=ctypes.RTLD_GLOBAL)
        return True
    except OSError:
        return False


def _find_mkl() -> str | None:
    """libmkl_rt's path in this environment (where the `mkl` wheel puts it), if it is there
    with the threading library and Intel OpenMP beside it — MKL loads those lazily, at the
    first product, and exits the process if one is missing, so check before choosing it."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        libdir = os.path.join(prefix, "lib")
        rt = sorted(glob.glob(os.path.join(libdir, "libmkl_rt.so*")))
        if (rt and glob.glob(os.path.join(libdir, "libmkl_intel_thread.so*"))
                and glob.glob(os.path.join(libdir, "libmkl_core.so*"))
                and glob.glob(os.path.join(libdir, "libiomp5.so*"))):
            return rt[-1]
    return None


_mkl: _MKL | None = None
_mkl_error: str | None = None
_active = "numpy"


def _load_mkl() -> _MKL | None:
    global _mkl, _mkl_error
    if _mkl is None and _mkl_error is None:
        path = _find_mkl()
        if path is None:
            _mkl_error = ("the mkl package is not installed in this environment "
                          "(pip install -e \".[mkl]\")")
        else:
            try:
                _mkl = _MKL(path)
            except (OSError, AttributeError) as e:
                _mkl_error = f"{path} did not load: {e}"
    return _mkl


def set_backend(name: str) -> str:
    """Use `name` ("auto", "mkl" or "numpy") for every later product; returns the one in use."""
    global _active
    if name not in BACKENDS:
        raise ValueError(f"TINYGAN_BLAS must be one of {BACKENDS}, got {name!r}")
    if name == "numpy":
        _active = "numpy"
    elif _load_mkl() is not None:
        _active = "mkl"
    elif name == "mkl":
        raise RuntimeError(f"TINYGAN_BLAS=mkl, but MKL is not available: {_mkl_error}")
    else:
        _active = "numpy"
    return _active


def backend() -> str:
    """"mkl" or "numpy": which BLAS computes the products now."""
    return _active


def numba_threading_layer() -> str:
    """The Numba threading layer that suits the BLAS chosen: `omp` (GNU OpenMP, the pool MKL's
    GNU layer runs on) with MKL on GNU OpenMP; `workqueue` otherwise — Numba's OpenMP workers
    spin after a parallel region and steal the second core from OpenBLAS."""
    return "omp" if _active == "mkl" and _mkl.gnu_openmp else "workqueue"


def describe() -> str:
    """One line for reports: the BLAS in use and its version."""
    if _active == "mkl":
        where = "GNU OpenMP" if _mkl.gnu_openmp else "its OpenMP layer"
        return f"MKL {_mkl.version} (cblas_?gemm, threads on {where})"
    return "NumPy's np.matmul (the BLAS its wheel ships)"


def _operand(a):
    """(transpose flag, leading dimension) under which BLAS reads 2-D `a` where it lies, or
    None.  Rows contiguous: a is row-major with rows `ld` elements apart.  Columns contiguous:
    a is the transpose of a row-major (cols, rows) array."""
    rows, cols = a.shape
    s0, s1 = a.strides
    it = a.itemsize
    if s0 % it or s1 % it:
        return None
    if s1 == it or cols == 1:
        ld = s0 // it if rows > 1 else cols
        if ld >= cols:
            return _NO_TRANS, ld
    if s0 == it or rows == 1:
        ld = s1 // it if cols > 1 else rows
        if ld >= rows:
            return _TRANS, ld
    return None


def route(a, b, out=None):
    """Why np.matmul computes a @ b rather than MKL (None: MKL does).  `matmul` branches on
    this same test, and `kernels.explain` reports it."""
    if _active != "mkl":
        return "NumPy's BLAS is the one in use" + (f" (MKL: {_mkl_error})" if _mkl_error else "")
    why = _mkl_refuses(a, b, out)
    return why if isinstance(why, str) else None


def _mkl_refuses(a, b, out):
    """A reason string when MKL cannot take the product as it lies, else its cblas arguments
    (m, n, k, (transpose, ld) of a, of b)."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        return "an operand is not a NumPy array"
    if a.ndim != 2 or b.ndim != 2:
        return "a batched (N-D) product"
    if a.dtype != b.dtype or a.dtype not in _mkl.gemm:
        return f"dtypes {a.dtype} and {b.dtype} (MKL takes float32 or float64, both alike)"
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2 or not (m and n and k) or max(m, n, k) > _INT_MAX:
        return "mismatched or empty shapes (NumPy's error or its empty result)"
    opa, opb = _operand(a), _operand(b)
    if opa is None or opb is None or max(opa[1], opb[1]) > _INT_MAX \
            or not (a.flags.aligned and b.flags.aligned):
        return "an operand neither row- nor column-contiguous, or unaligned"
    if out is not None and (type(out) is not np.ndarray or out.shape != (m, n)
                            or out.dtype != a.dtype or not out.flags.c_contiguous
                            or not out.flags.aligned or np.may_share_memory(out, a)
                            or np.may_share_memory(out, b)):
        return "an `out` that is not a fresh C-ordered buffer (NumPy buffers overlaps and casts)"
    return m, n, k, opa, opb


def matmul(a, b, out=None):
    """a @ b (into `out` when given), as `np.matmul`; see the module docstring for which BLAS."""
    if _active != "mkl":
        return np.matmul(a, b, out=out)
    plan = _mkl_refuses(a, b, out)
    if isinstance(plan, str):
        return np.matmul(a, b, out=out)
    m, n, k, opa, opb = plan
    if out is None:
        out = np.empty((m, n), dtype=a.dtype)
    _mkl.gemm[a.dtype](_ROW_MAJOR, opa[0], opb[0], m, n, k, 1.0, a.ctypes.data, opa[1],
                       b.ctypes.data, opb[1], 0.0, out.ctypes.data, n)
    return out


set_backend(os.environ.get("TINYGAN_BLAS", "auto").lower())
