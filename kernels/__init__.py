"""Raw array kernels (no autograd), installed as `tinygan.kernels`.

Three implementations share one signature per kernel name:

- `reference` — readable NumPy/CuPy, the teaching version and the oracle for the others;
- `cpu`       — Numba (`@njit(parallel=True, cache=True)`), for NumPy arrays;
- `cuda`      — numba.cuda / CuPy kernels, for CuPy arrays.

`get(name, xp)` picks one by the array module and the mode. The mode comes from the
`TINYGAN_KERNELS` environment variable (`fast`, the default, or `reference`) and can be
changed at run time with `set_mode` (the benchmarks and the tests do).  A name with no fast
version falls back to the reference one, so `reference` mode always runs everything.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import threading
import warnings

import numpy as np

from . import reference

MODES = ("reference", "fast")
_FAST_MODULES = {"cpu": "tinygan.kernels.cpu", "cuda": "tinygan.kernels.cuda"}
_fast: dict[str, dict] = {"cpu": {}, "cuda": {}}
_loaded: dict[str, bool] = {}
_fallback_reason: dict[str, str] = {}
_mode = os.environ.get("TINYGAN_KERNELS", "fast")


def set_mode(mode: str) -> None:
    """Select `"reference"` or `"fast"` kernels for every later call."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"TINYGAN_KERNELS must be one of {MODES}, got {mode!r}")
    _mode = mode


def get_mode() -> str:
    if _mode not in MODES:
        raise ValueError(f"TINYGAN_KERNELS must be one of {MODES}, got {_mode!r}")
    return _mode


def register(name: str, backend: str, fn) -> None:
    """Register `fn` as the fast `backend` ("cpu" or "cuda") version of kernel `name`."""
    if not hasattr(reference, name):
        raise ValueError(f"kernel {name!r} has no reference implementation to be checked against")
    _fast[backend][name] = fn


def _load_fast(backend: str) -> None:
    """Import the fast module of `backend` once, and prove it can run before trusting it.

    A fast module may import fine and still be unusable: on a GPU machine numba.cuda can lack
    libNVVM, or emit PTX newer than the driver accepts, and such errors would otherwise surface
    at a kernel's first launch, inside a user's op.  So a module may define `smoke_test()`,
    which launches a tiny kernel and checks its result; if the import or the smoke test fails,
    the backend serves the reference kernels (plain NumPy/CuPy, which need no compiler) and
    says why, once."""
    if backend in _loaded:
        return
    _loaded[backend] = True
    try:
        module = importlib.import_module(_FAST_MODULES[backend])
        smoke_test = getattr(module, "smoke_test", None)
        if smoke_test is not None:
            smoke_test()
    except Exception as e:       # ImportError, a compiler or driver error, a wrong result
        _fast[backend].clear()
        _fallback_reason[backend] = f"{type(e).__name__}: {e}"
        warnings.warn(f"tinygan.kernels: the fast {backend} kernels cannot run here, so the "
                      f"reference kernels serve instead ({_fallback_reason[backend]})",
                      RuntimeWarning, stacklevel=3)


def fallback_reason(backend: str) -> str | None:
    """Why the fast `backend` kernels were set aside (None: they load, or were never asked for)."""
    return _fallback_reason.get(backend)


def get(name: str, xp=np):
    """The kernel `name` for arrays of module `xp`, honouring the current mode."""
    if get_mode() == "fast":
        backend = "cpu" if xp is np else "cuda"
        _load_fast(backend)
        fn = _fast[backend].get(name)
        if fn is not None:
            return fn
    return getattr(reference, name)


# ---------------------------------------------------------------------------------------
# Sharing work between the kernel calls of one backward

class _SharedMemo(threading.local):
    memo = None          # a dict while a `sharing_inputs` block is open in this thread


_shared = _SharedMemo()


@contextlib.contextmanager
def sharing_inputs():
    """Inside this block a fast kernel may reuse what an earlier call of the block derived
    from the same input array — e.g. the im2col columns of gy, which both backward products
    of a transposed convolution (conv2d(gy, W) and the weight gradient) start with.

    The caller promises not to modify, inside the block, any array it passes to a kernel.
    Entries hold a reference to their input, so an input's memory cannot be reused by a new
    array while the block is open.  Blocks nest; the memo is dropped when the outermost one
    ends.  Reference kernels ignore it (teaching mode recomputes everything)."""
    outer = _shared.memo
    if outer is None:
        _shared.memo = {}
    try:
        yield
    finally:
        if outer is None:
            _shared.memo = None


def shared(kind: str, array, params, compute):
    """`compute()`, or its result from earlier in the open `sharing_inputs` block for the
    same `kind`, the same array object and the same `params`."""
    memo = _shared.memo
    if memo is None:
        return compute()
    key = (kind, id(array), params)
    hit = memo.get(key)
    if hit is not None and hit[0] is array:
        return hit[1]
    result = compute()
    memo[key] = (array, result)
    return result
