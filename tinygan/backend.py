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


def device_object(array) -> device:
    """The `device` an array lives on (what `Tensor.device` returns)."""
    return _DEVICE_OBJECTS[device_of(array)]


def xp_for(device: str):
    """The array module that holds arrays for `device` (a string or a `device`)."""
    if check_device(device) == "cuda":
        cp = _detect_cupy()
        if cp is None:
            raise RuntimeError("device 'cuda' requested but CUDA is not available "
                               "(CuPy missing, or no working GPU/driver)")
        return cp
    return np


class device(str):
    """`tinygan.device("cpu")`, `device("cuda")`, `device("cuda:0")`, `device("cuda", 0)`: torch's
    `torch.device`, so that ported code runs unchanged.

    It *is* the string "cpu" or "cuda" (a str subclass): everything that accepts a device
    string accepts it, and `device("cuda") == "cuda"`.  `.type` is that string and `.index`
    the GPU number; tinygan drives one GPU, so the only index accepted is 0.
    """

    def __new__(cls, type, index=None):
        if isinstance(type, device):
            if index is not None:
                raise ValueError(f"device({type!r}, {index!r}): the index is already given")
            return type
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string such as 'cpu' or 'cuda', got "
                            f"{type.__class__.__name__}")
        name, _, num = type.partition(":")
        if num:
            if index is not None:
                raise ValueError(f"device({type!r}, {index!r}): the index is given twice")
            if not num.isdigit():
                raise ValueError(f"device: invalid device string {type!r}")
            index = int(num)
        if name not in DEVICES:
            raise ValueError(f"unknown device {type!r}: expected one of {DEVICES}")
        if index is not None and int(index) != 0:
            raise ValueError(f"device {type!r} with index {index!r}: tinygan drives one device "
                             f"of each type, so the only index is 0 ('cuda:0')")
        self = super().__new__(cls, name)
        self.index = None if index is None else int(index)
        return self

    @property
    def type(self) -> str:
        return str.__str__(self)

    def __str__(self):
        return self.type

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"

    def __reduce__(self):                       # pickles/copies as device(type, index)
        return (device, (self.type, self.index))


_DEVICE_OBJECTS = {name: device(name) for name in DEVICES}


def check_device(dev) -> str:
    """The canonical device name ("cpu" or "cuda") for a device string or `device` object."""
    if isinstance(dev, str) and dev in DEVICES:
        return str.__str__(dev)
    return device(dev).type


def to_device(array, device: str):
    """Copy `array` to `device` (no copy when it is already there)."""
    xp = xp_for(device)
    if check_device(device) == "cpu":
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


def to_arguments(device=None, dtype=None):
    """(device name or None, NumPy dtype or None) from the arguments of torch's `.to()`:
    `to(device)`, `to(dtype)` (a dtype in the device's place) and `to(device, dtype)`."""
    if device is not None:
        try:
            device = check_device(device)
        except (TypeError, ValueError) as not_a_device:
            if dtype is not None:
                raise
            try:
                device, dtype = None, resolve_dtype(device)
            except TypeError:
                raise not_a_device from None      # neither a device nor a dtype
    return device, None if dtype is None else resolve_dtype(dtype)


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
    device = check_device(device)
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
