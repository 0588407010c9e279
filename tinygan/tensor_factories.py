"""Ways to make a Tensor: `tensor`, `zeros`, `ones`, `full`, `randn`, `rand`, `*_like`, `arange`."""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor, _is_array


def _shape(shape) -> tuple:
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def tensor(data, requires_grad: bool = False, dtype=None, device=None) -> Tensor:
    """A new leaf Tensor from an array, a list or a number (data is copied).

    A float ndarray keeps its dtype (float64 stays float64), an integer/bool ndarray keeps its
    own; Python numbers and lists become float32 unless `dtype` says otherwise.
    """
    if isinstance(data, Tensor):
        data = data.data
    if _is_array(data):
        src_device = backend.device_of(data)
        dt = data.dtype if dtype is None else backend.resolve_dtype(dtype)
        arr = backend.to_device(data, device or src_device).astype(dt, copy=True)
    else:
        dt = backend.resolve_dtype(dtype)
        arr = backend.xp_for(device or "cpu").asarray(np.asarray(data, dtype=dt))
    return Tensor(arr, requires_grad=requires_grad)


def _filled(fill, shape, dtype, device, requires_grad):
    xp = backend.xp_for(device)
    arr = xp.full(_shape(shape), fill, dtype=backend.resolve_dtype(dtype))
    return Tensor(arr, requires_grad=requires_grad)


def zeros(*shape, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _filled(0, shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _filled(1, shape, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _filled(fill_value, (shape,) if isinstance(shape, int) else shape, dtype, device,
                   requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def randn(*shape, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Standard normal samples from the library's seeded generator (see `manual_seed`)."""
    dt = backend.resolve_dtype(dtype)
    arr = backend.get_rng(device).standard_normal(_shape(shape), dtype=dt)
    return Tensor(arr, requires_grad=requires_grad)


def rand(*shape, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Uniform [0, 1) samples from the library's seeded generator."""
    dt = backend.resolve_dtype(dtype)
    arr = backend.get_rng(device).random(_shape(shape), dtype=dt)
    return Tensor(arr, requires_grad=requires_grad)


def arange(*args, dtype=None, device="cpu") -> Tensor:
    xp = backend.xp_for(device)
    return Tensor(xp.arange(*args, dtype=None if dtype is None else backend.resolve_dtype(dtype)))


def full_like(t: Tensor, value: float) -> Tensor:
    """A constant tensor of t's shape, dtype and device (no grad)."""
    xp = backend.get_array_module(t.data)
    return Tensor(xp.full(t.shape, value, dtype=t.dtype))
