"""Raw array kernels (no autograd), installed as `tinygan.kernels`.

Three implementations share one signature per kernel name:

- `reference` — readable NumPy/CuPy, the teaching version and the oracle for the others;
- `cpu`       — Numba (`@njit(parallel=True, cache=True)`), for NumPy arrays;
- `cuda`      — numba.cuda / CuPy kernels, for CuPy arrays.

`get(name, xp)` picks one by the array module and the mode. The mode comes from the
`TINYGAN_KERNELS` environment variable (`fast`, the default, or `reference`) and can be
changed at run time with `set_mode` (the benchmarks and the tests do).  A name with no fast
version falls back to the reference one, so `reference` mode always runs everything.

What serves a call is decided in four places: the mode; whether the fast module loaded (one
that fails to import or to pass its smoke test warns once, naming the error, and the
reference kernels serve); the fast kernel's own route (dtype, empty arrays, Winograd or
im2col, a 1x1 input); and, for the products, the BLAS (blas.py).  `explain(name, *args)`
says which implementation a call would get and why; `TINYGAN_KERNEL_LOG=1` (or
`set_log(True)`) logs each distinct (kernel, shapes, dtypes, implementation) once, on the
`logging` logger "tinygan.kernels" (to stderr unless the application configured logging).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import sys
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
# The plan a fast kernel's route names when it hands a call to the reference kernel.
REFERENCE = "reference"


def routed(route, products=False):
    """Attach `route` (the kernel's arguments -> (plan, why)) to a fast kernel for `explain`;
    the kernel calls the same `route` to choose its plan, so the two cannot disagree.
    `products`: its plans compute matrix products, so the BLAS in use is part of the answer."""
    def attach(kernel):
        kernel.route = route
        kernel.products = products
        return kernel
    return attach


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


def _select(name: str, xp):
    if get_mode() == "fast":
        backend = "cpu" if xp is np else "cuda"
        _load_fast(backend)
        fn = _fast[backend].get(name)
        if fn is not None:
            return fn
    return getattr(reference, name)


def get(name: str, xp=np):
    """The kernel `name` for arrays of module `xp`, honouring the current mode."""
    fn = _select(name, xp)
    if _log_on:
        return _logging(name, fn)
    return fn


# ---------------------------------------------------------------------------------------
# Which implementation serves a call, and why

@dataclasses.dataclass(frozen=True)
class Explanation:
    """`implementation`: "cpu.conv2d -> winograd F(2x2,2x2)", "reference.conv2d", ...;
    `reasons`: why, one decision per line, in the order they were taken."""
    kernel: str
    implementation: str
    reasons: tuple

    def __str__(self):
        return "\n".join([f"{self.kernel}: {self.implementation}"]
                         + [f"  - {r}" for r in self.reasons])


def _array_module(args):
    from tinygan.backend import get_array_module
    for a in args:
        if hasattr(a, "dtype") and hasattr(a, "shape"):
            return get_array_module(a)
    return np


def explain(name: str, *args, **kwargs) -> Explanation:
    """Which implementation `get(name, xp)(*args, **kwargs)` would run, and why.  The
    registry's choice is `get`'s own; a fast kernel's plan comes from its `route`, the
    function the kernel itself branches on.  Nothing is computed."""
    if not hasattr(reference, name):
        raise ValueError(f"no kernel named {name!r}")
    return _explain(name, _select(name, _array_module(args)), args, kwargs)


def _explain(name, fn, args, kwargs) -> Explanation:
    xp = _array_module(args)
    backend = "cpu" if xp is np else "cuda"
    if fn is getattr(reference, name):
        if get_mode() == "reference":
            why = "the mode is 'reference' (TINYGAN_KERNELS or set_mode)"
        elif fallback_reason(backend):
            why = f"the fast {backend} kernels cannot run here: {fallback_reason(backend)}"
        else:
            why = f"kernel {name!r} has no fast {backend} version"
        return Explanation(name, f"reference.{name}", (why,))
    reasons = [f"the mode is 'fast' and the fast {backend} kernels load"]
    route = getattr(fn, "route", None)
    if route is None:
        return Explanation(name, f"{backend}.{name}", tuple(reasons))
    plan, why = route(*args, **kwargs)
    reasons.append(why)
    if plan == REFERENCE:
        return Explanation(name, f"reference.{name} ({backend}.{name} hands it over)",
                           tuple(reasons))
    if getattr(fn, "products", False):
        from . import blas
        reasons.append(f"products by {blas.describe()}")
    return Explanation(name, f"{backend}.{name} -> {plan}", tuple(reasons))


# TINYGAN_KERNEL_LOG: one log line per distinct (kernel, shapes and dtypes, implementation).
# Off, `get` pays one test of `_log_on`; on, every call is explained before it runs.
_logger = logging.getLogger("tinygan.kernels")
_log_on = False
_logged: set = set()
_wrappers: dict = {}


def set_log(on: bool) -> None:
    """Log (True) or stop logging which implementation serves each distinct call."""
    global _log_on
    _log_on = bool(on)
    if _log_on and not _logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        _logger.addHandler(handler)
    if _log_on and _logger.getEffectiveLevel() > logging.INFO:
        _logger.setLevel(logging.INFO)


def _describe_args(args) -> str:
    return ", ".join(f"{a.dtype}{tuple(a.shape)}" for a in args if hasattr(a, "shape")
                     and hasattr(a, "dtype"))


def _logging(name, fn):
    key = (name, fn)
    wrapper = _wrappers.get(key)
    if wrapper is None:
        def wrapper(*args, **kwargs):
            impl = _explain(name, fn, args, kwargs).implementation
            shapes = _describe_args(args)
            if (name, shapes, impl) not in _logged:
                _logged.add((name, shapes, impl))
                _logger.info("%s(%s) -> %s", name, shapes, impl)
            return fn(*args, **kwargs)
        _wrappers[key] = wrapper
    return wrapper


if os.environ.get("TINYGAN_KERNEL_LOG", "") not in ("", "0"):
    set_log(True)


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
