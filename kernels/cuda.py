"""GPU kernels written with `numba.cuda`, for CuPy arrays; GEMMs go to cuBLAS via `xp.matmul`.

Same names, signatures and semantics as `reference.py` (read that file first: it is the
definition; this one is the fast version).  Every kernel is registered as the "cuda" backend
of `tinygan.kernels`, which imports this module lazily the first time a CuPy array asks for a
kernel.

Two ways to run the same code
-----------------------------
- On a GPU the wrappers receive CuPy arrays, allocate their outputs with CuPy (`xp = cupy`)
  and hand the arrays to the Numba-compiled kernels without a copy, on CuPy's current stream
  so that each launch is ordered with the surrounding CuPy work.  The launch itself goes
  through kernels/cuda_launch.py, which writes the arrays straight into the kernel's
  parameters (TINYGAN_CUDA_LAUNCH=numba: through Numba's dispatcher and the CUDA array
  interface, the readable way, at ~5x the host time per op).
- Under Numba's CUDA simulator (`NUMBA_ENABLE_CUDASIM=1`, set before numba is imported) the
  very same kernel functions run in Python on NumPy arrays (`xp = numpy`), so that CI, which
  has no GPU, checks every kernel against the reference on tiny shapes.

Importing this module needs Numba only: kernels compile at their first launch, so a machine
without CUDA imports it fine (it simply never gets CuPy arrays to launch on).  On a machine
with a GPU but no libNVVM for Numba to compile with, the import raises ImportError, and the
registry then hands out the reference kernels (plain CuPy) instead; so it does when the
`smoke_test` launch at the bottom of this file fails.

Notation as in reference.py: x (N, C, H, W), col (N, C, KH, KW, OH, OW), stride (SH, SW),
padding (PH, PW), L = OH*OW.

How threads map to work
-----------------------
- Gathers (im2col, col2im): one thread per *output* element, found by decomposing the flat
  index of the element, last axis fastest, so that neighbouring threads write neighbouring
  addresses (coalesced stores).  col2im is the adjoint of a scatter, but written as a gather —
  each image pixel sums the few column entries that were read from it — so no two threads
  write the same address: no atomics, and the sum is in a fixed order (deterministic).
- Grid-stride loops: a launch has at most `_MAX_BLOCKS` blocks and each thread strides over
  the elements by the total number of threads, so any size works with one launch shape.
- Batch-norm reductions: one block per channel; its threads stride over the channel's M
  values, then combine their partial sums in shared memory (a tree, log2(threads) steps).
  The variance is a second pass over the centred values, as in the reference, never
  E[x²] - E[x]², which cancels catastrophically when |mean| >> std.
- Everything else (BN apply and backward, leaky ReLU, optimizer updates) is one fused
  elementwise pass: one read and one write per element instead of a temporary per operation.

Scalars are passed already cast to the arrays' dtype, and the kernels contain no float
literals: a Python float inside a float32 kernel would silently promote the arithmetic to
float64 (slow on most GPUs, and different from the reference's rounding).
"""
from __future__ import annotations

import importlib
import math
import os

import numpy as np

try:
    import numba
    from numba import cuda
    from numba.core import config as _numba_config
except Exception as e:                 # a broken Numba/CUDA install: the registry falls back
    raise ImportError(f"tinygan.kernels.cuda needs numba.cuda: {e}") from e

from tinygan import backend
from tinygan.backend import get_array_module

from . import REFERENCE, reference, register, routed
from .reference import conv_output_size, conv_transpose_output_size

SIMULATOR = bool(_numba_config.ENABLE_CUDASIM)

if not SIMULATOR and cuda.is_available():
    # A GPU is here, so CuPy arrays will come: make sure Numba can also compile for it.  The
    # ImportError makes the registry serve the reference kernels (plain CuPy, no compiler)
    # and say why; `smoke_test` below catches what only a launch shows.
    from numba.cuda.cudadrv import nvvm as _nvvm
    if not _nvvm.is_available():
        raise ImportError("numba.cuda finds no libNVVM to compile with (pip install the "
                          "cuda12/cuda13 extra, or point CUDA_HOME at a CUDA toolkit)")


def _direct_launcher():
    """How kernels launch: the direct launcher (kernels/cuda_launch.py, the default), or with
    TINYGAN_CUDA_LAUNCH=numba Numba's dispatcher, `kernel[blocks, threads, stream](*args)` —
    the same kernels, several times the host time per small op (docs/gpu.md).  None
    means the dispatcher."""
    import warnings
    choice = os.environ.get("TINYGAN_CUDA_LAUNCH", "direct")
    if choice not in ("direct", "numba"):
        warnings.warn(f"TINYGAN_CUDA_LAUNCH must be 'direct' or 'numba', got {choice!r}: "
                      "using 'direct'", RuntimeWarning)
    if SIMULATOR or choice == "numba" or not cuda.is_available():
        return None                                  # (no GPU: nothing will be launched)
    try:
        from .cuda_launch import DirectLauncher
        return DirectLauncher()
    except Exception as e:
        warnings.warn(f"the direct CUDA launcher is not available with this numba-cuda ({e}); "
                      "launching through Numba's dispatcher", RuntimeWarning)
        return None


