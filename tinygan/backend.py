"""NumPy/CuPy dispatch, devices, dtypes and the library's random number generators.

Everything that differs between CPU and GPU goes through this module: an op asks
`get_array_module(x)` for `xp` (numpy or cupy) and writes `xp.exp(x)`, never `np.exp(x)`.

CuPy is optional. It can import fine on a machine with no GPU and fail only at the first
real use, so `cuda_available()` tries one allocation, once, and remembers the answer.
"""
from __future__ import annotations

import numpy as np

DEVICES = ("cpu", "cuda")
DEFAULT_DTYPE = np.float32

_cupy = None          # the cupy module once detection succeeded
_cuda_checked = False
_rngs: dict[str, object] = {}
_seed: int | None = None


def _detect_cupy():
    global _cupy, _cuda_checked
    if not _cuda_checked:
        _cuda_checked = True
        try:
            import cupy
            cupy.cuda.runtime.getDeviceCount()
            cupy.zeros(1).sum().item()      # a real kernel launch: proves driver + device work
            _cupy = cupy
        except Exception:                   # no cupy, no driver, no device, broken install
            _cupy = None
    return _cupy


def cuda_available() -> bool:
    """True when CuPy is installed *and* a CUDA device actually works."""
    return _detect_cupy() is not None


def available_devices() -> list[str]:
    return ["cpu", "cuda"] if cuda_available() else ["cpu"]


def get_array_module(x):
    """`numpy` for host arrays (and anything that is not a CuPy array), `cupy` otherwise."""
    if type(x).__module__.startswith("cupy"):
        return _detect_cupy()
    return np


def device_of(array) -> str:
    return "cuda" if get_array_module(array) is not np else "cpu"


def xp_for(device: str):
    """The array module that holds arrays for `device`."""
    check_device(device)
    if device == "cuda":
        cp = _detect_cupy()
        if cp is None:
            raise RuntimeError("device 'cuda' requested but CUDA is not available "
                               "(CuPy missing, or no working GPU/driver)")
        return cp
    return np


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return device


def to_device(array, device: str):
    """Copy `array` to `device` (no copy when it is already there)."""
    xp = xp_for(device)
    if device == "cpu":
        return array.get() if get_array_module(array) is not np else np.asarray(array)
    return xp.asarray(array)


def as_numpy(array) -> np.ndarray:
    return to_device(array, "cpu")


def fetch_scalars(values: dict) -> dict:
    """`values` with every one-element array (NumPy or CuPy, e.g. a training step's losses)
    replaced by a Python float, copied to the host in ONE transfer per array module.

    Each `float(gpu_array)` or `.item()` makes the host wait until the GPU has finished
    everything queued before it, so a step that logged four losses one by one stalled four
    times.  Here the device scalars are stacked on the device and copied once.  Python
    numbers pass through unchanged.  On NumPy the floats are exactly those `.item()` gives.
    """
    out = dict(values)
    groups: dict = {}                       # array module -> the keys of its arrays
    for k, v in values.items():
        xp = get_array_module(v)
        if xp is not np or isinstance(v, (np.ndarray, np.generic)):
            groups.setdefault(xp, []).append(k)
    for xp, keys in groups.items():
        stacked = xp.stack([xp.asarray(values[k]).reshape(()) for k in keys])
        out.update(zip(keys, as_numpy(stacked).tolist()))
    return out


def resolve_dtype(dtype):
    """Accept a NumPy dtype, a dtype name ("float32") or None (the default float32)."""
    if dtype is None:
        return np.dtype(DEFAULT_DTYPE)
    try:
        return np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"unknown dtype {dtype!r}") from e


# ---------------------------------------------------------------------------------------
# Random numbers: one Generator per device, all reseeded by `manual_seed`.

def manual_seed(seed: int) -> None:
    """Seed every random generator the library uses (CPU, and GPU when present)."""
    global _seed
    _seed = int(seed)
    _rngs.clear()


def get_rng(device: str = "cpu"):
    """The generator for `device` (numpy.random.Generator or cupy.random.Generator)."""
    rng = _rngs.get(device)
    if rng is None:
        xp = xp_for(device)
        # Distinct, reproducible streams per device from one user seed.
        seed = None if _seed is None else np.random.SeedSequence([_seed, DEVICES.index(device)])
        if xp is np:
            rng = np.random.default_rng(seed)
        else:
            s = None if seed is None else int(seed.generate_state(1)[0])
            rng = xp.random.default_rng(s)
        _rngs[device] = rng
    return rng


def rng_state() -> dict:
    """A JSON-able snapshot of the CPU generator, for exact resume of training runs."""
    rng = get_rng("cpu")
    return rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    rng = get_rng("cpu")
    rng.bit_generator.state = state
