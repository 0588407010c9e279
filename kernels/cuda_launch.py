"""Launching a numba.cuda kernel on CuPy arrays without Numba's per-call dispatch.

`kernel[blocks, threads, stream](*args)` is the readable way (TINYGAN_CUDA_LAUNCH=numba).
Per call, Numba's dispatcher then types every argument, looks the compiled overload up, wraps
every CuPy array as a Numba device array (through the CUDA array interface), builds a launch
configuration and a cuda.core stream object, and flattens the arrays into the kernel's
parameters.  A DCGAN step makes ~110 launches with ~400 arrays, and on a GPU the step is
bound by such host-side work, not by the device.

`DirectLauncher` does only what changes between calls: it keys the compiled kernel by the
arguments' dtypes, ranks and layouts (a dict lookup), and writes each CuPy array straight
into the parameter list in the layout Numba compiles kernels for: an array argument is
(meminfo, parent, nitems, itemsize, data, shape..., strides...), the first two unused (0).
Scalars go through the kernel's own marshalling.  Compilation and the launch itself are
Numba's (`dispatcher.compile`, cuda.core's `launch`), so the kernels are the same machine
code either way.  It cuts the host time of a small op several-fold, and halves a batch-64
DCGAN step on an H200 (the figures: docs/gpu.md); every GPU test passes either way.

It leans on numba-cuda internals (written against 0.30: `numba.cuda.dispatcher`'s `launch`,
`LaunchConfig`, `types`, `numpy_support`, `driver._to_core_stream`); `DirectLauncher()` raises
if they are not there, and kernels/cuda.py then keeps the dispatcher.
"""
from __future__ import annotations

import numpy as np


class DirectLauncher:
    def __init__(self):
        from numba.cuda import dispatcher as nd
        self._launch = nd.launch
        self._config = nd.LaunchConfig
        self._types = nd.types
        self._from_dtype = nd.numpy_support.from_dtype
        self._to_core_stream = nd.driver._to_core_stream
        self._cooperative = ("is_cooperative" if getattr(nd, "CUDA_CORE_GE_1_0", True)
                             else "cooperative_launch")
        self._kernels: dict = {}            # (dispatcher, argument keys) -> compiled kernel
        self._configs: dict = {}            # (blocks, threads) -> LaunchConfig
        self._streams: dict = {}            # Numba stream -> cuda.core stream

    # -- typing: what Numba's typeof would say, from a cheap key --------------------------------
    @staticmethod
    def _key(a):
        if hasattr(a, "__cuda_array_interface__"):
            return (a.dtype.char, a.ndim, _layout(a))
        return type(a)

    def _numba_type(self, a):
        t = self._types
        if hasattr(a, "__cuda_array_interface__"):
            return t.Array(self._from_dtype(a.dtype), a.ndim, _layout(a))
        if isinstance(a, (bool, np.bool_)):
            return t.boolean
        if isinstance(a, int):
            return t.int64
        if isinstance(a, np.generic):
            return self._from_dtype(a.dtype)
        raise TypeError(f"DirectLauncher: no kernel argument type for {type(a).__name__}")

    def compiled(self, dispatcher, args):
        """The compiled kernel for these arguments, and their Numba types."""
        key = (id(dispatcher), tuple(self._key(a) for a in args))   # kernels live for the process
        hit = self._kernels.get(key)
        if hit is None:
            argtypes = tuple(self._numba_type(a) for a in args)
            kernel = dispatcher.compile(argtypes)
            hit = (kernel, argtypes, kernel._codelibrary.get_cufunc().kernel)
            self._kernels[key] = hit
        return hit

    def parameters(self, kernel, argtypes, args, stream) -> list:
        """The flat parameter list of one launch (see the module docstring)."""
        params: list = []
        for ty, a in zip(argtypes, args):
            if isinstance(ty, self._types.Array):
                params += (0, 0, a.size, a.itemsize, a.data.ptr)
                params += a.shape
                params += _strides(a, ty.layout)
            else:
                kernel._prepare_args(ty, a, stream, [], params)
        return params

    def launch(self, dispatcher, blocks: int, threads: int, stream, args) -> None:
        kernel, argtypes, cu_kernel = self.compiled(dispatcher, args)
        core_stream = self._streams.get(stream)
        if core_stream is None:
            core_stream = self._streams[stream] = self._to_core_stream(stream)
        config = self._configs.get((blocks, threads))
        if config is None:
            config = self._configs[(blocks, threads)] = self._config(
                grid=(blocks, 1, 1), block=(threads, 1, 1), shmem_size=0,
                **{self._cooperative: False})
        self._launch(core_stream, config, cu_kernel,
                     *self.parameters(kernel, argtypes, args, core_stream))


def _layout(a) -> str:
    """Numba's layout letter for a device array: 'C' or 'F' when contiguous that way (C first),
    'A' otherwise, and 'A' for a broadcast array (a 0 stride), whose strides a C or F kernel
    would hard-code wrongly."""
    if 0 in a.strides and a.size:
        return "A"
    if a.flags.c_contiguous:
        return "C"
    if a.flags.f_contiguous:
        return "F"
    return "A"


def _strides(a, layout: str) -> tuple:
    """The strides, in bytes, that Numba passes: the array's own for layout 'A', and for 'C'/'F'
    the canonical ones of its shape (a contiguous array's strides along a length-1 axis can be
    anything; Numba's C and F kernels assume the canonical value)."""
    if layout == "A":
        return tuple(a.strides)
    out, step = [0] * a.ndim, a.itemsize
    axes = range(a.ndim - 1, -1, -1) if layout == "C" else range(a.ndim)
    for i in axes:
        out[i] = step
        step *= a.shape[i]
    return tuple(out)
