"""A fake GPU, to count device->host synchronisations on a machine without one.

On a GPU, `float(a)`, `int(a)`, `bool(a)`, `a.item()`, `a.tolist()`, `f"{a:.3f}"` of a CuPy
array `a` each make the host wait until the device has finished all the work queued before,
then copy the value back.  One of them inside a training step stalls every step.

`DeviceArray` is a NumPy array that tinygan's backend takes for a CuPy array (the backend
recognises CuPy arrays by their type's module name), and on which every one of those implicit
trips to the host raises `HostSync`.  `.get()` — CuPy's explicit copy to the host, which
`backend.as_numpy` calls — works and is counted in `DeviceArray.transfers`.  `fake_cupy` is
NumPy seen through a wrapper that hands back every array as a DeviceArray (and wraps the
random generators likewise), so code that asks `get_array_module(x)` for `xp` computes on
DeviceArrays throughout and takes its device branches (`xp is not np`).

`install(monkeypatch)` makes it the backend's CuPy, `device="cuda"` then means the fake GPU,
and selects the reference kernels (the CUDA ones need a real GPU).  What it cannot see: a
NumPy scalar read out by indexing one element (`a[0]`, a sync on CuPy too), and the host
copies NumPy makes internally (`np.asarray(a)`, which real CuPy refuses).
"""
from __future__ import annotations

import numbers
import types

import numpy as np

from tinygan import backend, kernels


class HostSync(AssertionError):
    """A device array was read by the host implicitly (a synchronisation on a real GPU)."""


class DeviceArray(np.ndarray):
    __module__ = "cupy_fake"        # what makes backend.get_array_module call it a device array
    transfers = 0                   # .get() calls since the last install()

    def _sync(self, *args, **kwargs):
        raise HostSync(f"implicit device->host transfer of a {self.dtype} array of shape "
                       f"{self.shape} (on a GPU, the host would wait for the device here)")

    __float__ = __int__ = __index__ = __bool__ = __complex__ = __format__ = _sync
    item = tolist = _sync

    def get(self):
        """The explicit copy to the host (cupy.ndarray.get), counted."""
        DeviceArray.transfers += 1
        return np.array(self.view(np.ndarray), copy=True)


def _wrap(v):
    if isinstance(v, np.ndarray):
        return v if isinstance(v, DeviceArray) else v.view(DeviceArray)
    if isinstance(v, tuple):
        return tuple(_wrap(e) for e in v)
    if v is None or isinstance(v, (type, np.dtype, np.generic, numbers.Number, str)):
        return v
    if isinstance(v, (types.ModuleType, np.random.Generator)) or callable(v):
        return _Wrapped(v)
    return v


class _Wrapped:
    """A module, function, ufunc or generator of NumPy whose array results are DeviceArrays."""

    def __init__(self, target):
        self._target = target

    def __getattr__(self, name):
        return _wrap(getattr(self._target, name))

    def __call__(self, *args, **kwargs):
        return _wrap(self._target(*args, **kwargs))


fake_cupy = _Wrapped(np)


def install(monkeypatch) -> None:
    """Make `fake_cupy` the backend's CuPy for the rest of the test (undone by monkeypatch)."""
    monkeypatch.setattr(backend, "_cupy", fake_cupy)
    monkeypatch.setattr(backend, "_cuda_checked", True)
    monkeypatch.setattr(backend, "_rngs", {})
    monkeypatch.setattr(kernels, "_mode", "reference")
    monkeypatch.setattr(DeviceArray, "transfers", 0)