_direct = _direct_launcher()

# The grid-stride kernels are launched with as many blocks as the data needs, up to a cap: a
# small tensor gets a small grid on purpose, which Numba would warn about at every launch.
for _config in ("numba.cuda.core.config", "numba.core.config"):
    try:
        importlib.import_module(_config).CUDA_LOW_OCCUPANCY_WARNINGS = 0
    except ImportError:
        pass

# Threads per block.  A real GPU gets 256 (8 warps), a good default for memory-bound kernels.
# The simulator runs every thread as a Python thread, so it gets few, small blocks: the
# grid-stride loops then make each thread visit many elements, which tests them too.  Both
# sizes are powers of two, which the shared-memory tree reduction needs.
_THREADS = 16 if SIMULATOR else 256
_MAX_BLOCKS = 4 if SIMULATOR else 4096       # grid-stride loops cover the rest


# ---------------------------------------------------------------------------------------
# Host-side helpers

def _xp(a):
    """The array module of `a`: numpy (simulator) or cupy (GPU)."""
    return get_array_module(a)


if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as _FakeCUDAArray

    def _dev(a):
        """The simulator's device-array wrapper around a NumPy array: no copy, any strides, so
        the kernels write straight into the caller's array or view, as on a GPU."""
        return _FakeCUDAArray(a)

    def _stream(xp):
        return 0
else:
    _streams: dict[tuple[int, int], object] = {}

    def _dev(a):
        """A Numba view of a CuPy array (CUDA array interface; no copy, strides kept).

        sync=False: Numba would otherwise synchronise the array's stream at every launch; we
        launch on that same stream (`_stream`), so the ordering is already right.  An empty
        array has no memory behind it (a null pointer, which Numba rejects) and no kernel is
        launched over it (`_launch`), so it is passed as None."""
        if a.size == 0:
            return None
        if _direct is not None:             # it reads the CuPy array's fields itself
            return a
        return cuda.as_cuda_array(a, sync=False)

    def _stream(xp):
        """CuPy's current stream as a Numba stream, memoized by (device, handle).

        Handle 0 is CuPy's null stream, which is CUDA's *legacy* default stream (it orders
        itself with every blocking stream); Numba's `default_stream()` can be the per-thread
        one instead, depending on NUMBA_CUDA_PER_THREAD_DEFAULT_STREAM, so name it exactly.
        A handle is only unique on its device, hence the device in the key."""
        key = (xp.cuda.Device().id, xp.cuda.get_current_stream().ptr)
        s = _streams.get(key)
        if s is None:
            s = cuda.legacy_default_stream() if key[1] == 0 else cuda.external_stream(key[1])
            _streams[key] = s
        return s


def _run(kernel, blocks: int, xp, args) -> None:
    """Launch `kernel` with `blocks` blocks of _THREADS threads on CuPy's current stream:
    through the direct launcher, or Numba's dispatcher (TINYGAN_CUDA_LAUNCH=numba)."""
    if _direct is not None:
        _direct.launch(kernel, blocks, _THREADS, _stream(xp), args)
    else:
        kernel[blocks, _THREADS, _stream(xp)](*args)


