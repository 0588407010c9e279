"""kernels/cuda_launch.py, the direct launcher, on what a CPU can check: the layout letter and
strides Numba would give an array, and the flat parameter list of a launch (array fields in
Numba's order, scalars through the kernel's own marshalling).  Launching needs a GPU: the
`gpu` tests (TINYGAN_CUDA_LAUNCH=direct in scripts/gpu_check.sh) run every kernel through it."""
import numpy as np
import pytest

from tinygan.kernels import cuda_launch as CL


def numba_layout(a):
    """Numba's rule (numba-cuda's DeviceNDArray._numba_type_), written out independently."""
    broadcast = 0 in a.strides and a.size != 0
    if a.flags.c_contiguous and not broadcast:
        return "C"
    if a.flags.f_contiguous and not broadcast:
        return "F"
    return "A"


ARRAYS = {
    "C 2-D": np.zeros((3, 4), np.float32),
    "F 2-D": np.asfortranarray(np.zeros((3, 4))),
    "strided": np.zeros((3, 8), np.float32)[:, ::2],
    "1-D": np.zeros(5),
    "scalar-like": np.zeros((1, 1), np.float32),
    "length-1 axis, odd stride": np.zeros((4, 6), np.float32)[1:2, :],
    "broadcast": np.broadcast_to(np.zeros(3, np.float32), (4, 3)),
    "transposed": np.zeros((2, 3, 4), np.float32).transpose(2, 0, 1),
}


@pytest.mark.parametrize("name", ARRAYS)
def test_layout_letter_is_numbas(name):
    a = ARRAYS[name]
    assert CL._layout(a) == numba_layout(a)


@pytest.mark.parametrize("name", ARRAYS)
def test_strides_address_the_same_elements(name):
    """Every element's byte offset under the strides passed is its offset in NumPy's view: the
    strides describe the memory truly, even where they differ from NumPy's own numbers."""
    a = ARRAYS[name]
    strides = CL._strides(a, CL._layout(a))
    for idx in np.ndindex(a.shape):
        assert (sum(i * s for i, s in zip(idx, strides))
                == sum(i * s for i, s in zip(idx, a.strides))), (idx, strides, a.strides)


def test_contiguous_strides_are_canonical():
    a = ARRAYS["length-1 axis, odd stride"]             # C-contiguous; NumPy's row stride 24
    assert CL._layout(a) == "C"
    assert CL._strides(a, "C") == (24, 4)
    assert CL._strides(np.asfortranarray(np.zeros((3, 4))), "F") == (8, 24)


def test_parameters_are_numbas_flattened_arrays_then_scalars():
    from numba import types

    class FakeKernel:
        def _prepare_args(self, ty, val, stream, retr, params):
            params.append(("scalar", str(ty), val))

    launcher = object.__new__(CL.DirectLauncher)
    launcher._types = types
    x = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]          # strided, 'A'
    y = np.zeros(5)                                                     # 'C'
    argtypes = (types.Array(types.float32, 2, "A"), types.Array(types.float64, 1, "C"),
                types.float32, types.int64, types.boolean)

    class CuPyLike:                                 # the fields the launcher reads of a CuPy array
        def __init__(self, a):
            self.a, self.size, self.itemsize = a, a.size, a.itemsize
            self.shape, self.strides, self.flags, self.ndim = a.shape, a.strides, a.flags, a.ndim
            self.data = type("Ptr", (), {"ptr": a.__array_interface__["data"][0]})()

    params = launcher.parameters(FakeKernel(), argtypes,
                                 (CuPyLike(x), CuPyLike(y), np.float32(0.5), 7, True), None)
    px, py = x.__array_interface__["data"][0], y.__array_interface__["data"][0]
    assert params == [0, 0, 6, 4, px, 3, 2, 16, 8,
                      0, 0, 5, 8, py, 5, 8,
                      ("scalar", "float32", np.float32(0.5)), ("scalar", "int64", 7),
                      ("scalar", "bool", True)]


def test_argument_keys_tell_apart_what_numba_types_apart():
    key = CL.DirectLauncher._key
    c, a = np.zeros((3, 4), np.float32), np.zeros((3, 8), np.float32)[:, ::2]

    class CAI:                                       # a NumPy array seen as a device array
        def __init__(self, arr):
            self.__cuda_array_interface__ = {}
            self.dtype, self.ndim, self.strides, self.size, self.flags = (
                arr.dtype, arr.ndim, arr.strides, arr.size, arr.flags)

    keys = {key(CAI(c)), key(CAI(a)), key(CAI(c.astype(np.float64))), key(CAI(c[0])),
            key(True), key(3), key(np.float32(1)), key(np.float64(1))}
    assert len(keys) == 8


@pytest.mark.parametrize("choice, launcher_works, want", [
    (None, True, "direct"),                 # the default
    ("direct", True, "direct"),
    ("numba", True, None),                  # Numba's own dispatcher, asked for
    ("direct", False, None),                # this numba-cuda lacks what it needs: dispatcher
    ("bogus", True, "direct"),              # said so, then the default
])
def test_the_launcher_choice(monkeypatch, choice, launcher_works, want):
    import os
    import warnings
    from tinygan.kernels import cuda as K
    if K.SIMULATOR:
        pytest.skip("the simulator always launches through Numba")

    class Fake:
        def __init__(self):
            if not launcher_works:
                raise AttributeError("module 'numba.cuda.dispatcher' has no attribute 'launch'")

    monkeypatch.setattr(CL, "DirectLauncher", Fake)
    monkeypatch.setattr(K.cuda, "is_available", lambda: True)
    if choice is None:
        monkeypatch.delenv("TINYGAN_CUDA_LAUNCH", raising=False)
    else:
        monkeypatch.setenv("TINYGAN_CUDA_LAUNCH", choice)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = K._direct_launcher()
    assert (type(got).__name__ == "Fake") if want == "direct" else got is None
    said = " ".join(str(w.message) for w in caught)
    assert ("bogus" in said) == (choice == "bogus")
    assert ("not available" in said) == (not launcher_works)
    assert os.environ.get("TINYGAN_CUDA_LAUNCH") == choice