def _launch(kernel, n: int, xp, *args) -> None:
    """Launch a grid-stride `kernel` over n elements (nothing to do when n == 0)."""
    if n == 0:
        return
    _run(kernel, min((n + _THREADS - 1) // _THREADS, _MAX_BLOCKS), xp, args)


def _flat(a):
    """A 1-D view of a C-contiguous array (for the elementwise kernels)."""
    return _dev(a.reshape(-1))


def _contiguous(*arrays) -> bool:
    return all(a is None or a.flags.c_contiguous for a in arrays)


# The routes of the kernels that hand some calls to the reference (kernels.explain).
KERNEL = "cuda kernel"


def _slope_route(slope):
    if 0 <= slope <= 1:
        return KERNEL, "slope in [0, 1]: the fused kernel applies"
    return REFERENCE, f"slope {slope} outside [0, 1]"


def _inplace_route(*state):
    if _contiguous(*state):
        return KERNEL, "C-contiguous parameter and state: updated in place on flat views"
    return REFERENCE, "an array that is not C-contiguous (no flat view to update in place)"


def _scalars(dtype, *values):
    """Python numbers cast once to the arrays' dtype — as NumPy/CuPy do with a weak Python
    scalar in `array * 0.9`, so that the rounding matches the reference."""
    t = np.dtype(dtype).type
    return tuple(t(v) for v in values)


# ---------------------------------------------------------------------------------------
# im2col / col2im — gathers, one thread per output element

@cuda.jit
def _im2col_kernel(x, col, SH, SW, PH, PW, zero):
    """col[n, c, j, i, p, q] = xpad[n, c, p*SH + j, q*SW + i], zero in the padding.

    One thread per col element: its flat index, last axis (q) fastest, is decomposed into
    (n, c, j, i, p, q); consecutive threads write consecutive q.  `col` may be a strided view
    (the conv wrappers pass a view of a (C, KH, KW, N, OH, OW) buffer), so the layout of the
    buffer is the caller's choice while the kernel stays one simple gather.
    """
    N, C, KH, KW, OH, OW = col.shape
    H, W = x.shape[2], x.shape[3]
    for idx in range(cuda.grid(1), N * C * KH * KW * OH * OW, cuda.gridsize(1)):
        q = idx % OW
        r = idx // OW
        p = r % OH
        r //= OH
        i = r % KW
        r //= KW
        j = r % KH
        r //= KH
        c = r % C
        n = r // C
        h = p * SH - PH + j                 # the padded row p*SH + j, in unpadded coordinates
        w = q * SW - PW + i
        if 0 <= h < H and 0 <= w < W:
            col[n, c, j, i, p, q] = x[n, c, h, w]
        else:
            col[n, c, j, i, p, q] = zero


@cuda.jit
def _col2im_kernel(col, img, SH, SW, PH, PW, zero):
    """img[n, c, h, w] = sum of col[n, c, j, i, p, q] over p*SH + j = h + PH, q*SW + i = w + PW.

    One thread per image pixel.  Instead of each column entry adding itself to its pixel (a
    scatter, needing atomics where windows overlap), each pixel gathers its entries: in the
    row direction the offsets j that reach padded row h + PH are those with
    j ≡ h + PH (mod SH), i.e. j = (h+PH) % SH, + SH, + 2SH, ... each from window row
    p = (h + PH - j) / SH, kept when 0 <= p < OH; the same for the columns.  Only
    ceil(KH/SH)·ceil(KW/SW) terms per pixel, added in a fixed order.
    """
    N, C, H, W = img.shape
    KH, KW, OH, OW = col.shape[2], col.shape[3], col.shape[4], col.shape[5]
    for idx in range(cuda.grid(1), N * C * H * W, cuda.gridsize(1)):
        w = idx % W
        r = idx // W
        h = r % H
        r //= H
        c = r % C
        n = r // C
        acc = zero
        for j in range((h + PH) % SH, KH, SH):
            p = (h + PH - j) // SH          # exact: h + PH - j is a multiple of SH
            if 0 <= p < OH:
                for i in range((w + PW) % SW, KW, SW):
                    q = (w + PW - i) // SW
                    if 0 <= q < OW:
                        acc += col[n, c, j, i, p, q]
        img[n, c, h, w] = acc


def _im2col_into(x, col, stride, padding):
    """Fill `col` — any (N, C, KH, KW, OH, OW) array or view — with x's windows."""
    xp = _xp(x)
    (SH, SW), (PH, PW) = stride, padding
    _launch(_im2col_kernel, col.size, xp, _dev(x), _dev(col), SH, SW, PH, PW, *_scalars(x.dtype, 0))


def _col2im_into(col, img, stride, padding):
    xp = _xp(col)
    (SH, SW), (PH, PW) = stride, padding
    _launch(_col2im_kernel, img.size, xp, _dev(col), _dev(img), SH, SW, PH, PW,
            *_scalars(col.dtype, 0))


def im2col(x, KH, KW, stride, padding):
    """(N, C, H, W) -> (N, C, KH, KW, OH, OW): every KH×KW window of x as a column."""
    xp = _xp(x)
    N, C, H, W = x.shape
    OH = conv_output_size(H, KH, stride[0], padding[0])
    OW = conv_output_size(W, KW, stride[1], padding[1])
    col = xp.empty((N, C, KH, KW, OH, OW), dtype=x.dtype)
    _im2col_into(x, col, stride, padding)
    return col


def col2im(col, x_shape, stride, padding):
    """The adjoint of im2col: (N, C, KH, KW, OH, OW) -> x_shape, summing overlapping entries."""
    img = _xp(col).empty(tuple(x_shape), dtype=col.dtype)
    _col2im_into(col, img, stride, padding)
    return img


# ---------------------------------------------------------------------------------------
# The three convolution kernels: a gather + one cuBLAS GEMM each
#
# The column buffer is laid out (C, KH, KW, N, OH, OW) — batch inside — rather than
# im2col's (N, C, KH, KW, OH, OW): then every conv is ONE large GEMM whose long dimension is
# N·OH·OW, instead of N small batched GEMMs (a 4×4 layer of a DCGAN would give 64 GEMMs with
# 16 columns each; the generator's first layer, 1×1 input, 64 GEMMs with one column).  The
# gather kernels write/read this buffer through a transposed view, so they do not change.

def _batch_inner_view(buf):
    """(C, KH, KW, N, OH, OW) buffer -> its (N, C, KH, KW, OH, OW) view, for the gathers."""
    return buf.transpose(3, 0, 1, 2, 4, 5)


def _columns(x, KH, KW, stride, padding):
    """x's windows as a (C·KH·KW, N·OH·OW) matrix (batch-inner buffer), and (OH, OW)."""
    xp = _xp(x)
    N, C, H, W = x.shape
    OH = conv_output_size(H, KH, stride[0], padding[0])
    OW = conv_output_size(W, KW, stride[1], padding[1])
    buf = xp.empty((C, KH, KW, N, OH, OW), dtype=x.dtype)
    _im2col_into(x, _batch_inner_view(buf), stride, padding)
    return buf.reshape(C * KH * KW, N * OH * OW), (OH, OW)


def conv2d(x, w, stride=(1, 1), padding=(0, 0)):
    """x (N, C, H, W), w (OC, C, KH, KW) -> y (N, OC, OH, OW):  y = W (OC, CKK) @ cols (CKK, N·L)."""
    xp = _xp(x)
    N = x.shape[0]
    OC, _, KH, KW = w.shape
    cols, (OH, OW) = _columns(x, KH, KW, stride, padding)
    y = xp.matmul(w.reshape(OC, -1), cols)                      # (OC, N·OH·OW)
    return xp.ascontiguousarray(y.reshape(OC, N, OH, OW).transpose(1, 0, 2, 3))


def conv_transpose2d(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    """x (N, C_in, H, W), w (C_in, C_out, KH, KW) -> y (N, C_out, OH, OW).

    cols = Wᵀ (C_out·KH·KW, C_in) @ x (C_in, N·H·W): each input pixel's weighted copy of the
    kernel; then col2im (a gather) adds the overlapping copies into the output image.
    """
    xp = _xp(x)
    N, C_in, H, W = x.shape
    C_out, KH, KW = w.shape[1:]
    OH = conv_transpose_output_size(H, KH, stride[0], padding[0], output_padding[0])
    OW = conv_transpose_output_size(W, KW, stride[1], padding[1], output_padding[1])
    x2 = x.transpose(1, 0, 2, 3).reshape(C_in, N * H * W)      # a copy the size of x
    cols = xp.matmul(w.reshape(C_in, -1).T, x2)                 # (C_out·KH·KW, N·H·W)
    y = xp.empty((N, C_out, OH, OW), dtype=x.dtype)
    _col2im_into(_batch_inner_view(cols.reshape(C_out, KH, KW, N, H, W)), y, stride, padding)
    return y


def conv2d_grad_weight(x, gy, kernel_size, stride=(1, 1), padding=(0, 0)):
    """x (N, C, H, W), gy (N, OC, OH, OW) -> gw (OC, C, KH, KW):  gy (OC, N·L) @ colsᵀ (N·L, CKK)."""
    xp = _xp(x)
    KH, KW = kernel_size
    N, C = x.shape[:2]
    OC = gy.shape[1]
    OH = conv_output_size(x.shape[2], KH, stride[0], padding[0])
    OW = conv_output_size(x.shape[3], KW, stride[1], padding[1])
    if tuple(gy.shape) != (N, OC, OH, OW):
        raise ValueError(f"conv2d_grad_weight: gy {tuple(gy.shape)} does not match the "
                         f"{(OH, OW)} output of x {tuple(x.shape)}")
    cols, _ = _columns(x, KH, KW, stride, padding)
    gy2 = gy.transpose(1, 0, 2, 3).reshape(OC, -1)              # a copy the size of gy
    return xp.matmul(gy2, cols.T).reshape(OC, C, KH, KW)


# ---------------------------------------------------------------------------------------
# Batch norm: x viewed as (N, C, L), L = H·W (1 for (N, C) input); M = N·L values per channel

@cuda.jit(device=True)
def _block_sum(buf, v):
    """Sum of v over the block's threads (tree in shared memory `buf`); every thread gets it.

    Step k adds the upper half of the live entries onto the lower half: log2(T) steps, with a
    barrier after each so that no thread reads an entry before it is written.
    """
    t = cuda.threadIdx.x
    buf[t] = v
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if t < half:
            buf[t] += buf[t + half]
        cuda.syncthreads()
        half //= 2
    total = buf[0]
    cuda.syncthreads()          # everyone has read buf[0] before buf is reused
    return total


_bn_kernels: dict = {}


def _bn_reduction_kernels(dtype):
    """The two per-channel reduction kernels for `dtype`, compiled once and memoized.

    Shared memory arrays need their dtype and size at compile time, hence one pair per dtype.
    """
    if dtype in _bn_kernels:
        return _bn_kernels[dtype]
    nbt = numba.from_dtype(dtype)
    T = _THREADS
    block_sum = _block_sum

    @cuda.jit
    def stats(x, mean, var, m_count, zero):
        """Block c: mean[c], var[c] of channel c, two passes over its M = N·L values.

        Thread t takes values m = t, t + T, ... (m -> (n, l) = divmod(m, L)); for image input
        consecutive threads read consecutive l: coalesced.  Partial sums are in the data's
        dtype, combined by a tree: an error growing like log M, not M.
        """
        c = cuda.blockIdx.x
        t = cuda.threadIdx.x
        N, L = x.shape[0], x.shape[2]
        M = N * L
        buf = cuda.shared.array(T, nbt)
        s = zero
        for m in range(t, M, T):
            s += x[m // L, c, m % L]
        mu = block_sum(buf, s) / m_count
        s = zero
        for m in range(t, M, T):
            d = x[m // L, c, m % L] - mu
            s += d * d
        v = block_sum(buf, s) / m_count
        if t == 0:
            mean[c] = mu
            var[c] = v

    @cuda.jit
    def grad_sums(x, y, gy, masked, slope, mean, inv_std, gw, gb, zero):
        """Block c: gb[c] = sum g,  gw[c] = sum g * xhat over channel c (mapping as `stats`),
        g = gy — or, when `masked` (batch_norm_act_backward), the activation's input gradient
        gy (y > 0) / slope*gy (else), applied where gy is read instead of being written out."""
        c = cuda.blockIdx.x
        t = cuda.threadIdx.x
        N, L = x.shape[0], x.shape[2]
        M = N * L
        buf = cuda.shared.array(T, nbt)
        mu, istd = mean[c], inv_std[c]
        sb = zero
        sw = zero
        for m in range(t, M, T):
            n, l = m // L, m % L
            g = gy[n, c, l]
            if masked and y[n, c, l] <= 0:
                g = slope * g
            sb += g
            sw += g * ((x[n, c, l] - mu) * istd)
        b = block_sum(buf, sb)
        w = block_sum(buf, sw)
        if t == 0:
            gb[c] = b
            gw[c] = w

    _bn_kernels[dtype] = (stats, grad_sums)
    return stats, grad_sums


def _ncl(a):
    """(N, C) or (N, C, H, W) -> contiguous (N, C, L)."""
    a = _xp(a).ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _vec(v, x):
    """A (C,) parameter as a contiguous array of x's dtype and module."""
    return _xp(x).ascontiguousarray(v, dtype=x.dtype)


def batch_norm_stats(x):
    """Per-channel mean and biased variance of x (N, C) / (N, C, H, W): one block per channel."""
    xp = _xp(x)
    x3 = _ncl(x)
    C = x3.shape[1]
    mean = xp.empty(C, dtype=x.dtype)
    var = xp.empty(C, dtype=x.dtype)
    if C and x3.size:
        stats, _ = _bn_reduction_kernels(np.dtype(x.dtype))
        _run(stats, C, xp, (_dev(x3), _dev(mean), _dev(var), *_scalars(x.dtype, x3.size // C, 0)))
    return mean, var


# batch_norm_apply and batch_norm_act_apply (a leaky ReLU after it, slopes in [0, 1]) share
# one elementwise kernel: slope 1 is the plain affine map.  Likewise the backward kernels
# take a `masked` flag that applies the activation's gradient scale (read from the sign of
# y) as gy is read; the fused forms never store the normalised x or that scaled gradient.

@cuda.jit
def _bn_act_kernel(x, scale, shift, slope, y, C, L):
    """y = z if z > 0 else slope*z with z = x * scale[c] + shift[c] (slope 1: y = z); one
    thread per element, element idx of the (N, C, L) array in channel (idx // L) % C."""
    for idx in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (idx // L) % C
        z = x[idx] * scale[c] + shift[c]
        y[idx] = z if z > 0 else slope * z


@cuda.jit
def _bn_backward_kernel(x, y, gy, masked, slope, mean, inv_std, coef, gw, gb, m_count, gx, C, L):
    """gx = coef[c] * (M*g - gb[c] - xhat*gw[c]), xhat = (x - mean[c]) * inv_std[c],
    coef = weight * inv_std / M, g = gy (masked: slope*gy where y <= 0); one thread per element."""
    for idx in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (idx // L) % C
        g = gy[idx]
        if masked and y[idx] <= 0:
            g = slope * g
        xhat = (x[idx] - mean[c]) * inv_std[c]
        gx[idx] = coef[c] * (m_count * g - gb[c] - xhat * gw[c])


def _bn_apply(x, mean, inv_std, weight, bias, slope):
    """The per-channel affine x*scale + shift (scale, shift: (C,) vectors from the reference's
    formulas), then the leaky ReLU of `slope`, in one kernel."""
    xp = _xp(x)
    x3 = _ncl(x)
    C, L = x3.shape[1], x3.shape[2]
    scale = _vec(weight, x) * _vec(inv_std, x)
    shift = _vec(bias, x) - _vec(mean, x) * scale
    y = xp.empty(x3.shape, dtype=x.dtype)
    _launch(_bn_act_kernel, y.size, xp, _flat(x3), _dev(scale), _dev(shift),
            *_scalars(x.dtype, slope), _flat(y), C, L)
    return y.reshape(x.shape)


def _bn_backward(x, y, gy, mean, inv_std, weight, slope):
    """(gx, gw, gb): a per-channel reduction kernel for gb, gw, then one elementwise kernel for
    gx (see reference.batch_norm_backward); slope None: no activation (y unused)."""
    xp = _xp(x)
    masked = slope is not None
    x3, gy3 = _ncl(x), _ncl(gy)
    y3 = _ncl(y) if masked else x3                         # a placeholder, never read
    N, C, L = x3.shape
    M = N * L
    mean, inv_std = _vec(mean, x), _vec(inv_std, x)
    gw = xp.zeros(C, dtype=x.dtype)
    gb = xp.zeros(C, dtype=x.dtype)
    gx = xp.empty(x3.shape, dtype=x.dtype)
    if C and x3.size:
        slope_t, = _scalars(x.dtype, slope if masked else 0)
        _, grad_sums = _bn_reduction_kernels(np.dtype(x.dtype))
        _run(grad_sums, C, xp, (_dev(x3), _dev(y3), _dev(gy3), masked, slope_t, _dev(mean),
                                _dev(inv_std), _dev(gw), _dev(gb), *_scalars(x.dtype, 0)))
        coef = _vec(weight, x) * inv_std / M
        _launch(_bn_backward_kernel, gx.size, xp, _flat(x3), _flat(y3), _flat(gy3), masked, slope_t,
                _dev(mean), _dev(inv_std), _dev(coef), _dev(gw), _dev(gb), *_scalars(x.dtype, M),
                _flat(gx), C, L)
    return gx.reshape(x.shape), gw, gb


def batch_norm_apply(x, mean, inv_std, weight, bias):
    return _bn_apply(x, mean, inv_std, weight, bias, 1.0)


def batch_norm_backward(x, gy, mean, inv_std, weight):
    return _bn_backward(x, None, gy, mean, inv_std, weight, None)


def _batch_norm_act_apply_route(x, mean, inv_std, weight, bias, slope):
    return _slope_route(slope)


@routed(_batch_norm_act_apply_route)
def batch_norm_act_apply(x, mean, inv_std, weight, bias, slope):
    if _batch_norm_act_apply_route(x, mean, inv_std, weight, bias, slope)[0] == REFERENCE:
        return reference.batch_norm_act_apply(x, mean, inv_std, weight, bias, slope)
    return _bn_apply(x, mean, inv_std, weight, bias, slope)


def _batch_norm_act_backward_route(x, y, gy, mean, inv_std, weight, slope):
    return _slope_route(slope)


@routed(_batch_norm_act_backward_route)
def batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope):
    if _batch_norm_act_backward_route(x, y, gy, mean, inv_std, weight, slope)[0] == REFERENCE:
        return reference.batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope)
    return _bn_backward(x, y, gy, mean, inv_std, weight, slope)


# ---------------------------------------------------------------------------------------
# Leaky ReLU — one thread per element

@cuda.jit
def _leaky_relu_kernel(x, slope, y):
    """y = x if x > 0 else slope*x.  This is the reference's max(x, slope*x) (slope <= 1) and
    min(x, slope*x) (slope > 1) at once: whichever the slope, the larger/smaller of the two is
    x exactly when x > 0.  A select, not a branch that diverges."""
    for idx in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[idx]
        y[idx] = v if v > 0 else slope * v


@cuda.jit
def _leaky_relu_grad_kernel(y, gy, slope, gx):
    """gx = gy if y > 0 else slope*gy (y only gives the sign)."""
    for idx in range(cuda.grid(1), gy.size, cuda.gridsize(1)):
        g = gy[idx]
        gx[idx] = g if y[idx] > 0 else slope * g


def leaky_relu(x, slope):
    xp = _xp(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty_like(x)
    _launch(_leaky_relu_kernel, x.size, xp, _flat(x), *_scalars(x.dtype, slope), _flat(y))
    return y


def leaky_relu_grad(y, gy, slope):
    xp = _xp(gy)
    y, gy = xp.ascontiguousarray(y), xp.ascontiguousarray(gy)
    gx = xp.empty_like(gy)
    _launch(_leaky_relu_grad_kernel, gy.size, xp, _flat(y), _flat(gy), *_scalars(gy.dtype, slope),
            _flat(gx))
    return gx


# ---------------------------------------------------------------------------------------
# Optimizer updates — fused, in place, one thread per parameter element
#
# The state arrays are updated in place, so they must be C-contiguous to be seen as flat
# vectors; parameters always are, but a caller handing a strided view gets the reference
# kernel, which is correct for any layout.  Each kernel keeps the reference's (PyTorch's)
# order of operations; flags select the optional terms, with `p` passed as a harmless
# placeholder for an absent state array (Numba kernels take no None).

@cuda.jit
def _sgd_kernel(p, g, buf, lr, momentum, one_minus_dampening, weight_decay, has_decay,
                has_buf, nesterov, first):
    for idx in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        d = g[idx]
        if has_decay:
            d = d + weight_decay * p[idx]
        if has_buf:
            if first:
                b = d
            else:
                b = momentum * buf[idx] + one_minus_dampening * d
            buf[idx] = b
            d = d + momentum * b if nesterov else b
        p[idx] -= lr * d


def _sgd_route(p, g, buf, *hyper, **options):
    return _inplace_route(p, buf)


@routed(_sgd_route)
def sgd_update(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
               first=False):
    """In place, as reference.sgd_update (d = g (+ wd·p); momentum buffer; p <- p - lr·d)."""
    if _sgd_route(p, g, buf)[0] == REFERENCE:
        return reference.sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first)
    xp = _xp(p)
    g = xp.ascontiguousarray(g)
    has_buf = buf is not None
    _launch(_sgd_kernel, p.size, xp, _flat(p), _flat(g), _flat(buf if has_buf else p),
            *_scalars(p.dtype, lr, momentum, 1 - dampening, weight_decay),
            weight_decay != 0, has_buf, bool(nesterov), bool(first))


@cuda.jit
def _adam_kernel(p, g, m, v, step_size, one_minus_beta1, beta2, one_minus_beta2,
                 bias_correction2_sqrt, eps, weight_decay, has_decay):
    for idx in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        gi = g[idx]
        if has_decay:
            gi = gi + weight_decay * p[idx]
        mi = m[idx] + one_minus_beta1 * (gi - m[idx])
        vi = beta2 * v[idx] + one_minus_beta2 * gi * gi
        m[idx] = mi
        v[idx] = vi
        p[idx] -= step_size * mi / (math.sqrt(vi) / bias_correction2_sqrt + eps)


def _adam_route(p, g, m, v, *hyper, **options):
    return _inplace_route(p, m, v)


@routed(_adam_route)
def adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay=0.0):
    """In place, as reference.adam_update; the bias corrections are computed once on the host."""
    if _adam_route(p, g, m, v)[0] == REFERENCE:
        return reference.adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)
    xp = _xp(p)
    g = xp.ascontiguousarray(g)
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    _launch(_adam_kernel, p.size, xp, _flat(p), _flat(g), _flat(m), _flat(v),
            *_scalars(p.dtype, step_size, 1 - beta1, beta2, 1 - beta2, bias_correction2_sqrt, eps,
                      weight_decay),
            weight_decay != 0)


@cuda.jit
def _rmsprop_kernel(p, g, square_avg, grad_avg, buf, lr, alpha, one_minus_alpha, eps,
                    weight_decay, momentum, has_decay, centered, has_buf):
    for idx in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        gi = g[idx]
        if has_decay:
            gi = gi + weight_decay * p[idx]
        s = alpha * square_avg[idx] + one_minus_alpha * gi * gi
        square_avg[idx] = s
        if centered:
            a = grad_avg[idx] + one_minus_alpha * (gi - grad_avg[idx])
            grad_avg[idx] = a
            denom = math.sqrt(s - a * a) + eps
        else:
            denom = math.sqrt(s) + eps
        if has_buf:
            b = momentum * buf[idx] + gi / denom
            buf[idx] = b
            p[idx] -= lr * b
        else:
            p[idx] -= lr * gi / denom


def _rmsprop_route(p, g, square_avg, grad_avg, buf, *hyper, **options):
    return _inplace_route(p, square_avg, grad_avg, buf)


@routed(_rmsprop_route)
def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay=0.0,
                   momentum=0.0):
    """In place, as reference.rmsprop_update (centered when grad_avg is given, momentum when
    buf is given)."""
    if _rmsprop_route(p, g, square_avg, grad_avg, buf)[0] == REFERENCE:
        return reference.rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps,
                                        weight_decay, momentum)
    xp = _xp(p)
    g = xp.ascontiguousarray(g)
    centered, has_buf = grad_avg is not None, buf is not None
    _launch(_rmsprop_kernel, p.size, xp, _flat(p), _flat(g), _flat(square_avg),
            _flat(grad_avg if centered else p), _flat(buf if has_buf else p),
            *_scalars(p.dtype, lr, alpha, 1 - alpha, eps, weight_decay, momentum),
            weight_decay != 0, centered, has_buf)


KERNELS = ("im2col", "col2im", "conv2d", "conv_transpose2d", "conv2d_grad_weight",
           "batch_norm_stats", "batch_norm_apply", "batch_norm_backward",
           "batch_norm_act_apply", "batch_norm_act_backward",
           "leaky_relu", "leaky_relu_grad", "sgd_update", "adam_update", "rmsprop_update")

for _name in KERNELS:
    register(_name, "cuda", globals()[_name])


# ---------------------------------------------------------------------------------------
# Proving the toolchain before the first real op

def _linker_setting():
    """(module, attribute) of Numba's switch to link through nvJitLink, or None."""
    for modname in ("numba.cuda.core.config", "numba.cuda.config", "numba.core.config"):
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        if hasattr(mod, "CUDA_ENABLE_PYNVJITLINK"):
            return mod, "CUDA_ENABLE_PYNVJITLINK"
    return None


def _launch_once():
    """leaky_relu on four numbers, through the full path (compile, link, load, launch)."""
    xp = backend.xp_for("cuda")
    x = xp.asarray(np.array([-2.0, -0.5, 0.0, 3.0], dtype=np.float32))
    got = backend.as_numpy(leaky_relu(x, 0.5))
    want = np.array([-1.0, -0.25, 0.0, 3.0], dtype=np.float32)
    if not np.array_equal(got, want):
        raise RuntimeError(f"the CUDA smoke kernel computed {got}, expected {want}")


def smoke_test() -> None:
    """Compile and launch one tiny kernel, so that a broken toolchain shows now, not inside a
    user's op (the registry calls this once, and falls back to the reference kernels if it
    raises).  Nothing to prove in the simulator or without a working GPU.

    The one failure with a known cure: NVVM newer than the driver emits PTX of an ISA version
    the driver cannot load (CUDA_ERROR_UNSUPPORTED_PTX_VERSION).  Within one CUDA major
    version, nvJitLink compiles that PTX to machine code the older driver loads (minor-version
    compatibility).  numba-cuda 0.30 links through nvJitLink whenever it loads (no switch; on
    the H200 image NVVM 13.0 emits PTX 9.0, which its 13.0 driver takes); older Numbas have
    a CUDA_ENABLE_PYNVJITLINK switch, which is turned on here and the launch retried.

    With the direct launcher (the default) the smoke kernel goes through it first; if that
    fails, the dispatcher takes over, with a warning."""
    global _direct
    if SIMULATOR or not backend.cuda_available():
        return
    if _direct is not None:
        try:
            _launch_once()
            return
        except Exception as e:
            import warnings
            warnings.warn(f"the smoke kernel failed through the direct "
                          f"launcher ({type(e).__name__}: {e}); launching through Numba's "
                          "dispatcher", RuntimeWarning)
            _direct = None
    try:
        _launch_once()
    except Exception as e:
        setting = _linker_setting()
        if "PTX" not in str(e).upper() or setting is None or getattr(*setting):
            raise
        setattr(*setting, True)
        _leaky_relu_kernel.overloads.clear()        # drop any half-made compile
        _launch_once()


def describe() -> dict:
    """The toolchain behind these kernels, for reports (scripts/gpu_check.sh, the bench)."""
    from importlib import metadata
    info = {"simulator": SIMULATOR, "numba": numba.__version__}
    for dist in ("numba-cuda", "cupy-cuda13x", "cupy-cuda12x", "cupy", "cuda-bindings",
                 "nvidia-nvjitlink", "nvidia-cuda-nvcc"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    if SIMULATOR:
        return info
    try:
        from numba.cuda.cudadrv import nvvm as _nvvm
        info["nvvm"] = ".".join(map(str, _nvvm.NVVM().get_version()))
    except Exception as e:
        info["nvvm"] = f"unavailable ({type(e).__name__}: {e})"
    try:
        info["driver_cuda"] = ".".join(map(str, cuda.cudadrv.driver.driver.get_version()))
    except Exception as e:
        info["driver_cuda"] = f"unavailable ({type(e).__name__}: {e})"
    setting = _linker_setting()
    info["nvjitlink_linker"] = bool(getattr(*setting)) if setting else None
    info["launch"] = "direct" if _direct is not None else "numba dispatcher"
    return info
