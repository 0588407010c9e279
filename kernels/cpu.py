"""Fast CPU kernels: Numba loops for the gathers, scatters and elementwise passes; a BLAS for
every matrix product (`blas.matmul`: MKL when the optional `mkl` package is installed, else
NumPy's `np.matmul`).

Same names, signatures and results as `reference.py` (tested against it); registered with
`tinygan.kernels.register(name, "cpu", fn)` at import.  What makes them faster (the
measurements: docs/performance.md):

- **One big GEMM per convolution.**  The im2col columns are laid out channel-major,
  col[(c, j, i), (n, p, q)], so conv2d is ONE product of W (OC, C·KH·KW) and col over the
  whole batch, instead of N thin per-sample products; the weight gradient is gy · colᵀ with
  the batch folded into the contraction.  The price is one transpose of the output (or of
  gy / x), which a parallel copy does in a fraction of the GEMM's time.  The transposed
  convolution's columns are batch-innermost instead, col[(o, j, i), (h, w, n)], so that its
  scatter vectorises over the batch.
- **Winograd for the stride-2 4×4 layers** (winograd.py): conv2d, its weight gradient and the
  transposed convolution (conv2d's adjoint) with kernel 4, stride 2, padding 1 (the DCGAN's)
  and C ≥ 16 channels on the image side run as 9 GEMMs with 0.5625× the FLOPs, between
  transforms that only add and subtract.
- **im2col / col2im as parallel gathers.**  Each channel (or a chunk of the batch of one channel)
  is owned by one thread, so col2im adds into its planes without races and in the
  reference's order (bit-identical).  The public batch-major im2col/col2im reuse the same
  channel-major kernels plus one transpose, so one compiled kernel per dtype serves all.
- **No page faults for the multi-MB temporaries** (columns, GEMM results, transposes):
  glibc is told to keep freed memory (see below), so a fresh array reuses warm pages; where
  that cannot be set, a buffer pool (`_scratch`) keeps one buffer per slot instead.  Pool
  memory never leaves a kernel: every array a kernel returns is freshly allocated.
- **Fused passes** for batch norm (statistics, apply, backward) and the leaky ReLU, and one
  loop per optimizer update instead of ~10 NumPy temporaries.
- **A threading layer that shares the cores with the BLAS**: beside OpenBLAS, `workqueue`
  (Numba's OpenMP layer leaves its workers spinning after a parallel region, and they steal
  the second core from OpenBLAS); beside MKL, `omp` on the same GNU OpenMP pool as MKL's
  products (see blas.py).
- **Serial twins for small arrays.**  Handing a loop to the worker threads costs tens of µs,
  far more while OpenBLAS's threads still spin after a GEMM; below `PARALLEL_MIN` elements
  (the MLP's batch-norm layers, biases, most optimizer updates) the same loop runs
  single-threaded in the caller.
- **malloc keeps freed memory** (`keep_freed_memory`, at import): glibc otherwise maps every
  array over 128 KiB afresh and unmaps it on free, so each new activation or gradient pays the
  page faults again, a large part of a small MLP `gan` step.

Every kernel accepts float32 and float64 and any strides (inputs are made C-contiguous first,
a no-op for the usual case); each Numba kernel is compiled for those two dtypes only, to keep
the compile time that CI pays small (`cache=True` keeps it on disk after the first run).
Anything else (mixed dtypes, other float types) falls back to the reference kernel.
"""
from __future__ import annotations

import ctypes
import os
import threading
import types

import numba

from . import blas

# Must happen before the first parallel kernel runs; an explicit NUMBA_THREADING_LAYER wins.
# `workqueue` beside OpenBLAS, `omp` on the GNU OpenMP pool that MKL's products run on (blas.py).
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = blas.numba_threading_layer()

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from . import reference, register, shared, winograd  # noqa: E402
from .reference import conv_output_size, conv_transpose_output_size  # noqa: E402

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Below this many elements an elementwise / batch-norm / optimizer loop runs serially.
PARALLEL_MIN = 1 << 17

# Fastmath flag for the loops that only *sum* (batch-norm statistics and gradient sums): a
# running `s += x[i]` is one long chain of dependent float64 adds (4 cycles each); letting
# LLVM reassociate it splits the chain into vector lanes summed at the end.  On the DCGAN's
# batch-norm shapes the statistics took 0.26-0.64x and the gradient sums 0.49-0.69x of the
# strict loops' time, with the same float32 results.  Only 'reassoc': no assumptions about
# NaN or infinity, and the elementwise loops keep strict IEEE order (bit-identical to the
# reference).
REASSOC = {"reassoc"}


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve arrays up to 32 MiB (its limit) from the heap and to keep
    freed memory there for the next array, instead of mmap-ing every array over 128 KiB
    (then page-faulting each 4 KiB page, slow on virtual machines) and unmapping it on
    free — what a caching allocator (PyTorch's, CuPy's) does for a framework.  The price is
    that the process's RSS stays at its high-water mark.  Set TINYGAN_MALLOC=system to keep
    glibc's defaults; a libc without `mallopt` is left alone.  True when applied."""
    if os.environ.get("TINYGAN_MALLOC", "").lower() == "system":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
                    and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


MALLOC_TUNED = keep_freed_memory()


def _serial_twin(kernel):
    """The same loop compiled without threads (prange runs as range), cached on disk under
    its own name, for calls on fewer than PARALLEL_MIN elements.  It keeps the kernel's
    fastmath flags, so that both sum in the same order."""
    f = kernel.py_func
    twin = types.FunctionType(f.__code__, f.__globals__, f.__name__ + "_serial",
                              f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + "_serial"
    return njit(cache=True, fastmath=kernel.targetoptions.get("fastmath", False))(twin)


def _pick(kernel, twin, size):
    return kernel if size >= PARALLEL_MIN else twin


def _fast_dtype(*arrays) -> bool:
    """True when the compiled loops apply: every array has one and the same dtype, float32 or
    float64, and none is empty.  An empty array (a batch of 0, a 0x0 map, no channels) takes
    the reference, whose NumPy reductions define what it gives; the loops would divide by
    its zero size or fail to reshape it."""
    dt = arrays[0].dtype
    return (dt in _DTYPES and all(a.dtype == dt for a in arrays[1:])
            and all(a.size for a in arrays))


# ---------------------------------------------------------------------------------------
# Buffer pool: one growing flat buffer per (slot, dtype), per thread.

class _Pool(threading.local):
    def __init__(self):
        self.buffers = {}


_pool = _Pool()


def _scratch(slot: str, shape, dtype):
    """A scratch array of `shape` that stays valid until the next request for the same slot.

    Only for temporaries a kernel consumes before it returns; never hand one to the caller.
    When malloc keeps freed memory (MALLOC_TUNED) the heap already is the pool, so this is a
    plain fresh array that lives only as long as the kernel needs it — the pool's buffers,
    held for the whole run, would add to the peak memory of a DCGAN step.
    """
    if MALLOC_TUNED:
        return np.empty(tuple(int(s) for s in shape), dtype=dtype)
    size = 1
    for s in shape:
        size *= int(s)
    key = (slot, np.dtype(dtype))
    buf = _pool.buffers.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1), dtype=dtype)
        _pool.buffers[key] = buf
    return buf[:size].reshape(shape)


def clear_pool() -> None:
    """Release the scratch buffers of the calling thread."""
    _pool.buffers.clear()


# ---------------------------------------------------------------------------------------
# Gathers and scatters

def _n_chunks(N, C):
    """Split the batch into chunks so that C * chunks work items keep both cores busy even
    for C = 1 (the image layers), while each item still streams long contiguous runs."""
    return min(N, max(1, 8 // max(C, 1)))


# Index arithmetic in the gathers and scatters: Numba treats a signed index as possibly
# negative and wraps it (a compare and an add per access), which keeps LLVM from turning the
# inner loops into plain strided copies.  So they index flat views with unsigned (uint64)
# offsets — all of one type: mixing int64 and uint64 in Numba gives float64 — and split each
# row into its padding / interior / padding runs up front instead of testing every element.
# On the DCGAN's layers that made im2col and col2im markedly faster than the bounds-tested
# loops, close to a memcpy of the same bytes.  Since then im2col's short rows (OW < TABLE_ROW:
# D2's and D3's columns) take the plane-table gather further down; the row loop keeps the
# wider outputs.

@njit(cache=True)
def _valid_range(k, S, P, size, out_size):
    """[lo, hi): the output positions o whose input coordinate o*S + k - P is in [0, size)."""
    lo = max(0, -((k - P) // S))                 # ceil((P - k) / S)
    hi = min(out_size, (size - 1 + P - k) // S + 1)
    return lo, max(lo, hi)


@njit(parallel=True, cache=True)
def _im2col_kernel(x, SH, SW, PH, PW, NB, col):
    """col[c, j, i, n, p, q] = xpad[n, c, p*SH + j, q*SW + i] (0 in the padding).

    Work item = (channel c, chunk of the batch).  Row (c, j, i, n, p) of the columns is
    zeros, then x's row h = p*SH + j - PH read at stride SW, then zeros.
    """
    N, C, H, W = x.shape
    _, KH, KW, _, OH, OW = col.shape
    xf, cf = x.reshape(-1), col.reshape(-1)     # (both C-contiguous: views)
    chunk = (N + NB - 1) // NB
    for item in prange(C * NB):
        c = item // NB
        n0 = (item - c * NB) * chunk
        n1 = min(N, n0 + chunk)
        for j in range(KH):
            p_lo, p_hi = _valid_range(j, SH, PH, H, OH)
            for i in range(KW):
                q_lo, q_hi = _valid_range(i, SW, PW, W, OW)
                sw = np.uint64(SW)
                for n in range(n0, n1):
                    row0 = np.uint64((((c * KH + j) * KW + i) * N + n) * OH * OW)
                    for p in range(OH):
                        dst = row0 + np.uint64(p * OW)
                        if p < p_lo or p >= p_hi:
                            for q in range(OW):
                                cf[dst + np.uint64(q)] = 0
                            continue
                        src = np.uint64(((n * C + c) * H + p * SH + j - PH) * W
                                        + q_lo * SW + i - PW)
                        for q in range(q_lo):
                            cf[dst + np.uint64(q)] = 0
                        d = dst + np.uint64(q_lo)
                        if SW == 2:              # a constant stride LLVM can vectorise
                            for k in range(q_hi - q_lo):
                                cf[d + np.uint64(k)] = xf[src + np.uint64(2 * k)]
                        else:
                            for k in range(q_hi - q_lo):
                                cf[d + np.uint64(k)] = xf[src + np.uint64(k) * sw]
                        for q in range(q_hi, OW):
                            cf[dst + np.uint64(q)] = 0


# Short output rows.  The loop above copies OW values per (c, j, i, n, p): 8 for D2's 8x8
# output, 4 for D3's 4x4.  That is shorter than LLVM's vector loop, so every row runs in the
# scalar remainder and the row bookkeeping dominates.  Below TABLE_ROW the gather instead walks
# a whole (OH, OW) output plane per (c, j, i, n), reading a precomputed table: for each output
# position, the offset of its input pixel within x's (n, c) plane and whether that pixel is
# inside the image (else 0: the padding).  On D3- and D2-shaped columns that beat the row loop
# (D2's came close to a memcpy of the same bytes); at OW = 16 (D1) it gained nothing, so the
# row loop keeps those.  (The same table made col2im slower: its scatter-adds do not
# vectorise, so col2im keeps its row loop.)
TABLE_ROW = 16


def _gather_table(H, W, KH, KW, stride, padding):
    """(offset, inside), each (KH, KW, OH·OW): where output position (p, q) of tap (j, i)
    reads x's plane, offset = h·W + w for (h, w) = (p·SH + j - PH, q·SW + i - PW)."""
    key = (H, W, KH, KW, tuple(stride), tuple(padding))
    table = _GATHER_TABLES.get(key)
    if table is None:
        (SH, SW), (PH, PW) = stride, padding
        OH, OW = conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)
        h = (np.arange(OH) * SH)[None, None, :, None] + np.arange(KH)[:, None, None, None] - PH
        w = (np.arange(OW) * SW)[None, None, None, :] + np.arange(KW)[None, :, None, None] - PW
        inside = (h >= 0) & (h < H) & (w >= 0) & (w < W)
        offset = np.where(inside, h * W + w, 0).astype(np.uint64)
        table = (offset.reshape(KH, KW, OH * OW), inside.reshape(KH, KW, OH * OW))
        for a in table:
            a.flags.writeable = False
        if len(_GATHER_TABLES) >= 256:       # a handful of layer shapes in practice
            _GATHER_TABLES.clear()
        _GATHER_TABLES[key] = table
    return table


_GATHER_TABLES: dict = {}


@njit(parallel=True, cache=True)
def _im2col_table_kernel(x, offset, inside, NB, col):
    """col[c, j, i, n, t] = x[n, c].flat[offset[j, i, t]] where inside[j, i, t], else 0:
    the same columns as _im2col_kernel, one (OH·OW) plane per (c, j, i, n)."""
    N, C, H, W = x.shape
    _, KH, KW, _, OH, OW = col.shape
    T = OH * OW
    xf, cf = x.reshape(-1), col.reshape(-1)     # (both C-contiguous: views)
    zero = x.dtype.type(0)
    chunk = (N + NB - 1) // NB
    for item in prange(C * NB):
        c = item // NB
        n0 = (item - c * NB) * chunk
        n1 = min(N, n0 + chunk)
        for j in range(KH):
            for i in range(KW):
                off, ins = offset[j, i], inside[j, i]
                for n in range(n0, n1):
                    dst = np.uint64((((c * KH + j) * KW + i) * N + n) * T)
                    src = np.uint64((n * C + c) * H * W)
                    for t in range(T):
                        v = xf[src + off[t]]
                        cf[dst + np.uint64(t)] = v if ins[t] else zero


@njit(parallel=True, cache=True)
def _col2im_kernel(col, SH, SW, PH, PW, NB, out):
    """out[n, c, p*SH + j - PH, q*SW + i - PW] += col[c, j, i, n, p, q]: the adjoint of im2col.

    Work item = (channel c, chunk of the batch): no two items write the same pixel, so there
    are no races, and each pixel receives its terms in (j, i) order, as the reference's
    slice-adds do (bit-identical results).  Only the interior runs are visited: terms that
    fall in the padding are dropped.
    """
    N, C, H, W = out.shape
    _, KH, KW, _, OH, OW = col.shape
    of, cf = out.reshape(-1), col.reshape(-1)   # (both C-contiguous: views)
    chunk = (N + NB - 1) // NB
    for item in prange(C * NB):
        c = item // NB
        n0 = (item - c * NB) * chunk
        n1 = min(N, n0 + chunk)
        for n in range(n0, n1):
            plane = np.uint64((n * C + c) * H * W)
            for k in range(H * W):
                of[plane + np.uint64(k)] = 0
        for j in range(KH):
            p_lo, p_hi = _valid_range(j, SH, PH, H, OH)
            for i in range(KW):
                q_lo, q_hi = _valid_range(i, SW, PW, W, OW)
                sw = np.uint64(SW)
                for n in range(n0, n1):
                    row0 = np.uint64((((c * KH + j) * KW + i) * N + n) * OH * OW)
                    for p in range(p_lo, p_hi):
                        s = row0 + np.uint64(p * OW + q_lo)
                        d = np.uint64(((n * C + c) * H + p * SH + j - PH) * W
                                      + q_lo * SW + i - PW)
                        for k in range(q_hi - q_lo):
                            of[d + np.uint64(k) * sw] += cf[s + np.uint64(k)]


# The transposed convolution's scatter, batch innermost.  Its GEMM can produce the columns in
# any order of (n, h, w); with the image index innermost, col[(o, j, i), (h, w), n], every
# column entry an output pixel receives is a contiguous run of N values, so the scatter
# becomes a *gather* per output row — for each of the few taps that reach the row, add one
# run of N — which LLVM vectorises over the batch.  The channel-major _col2im_kernel above
# walks 4- or 8-long rows (D3's, D2's columns) in scalar code.  At G3's and G2's shapes the
# gather beat that scatter clearly, and the copy of x into (C, H·W, N) costs next to nothing
# more than the (C, N, H·W) one it replaces.
#
# Its output goes back to NCHW through a buffer of a block of rows, `rows` output rows of one
# channel at a time: the block is gathered batch-innermost, then written image by image as one
# contiguous run of rows·OW values.  Written one output row at a time, each image's run was a
# single OW-long row (64 bytes at G3's shape) ~OC·OH·OW floats from the next image's — a fresh
# page per store run, which is what the gather waited on when y was not in cache; blocks of
# rows make each image's run long.  ROW_RUN sets the block: at least that many floats per
# image run, or the whole map.
ROW_RUN = 128


def _row_block(OC, OH, OW):
    """Output rows per work item of _col2im_batch_minor_kernel: runs of >= ROW_RUN floats,
    while keeping >= 8 work items (2 cores) when the channels are few (an image layer)."""
    rows = min(OH, -(-ROW_RUN // OW))
    while rows > 1 and OC * -(-OH // rows) < 8:
        rows = -(-rows // 2)
    return rows

@njit(parallel=True, cache=True)
def _batch_minor_kernel(x, out):
    """out[c, h·W + w, n] = x[n, c, h, w]: NCHW -> (C, H·W, N)."""
    N, C, H, W = x.shape
    HW = H * W
    xf, of = x.reshape(-1), out.reshape(-1)
    for c in prange(C):
        for n0 in range(0, N, 16):           # 16 images at a time: contiguous writes
            for k in range(HW):
                dst = np.uint64((c * HW + k) * N)
                src = np.uint64(c * HW + k)
                for n in range(n0, min(N, n0 + 16)):
                    of[dst + np.uint64(n)] = xf[src + np.uint64(n * C * HW)]


@njit(parallel=True, cache=True)
def _col2im_batch_minor_kernel(col, SH, SW, PH, PW, rows, y):
    """y[n, o, h, w] = sum over the taps (j, i) that reach (h, w) of
    col[o, j, i, (h + PH - j) / SH, (w + PW - i) / SW, n] — col2im of batch-innermost columns.

    Work item = `rows` output rows of one channel o; each pixel receives its terms in (j, i)
    order, as the reference's slice-adds do (bit-identical results)."""
    N, OC, OH, OW = y.shape
    _, KH, KW, H, W, _ = col.shape
    cf, yf = col.reshape(-1), y.reshape(-1)
    blocks = (OH + rows - 1) // rows
    for item in prange(OC * blocks):
        o = item // blocks
        h0 = (item - o * blocks) * rows
        h1 = min(OH, h0 + rows)
        buf = np.zeros((h1 - h0) * OW * N, dtype=y.dtype)      # buf[(h - h0, w), n]
        for h in range(h0, h1):
            base = np.uint64((h - h0) * OW * N)
            for j in range(KH):
                ph = h + PH - j
                if ph < 0 or ph % SH != 0 or ph // SH >= H:
                    continue
                p = ph // SH
                for i in range(KW):
                    for w in range(OW):
                        qw = w + PW - i
                        if qw < 0 or qw % SW != 0 or qw // SW >= W:
                            continue
                        src = np.uint64(((((o * KH + j) * KW + i) * H + p) * W + qw // SW) * N)
                        dst = base + np.uint64(w * N)
                        for n in range(N):
                            buf[dst + np.uint64(n)] += cf[src + np.uint64(n)]
        run = (h1 - h0) * OW
        for n in range(N):
            d = np.uint64(((n * OC + o) * OH + h0) * OW)
            for k in range(run):
                yf[d + np.uint64(k)] = buf[np.uint64(k * N + n)]


@njit(parallel=True, cache=True)
def _swap01(a, out):
    """out[b, k, :] = a[k, b, :]: (A, B, L) -> (B, A, L), e.g. (OC, N, OH·OW) -> NCHW."""
    A, B, L = a.shape
    af, of = a.reshape(-1), out.reshape(-1)     # (both C-contiguous: views)
    for bk in prange(A * B):
        b = bk // A
        k = bk - b * A
        src = np.uint64((k * B + b) * L)
        dst = np.uint64(bk * L)
        for l in range(L):
            of[dst + np.uint64(l)] = af[src + np.uint64(l)]


def _im2col_channel_major(x, KH, KW, stride, padding):
    """Pooled columns (C, KH, KW, N, OH, OW) of a C-contiguous x; inside a
    `kernels.sharing_inputs` block, the same columns for the same x are built once."""
    if not MALLOC_TUNED:               # pool buffers are overwritten by the next request
        return _im2col_uncached(x, KH, KW, stride, padding)
    return shared("im2col", x, (KH, KW, tuple(stride), tuple(padding)),
                  lambda: _im2col_uncached(x, KH, KW, stride, padding))


def _im2col_uncached(x, KH, KW, stride, padding):
    N, C, H, W = x.shape
    (SH, SW), (PH, PW) = stride, padding
    OH, OW = conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)
    if (OH, OW, PH, PW) == (1, 1, 0, 0) and (KH, KW) == (H, W):
        # One window covering the whole image (the last layer of a DCGAN critic): the
        # columns are x transposed — a view, which the GEMM reads as a transposed operand
        # (copying it cost more than the layer's two GEMMs).
        return x.reshape(N, C * KH * KW).T.reshape(C, KH, KW, N, 1, 1)
    col = _scratch("col", (C, KH, KW, N, OH, OW), x.dtype)
    if OW < TABLE_ROW:
        offset, inside = _gather_table(H, W, KH, KW, stride, padding)
        _im2col_table_kernel(x, offset, inside, _n_chunks(N, C), col)
    else:
        _im2col_kernel(x, SH, SW, PH, PW, _n_chunks(N, C), col)
    return col


def _col2im_channel_major(col, x_shape, stride, padding):
    """Fresh x_shape image from columns (C, KH, KW, N, OH, OW)."""
    out = np.empty(tuple(int(s) for s in x_shape), dtype=col.dtype)
    C, KH, KW, N, OH, OW = col.shape
    if (OH, OW, padding[0], padding[1]) == (1, 1, 0, 0) and (KH, KW) == out.shape[2:]:
        # Each pixel receives exactly one term (the first layer of a DCGAN generator).
        np.copyto(out.reshape(N, C * KH * KW), col.reshape(C * KH * KW, N).T)
        return out
    _col2im_kernel(col, stride[0], stride[1], padding[0], padding[1],
                   _n_chunks(out.shape[0], out.shape[1]), out)
    return out


def _transpose01(a3, slot):
    """Pooled (B, A, L) copy of a C-contiguous (A, B, L) array."""
    A, B, L = a3.shape
    out = _scratch(slot, (B, A, L), a3.dtype)
    _swap01(a3, out)
    return out


def _channel_major(x, slot):
    """Pooled (C, N, H·W) copy of a C-contiguous NCHW x (shared like the columns: a conv's
    two backward products both start with gy in this layout)."""
    N, C = x.shape[:2]
    if not MALLOC_TUNED:
        return _transpose01(x.reshape(N, C, -1), slot)
    return shared("channel_major", x, (), lambda: _transpose01(x.reshape(N, C, -1), slot))


# The public im2col / col2im use the batch-major layout (N, C, KH, KW, OH, OW) of the
# reference; they go through the channel-major kernels and one transpose, so that a single
# compiled kernel per dtype serves both them and the convolutions.

def im2col(x, KH, KW, stride, padding):
    if not _fast_dtype(x):
        return reference.im2col(x, KH, KW, stride, padding)
    x = np.ascontiguousarray(x)
    col = np.ascontiguousarray(_im2col_channel_major(x, KH, KW, stride, padding))
    C, _, _, N, OH, OW = col.shape
    out = np.empty((N, C, KH, KW, OH, OW), dtype=x.dtype)
    _swap01(col.reshape(C * KH * KW, N, OH * OW), out.reshape(N, C * KH * KW, OH * OW))
    return out


def col2im(col, x_shape, stride, padding):
    if not _fast_dtype(col):
        return reference.col2im(col, x_shape, stride, padding)
    col = np.ascontiguousarray(col)
    N, C, KH, KW, OH, OW = col.shape
    colT = _transpose01(col.reshape(N, C * KH * KW, OH * OW), "t")
    return _col2im_channel_major(colT.reshape(C, KH, KW, N, OH, OW), x_shape, stride, padding)


# ---------------------------------------------------------------------------------------
# The matrix product (`linear`, the MatMul op): the BLAS that blas.py picked

def matmul(a, b):
    return blas.matmul(a, b)


# ---------------------------------------------------------------------------------------
# The convolution family: columns + one GEMM + a transpose

def _winograd_input(x):
    """winograd.input_transform(x), shared like the columns inside a `sharing_inputs` block
    (a transposed convolution's two backward products both start from gy's)."""
    if not MALLOC_TUNED:
        return winograd.input_transform(x)
    return shared("winograd", x, (), lambda: winograd.input_transform(x))


def _winograd_gy(gy):
    """winograd.gy_transform(gy), shared the same way (a conv2d's two backward products, the
    input gradient by the Winograd transposed convolution and the weight gradient, both
    start from it)."""
    if not MALLOC_TUNED:
        return winograd.gy_transform(gy)
    return shared("winograd_gy", gy, (), lambda: winograd.gy_transform(gy))


def conv2d(x, w, stride=(1, 1), padding=(0, 0)):
    if not _fast_dtype(x, w):
        return reference.conv2d(x, w, stride, padding)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    if w.shape[1] == x.shape[1] and winograd.applies(x.shape, w.shape[2:], stride, padding):
        return winograd.conv2d(_winograd_input(x), w, x.shape)      # the DCGAN's k4 s2 p1
    N = x.shape[0]
    OC, C, KH, KW = w.shape
    col = _im2col_channel_major(x, KH, KW, stride, padding)
    OH, OW = col.shape[4:]
    Y = _scratch("gemm", (OC, N * OH * OW), x.dtype)
    blas.matmul(w.reshape(OC, C * KH * KW), col.reshape(C * KH * KW, -1), out=Y)  # (OC, N·OH·OW)
    y = np.empty((N, OC, OH, OW), dtype=x.dtype)
    _swap01(Y.reshape(OC, N, OH * OW), y.reshape(N, OC, OH * OW))
    return y


def conv_transpose2d(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    if not _fast_dtype(x, w):
        return reference.conv_transpose2d(x, w, stride, padding, output_padding)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    N, C, H, W = x.shape
    _, OC, KH, KW = w.shape
    OH = conv_transpose_output_size(H, KH, stride[0], padding[0], output_padding[0])
    OW = conv_transpose_output_size(W, KW, stride[1], padding[1], output_padding[1])
    if (H, W, padding[0], padding[1], OH, OW) == (1, 1, 0, 0, KH, KW):
        # One input pixel whose window is the whole output (a DCGAN G's first layer, and
        # the input gradient of a critic's last): y[n, (o, j, i)] = sum_c x[n, c] w[c, (o, j, i)]
        # is one GEMM straight into NCHW, no columns, no scatter.  With C = 1 (a critic's
        # one logit) it is an outer product, which OpenBLAS runs far slower than a broadcast
        # multiply of the same float32 products.
        if C == 1:
            return np.multiply(x.reshape(N, 1), w.reshape(1, OC * KH * KW)).reshape(N, OC, KH, KW)
        return blas.matmul(x.reshape(N, C), w.reshape(C, OC * KH * KW)).reshape(N, OC, KH, KW)
    if (winograd.applies_transposed(x.shape, w.shape, stride, padding)
            and (OH, OW) == (2 * H, 2 * W)):
        return winograd.conv_transpose2d(_winograd_gy(x), w, x.shape)   # the DCGAN's k4 s2 p1
    # col[(o, j, i), (h, w, n)] = sum_c w[c, o, j, i] x[n, c, h, w]: one GEMM over the batch,
    # then every column entry is added onto the output pixel it belongs to (col2im).
    # (the columns batch-innermost: x copied to (C, H·W, n) first, see _col2im_batch_minor_kernel;
    # the batch in chunks whose columns fit in COL_CHUNK_BYTES, see _batch_chunk)
    y = np.empty((N, OC, OH, OW), dtype=x.dtype)
    rows = OC * KH * KW
    nc = _batch_chunk(N, rows * H * W * x.itemsize)
    xbuf = _scratch("t", (C * H * W * nc,), x.dtype)
    colbuf = _scratch("gemm", (rows * H * W * nc,), x.dtype)
    for n0 in range(0, N, nc):
        n = min(nc, N - n0)
        xB = xbuf[:C * H * W * n].reshape(C, H * W, n)
        col = colbuf[:rows * H * W * n].reshape(rows, H * W * n)
        _batch_minor_kernel(x[n0:n0 + n], xB)
        blas.matmul(w.reshape(C, rows).T, xB.reshape(C, H * W * n), out=col)
        _col2im_batch_minor_kernel(col.reshape(OC, KH, KW, H, W, n), stride[0], stride[1],
                                   padding[0], padding[1], _row_block(OC, OH, OW),
                                   y[n0:n0 + n])
    return y


# The transposed convolution's GEMM writes its columns and the scatter reads them back: at
# G3's shape (also D2's input gradient) 16 MiB of them, which go out to memory and come back.
# Done in chunks of the batch whose columns fit in cache (one 8 MiB buffer), each chunk's GEMM
# writes lines that are still in cache and the scatter reads them from there, which made the
# layer and the DCGAN step's scatters faster.  Smaller chunks lost it again: the scatter's
# batch runs get short (4 MiB, 16 images: the step no faster than with the whole batch).
COL_CHUNK_BYTES = 8 << 20


def _batch_chunk(N, col_bytes_per_image):
    """Images per chunk of the transposed convolution: the fewest equal chunks whose columns
    fit in COL_CHUNK_BYTES (one image at least)."""
    chunks = min(N, max(1, -(-(N * col_bytes_per_image) // COL_CHUNK_BYTES)))
    return -(-N // chunks)


def conv2d_grad_weight(x, gy, kernel_size, stride=(1, 1), padding=(0, 0)):
    if not _fast_dtype(x, gy):
        return reference.conv2d_grad_weight(x, gy, kernel_size, stride, padding)
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    N, C, H, W = x.shape
    KH, KW = kernel_size
    OH = conv_output_size(H, KH, stride[0], padding[0])
    OW = conv_output_size(W, KW, stride[1], padding[1])
    if tuple(gy.shape[2:]) != (OH, OW) or gy.shape[0] != N:
        raise ValueError(f"conv2d_grad_weight: gy {tuple(gy.shape)} does not match the "
                         f"{(OH, OW)} output of x {tuple(x.shape)}")
    OC = gy.shape[1]
    if winograd.applies(x.shape, kernel_size, stride, padding):
        return winograd.conv2d_grad_weight(_winograd_input(x), _winograd_gy(gy), x.shape)
    col = _im2col_channel_major(x, KH, KW, stride, padding).reshape(C * KH * KW, -1)
    gyT = _channel_major(gy, "t")                                 # (OC, N, OH·OW)
    # gW[o, (c, j, i)] = sum over (n, p, q) of gy[n, o, p, q] col[(c, j, i), (n, p, q)]:
    # gy @ colᵀ, colᵀ handed to BLAS as a transposed operand.  (col @ gyᵀ is the same GEMM
    # in OpenBLAS's time, but its (C·KH·KW, OC) result then needs a transposing copy, a
    # noticeable part of D3's weight gradient.)
    return blas.matmul(gyT.reshape(OC, N * OH * OW), col.T).reshape(OC, C, KH, KW)


# ---------------------------------------------------------------------------------------
# Batch norm, plain and fused with a leaky ReLU (ReLU: slope 0; slopes in [0, 1]).  x is
# viewed as (N, C, L) with L = H·W (or 1 for (N, C) input); per-channel sums are accumulated
# in float64, so they are at least as accurate as NumPy's pairwise ones.  One set of loops
# serves both: the affine pass with slope 1 is the plain batch_norm_apply (max(z, z) = z),
# and the backward passes take a `masked` flag — when set, the activation's gradient scale
# (read from the sign of y) is applied to gy as it is read, never written out.  Same float
# operations in the same order as the reference composition, so results agree to the bit.

@njit(parallel=True, cache=True, fastmath=REASSOC)
def _bn_stats_kernel(x, mean, var):
    N, C, L = x.shape
    M = N * L
    for c in prange(C):
        s = 0.0
        for n in range(N):
            for l in range(L):
                s += x[n, c, l]
        mu = s / M
        ss = 0.0
        for n in range(N):
            for l in range(L):
                d = x[n, c, l] - mu
                ss += d * d
        mean[c] = mu
        var[c] = ss / M


@njit(parallel=True, cache=True)
def _bn_act_kernel(x, scale, shift, slope, y):
    """y = leaky(x * scale + shift, slope) = max(z, slope z); slope 1: the plain affine map."""
    N, C, L = x.shape
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        a = scale[c]
        b = shift[c]
        for l in range(L):
            z = x[n, c, l] * a + b
            t = slope * z
            y[n, c, l] = z if z >= t else t


# The gradient sums walk the arrays in memory order: each of SUM_CHUNKS work items takes a
# run of whole samples x[n] (every channel's contiguous row of L values in turn) and keeps its
# own per-channel partial sums, added up in chunk order at the end (the same result for any
# thread count).  One work item per channel instead reads N separate rows of L values from
# each of the three arrays (x, y, gy), ~C·L floats apart, which the hardware prefetcher follows
# badly (on the DCGAN's G2/D2 and G3 shapes, cold or in cache, the memory-order walk is
# clearly faster).  The statistics keep one channel per item: they read one array, and the
# chunked form of them was no faster.
SUM_CHUNKS = 8


@njit(parallel=True, cache=True, fastmath=REASSOC)
def _bn_backward_sums_kernel(x, y, gy, masked, one, slope, mean, inv_std, gw, gb):
    """gb = sum g, gw = sum g xhat per channel, g = gy (or its masked scale when `masked`)."""
    N, C, L = x.shape
    chunks = min(N, SUM_CHUNKS)
    part_b = np.zeros((chunks, C))
    part_w = np.zeros((chunks, C))
    for k in prange(chunks):
        for n in range(k * N // chunks, (k + 1) * N // chunks):
            for c in range(C):
                mu = mean[c]
                s = inv_std[c]
                sb = 0.0
                sw = 0.0
                for l in range(L):
                    g = gy[n, c, l]
                    if masked:
                        g = (one if y[n, c, l] > 0 else slope) * g
                    sb += g
                    sw += g * ((x[n, c, l] - mu) * s)
                part_b[k, c] += sb
                part_w[k, c] += sw
    for c in range(C):
        sb = 0.0
        sw = 0.0
        for k in range(chunks):
            sb += part_b[k, c]
            sw += part_w[k, c]
        gb[c] = sb
        gw[c] = sw


@njit(parallel=True, cache=True)
def _bn_backward_gx_kernel(x, y, gy, masked, one, slope, mean, inv_std, k, gb, gw, M, gx):
    """gx = k * (M g - gb - xhat gw) with k = weight * inv_std / M, per channel."""
    N, C, L = x.shape
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        mu = mean[c]
        s = inv_std[c]
        kc = k[c]
        b = gb[c]
        wc = gw[c]
        for l in range(L):
            g = gy[n, c, l]
            if masked:
                g = (one if y[n, c, l] > 0 else slope) * g
            xhat = (x[n, c, l] - mu) * s
            gx[n, c, l] = kc * (M * g - b - xhat * wc)


_bn_stats_serial, _bn_act_serial, _bn_backward_sums_serial, _bn_backward_gx_serial = map(
    _serial_twin, (_bn_stats_kernel, _bn_act_kernel, _bn_backward_sums_kernel,
                   _bn_backward_gx_kernel))


# Short rows.  The loops above walk one channel's L contiguous values at a time.  When L is
# short — 16 for a 4x4 map (DCGAN's G1 and D3), 1 for BatchNorm1d (the MLP GAN) — that inner
# loop is shorter than LLVM's vector loop (8 floats x an unroll of 2-4), so it runs in its
# scalar remainder, and for L = 1 each step jumps C floats ahead.  Below SHORT_ROW the same
# arithmetic runs along a sample's whole contiguous row x[n, :] = (c, l) instead:
#   - the sums keep one float64 accumulator per lane (c, l) of a block of channels, fed a
#     contiguous stretch of every sample, and fold each channel's L lanes at the end;
#   - the elementwise passes take the per-channel constants repeated per lane (np.repeat).
# Same per-element operations, so apply and the input gradient are bit-identical to the
# per-channel loops; the sums differ only in float64 summation order.  Measured on the
# DCGAN's 4x4 layers: 0.5-0.6x of the per-channel loops' time; on the MLP's BatchNorm1d
# (serial, C = 256-1024): 0.03-0.25x.  From L = 64 up the per-channel loops are faster (their
# accumulators stay in registers), so they keep those shapes.
SHORT_ROW = 64


@njit(cache=True)
def _channel_blocks(C, L):
    """(channels per block, number of blocks): blocks whose stretch of a row is >= 256 floats."""
    cb = max(1, min(C, (256 + L - 1) // L))
    return cb, (C + cb - 1) // cb


@njit(parallel=True, cache=True, fastmath=REASSOC)
def _bn_stats_rows(x, L, mean, var):
    """_bn_stats_kernel for x viewed as (N, C·L) rows."""
    N, J = x.shape
    C = J // L
    cb, nb = _channel_blocks(C, L)
    M = N * L
    for b in prange(nb):
        c0 = b * cb
        nc = min(C, c0 + cb) - c0
        j0 = c0 * L
        w = nc * L
        acc = np.zeros(w)
        for n in range(N):
            row = x[n, j0:j0 + w]
            for k in range(w):
                acc[k] += row[k]
        mu_l = np.empty(w)                  # each lane's channel mean, for the second pass
        for c in range(nc):
            s = 0.0
            for l in range(L):
                s += acc[c * L + l]
            mu = s / M
            mean[c0 + c] = mu
            for l in range(L):
                mu_l[c * L + l] = mu
        acc[:] = 0.0
        for n in range(N):
            row = x[n, j0:j0 + w]
            for k in range(w):
                d = row[k] - mu_l[k]
                acc[k] += d * d
        for c in range(nc):
            ss = 0.0
            for l in range(L):
                ss += acc[c * L + l]
            var[c0 + c] = ss / M


@njit(parallel=True, cache=True)
def _bn_act_rows(x, scale_l, shift_l, slope, y):
    """_bn_act_kernel for (N, C·L) rows; scale and shift repeated per lane."""
    N, J = x.shape
    for n in prange(N):
        xr = x[n]
        yr = y[n]
        for k in range(J):
            z = xr[k] * scale_l[k] + shift_l[k]
            t = slope * z
            yr[k] = z if z >= t else t


@njit(parallel=True, cache=True, fastmath=REASSOC)
def _bn_backward_sums_rows(x, y, gy, L, masked, one, slope, mean, inv_std, gw, gb):
    """_bn_backward_sums_kernel for (N, C·L) rows."""
    N, J = x.shape
    C = J // L
    cb, nb = _channel_blocks(C, L)
    for b in prange(nb):
        c0 = b * cb
        nc = min(C, c0 + cb) - c0
        j0 = c0 * L
        w = nc * L
        mu_l = np.empty(w, dtype=mean.dtype)
        s_l = np.empty(w, dtype=mean.dtype)
        for c in range(nc):
            for l in range(L):
                mu_l[c * L + l] = mean[c0 + c]
                s_l[c * L + l] = inv_std[c0 + c]
        acc_b = np.zeros(w)
        acc_w = np.zeros(w)
        for n in range(N):
            xr = x[n, j0:j0 + w]
            yr = y[n, j0:j0 + w]
            gr = gy[n, j0:j0 + w]
            for k in range(w):
                g = gr[k]
                if masked:
                    g = (one if yr[k] > 0 else slope) * g
                acc_b[k] += g
                acc_w[k] += g * ((xr[k] - mu_l[k]) * s_l[k])
        for c in range(nc):
            sb = 0.0
            sw = 0.0
            for l in range(L):
                sb += acc_b[c * L + l]
                sw += acc_w[c * L + l]
            gb[c0 + c] = sb
            gw[c0 + c] = sw


@njit(parallel=True, cache=True)
def _bn_backward_gx_rows(x, y, gy, masked, one, slope, mu_l, s_l, k_l, b_l, w_l, M, gx):
    """_bn_backward_gx_kernel for (N, C·L) rows; the per-channel constants repeated per lane."""
    N, J = x.shape
    for n in prange(N):
        xr = x[n]
        yr = y[n]
        gr = gy[n]
        out = gx[n]
        for k in range(J):
            g = gr[k]
            if masked:
                g = (one if yr[k] > 0 else slope) * g
            xhat = (xr[k] - mu_l[k]) * s_l[k]
            out[k] = k_l[k] * (M * g - b_l[k] - xhat * w_l[k])


_bn_stats_rows_serial, _bn_act_rows_serial, _bn_backward_sums_rows_serial, \
    _bn_backward_gx_rows_serial = map(_serial_twin, (_bn_stats_rows, _bn_act_rows,
                                                     _bn_backward_sums_rows, _bn_backward_gx_rows))


def _as_ncl(x):
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def batch_norm_stats(x):
    if not _fast_dtype(x):
        return reference.batch_norm_stats(x)
    C = x.shape[1]
    mean, var = np.empty(C, dtype=x.dtype), np.empty(C, dtype=x.dtype)
    x3 = _as_ncl(x)
    N, _, L = x3.shape
    if L < SHORT_ROW:
        _pick(_bn_stats_rows, _bn_stats_rows_serial, x.size)(x3.reshape(N, C * L), L, mean, var)
    else:
        _pick(_bn_stats_kernel, _bn_stats_serial, x.size)(x3, mean, var)
    return mean, var


def _bn_apply(x, mean, inv_std, weight, bias, slope):
    # The same (C,) arithmetic as the reference, so that y agrees to the last bit.
    scale = weight * inv_std
    shift = bias - mean * scale
    x3 = _as_ncl(x)
    N, C, L = x3.shape
    scale, shift = np.asarray(scale, dtype=x.dtype), np.asarray(shift, dtype=x.dtype)
    y = np.empty(x.shape, dtype=x.dtype)
    if L < SHORT_ROW:
        _pick(_bn_act_rows, _bn_act_rows_serial, x.size)(
            x3.reshape(N, C * L), np.repeat(scale, L), np.repeat(shift, L), x.dtype.type(slope),
            y.reshape(N, C * L))
    else:
        _pick(_bn_act_kernel, _bn_act_serial, x.size)(
            x3, np.ascontiguousarray(scale), np.ascontiguousarray(shift), x.dtype.type(slope),
            y.reshape(x3.shape))
    return y


def _bn_backward(x, y, gy, mean, inv_std, weight, slope):
    """slope None: plain batch_norm_backward (y unused); else through the activation too."""
    dt = x.dtype
    t = dt.type
    masked = slope is not None
    one = t(t(1 - slope) + t(slope)) if masked else t(1)   # leaky_relu_grad's scale for y > 0
    slope = t(slope) if masked else t(0)
    x3, gy3 = _as_ncl(x), _as_ncl(gy)
    y3 = _as_ncl(y) if masked else x3                      # a placeholder, never read
    C = x.shape[1]
    M = x.size // C
    mean = np.ascontiguousarray(mean, dtype=dt)
    inv_std = np.ascontiguousarray(inv_std, dtype=dt)
    gw, gb = np.empty(C, dtype=dt), np.empty(C, dtype=dt)
    k = np.ascontiguousarray(weight * inv_std / M, dtype=dt)
    gx = np.empty(x.shape, dtype=dt)
    N, _, L = x3.shape
    if L < SHORT_ROW:
        x2, y2, gy2 = (a.reshape(N, C * L) for a in (x3, y3, gy3))
        _pick(_bn_backward_sums_rows, _bn_backward_sums_rows_serial, x.size)(
            x2, y2, gy2, L, masked, one, slope, mean, inv_std, gw, gb)
        _pick(_bn_backward_gx_rows, _bn_backward_gx_rows_serial, x.size)(
            x2, y2, gy2, masked, one, slope, *(np.repeat(a, L) for a in (mean, inv_std, k, gb, gw)),
            t(M), gx.reshape(N, C * L))
    else:
        _pick(_bn_backward_sums_kernel, _bn_backward_sums_serial, x.size)(
            x3, y3, gy3, masked, one, slope, mean, inv_std, gw, gb)
        _pick(_bn_backward_gx_kernel, _bn_backward_gx_serial, x.size)(
            x3, y3, gy3, masked, one, slope, mean, inv_std, k, gb, gw, t(M), gx.reshape(x3.shape))
    return gx, gw, gb


def batch_norm_apply(x, mean, inv_std, weight, bias):
    if not _fast_dtype(x):
        return reference.batch_norm_apply(x, mean, inv_std, weight, bias)
    return _bn_apply(x, mean, inv_std, weight, bias, 1.0)


def batch_norm_backward(x, gy, mean, inv_std, weight):
    if not _fast_dtype(x, gy):
        return reference.batch_norm_backward(x, gy, mean, inv_std, weight)
    return _bn_backward(x, None, gy, mean, inv_std, weight, None)


def batch_norm_act_apply(x, mean, inv_std, weight, bias, slope):
    if not _fast_dtype(x) or not 0 <= slope <= 1:
        return reference.batch_norm_act_apply(x, mean, inv_std, weight, bias, slope)
    return _bn_apply(x, mean, inv_std, weight, bias, slope)


def batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope):
    if not _fast_dtype(x, y, gy) or not 0 <= slope <= 1 or not x.shape == y.shape == gy.shape:
        return reference.batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope)
    return _bn_backward(x, y, gy, mean, inv_std, weight, slope)


# ---------------------------------------------------------------------------------------
# Leaky ReLU: flat elementwise loops; the scalars are cast to the array's dtype first, so
# the arithmetic is the reference's (NumPy computes `slope * x` in float32 for float32 x).

@njit(parallel=True, cache=True)
def _leaky_relu_kernel(x, slope, y):
    if slope <= 1:
        for k in prange(x.size):
            t = slope * x[k]
            y[k] = x[k] if x[k] >= t else t       # max(x, slope x); a NaN x gives NaN
    else:
        for k in prange(x.size):
            t = slope * x[k]
            y[k] = x[k] if x[k] <= t else t


@njit(parallel=True, cache=True)
def _leaky_relu_grad_kernel(y, gy, one, slope, gx):
    for k in prange(gy.size):
        gx[k] = (one if y[k] > 0 else slope) * gy[k]


_leaky_relu_serial, _leaky_relu_grad_serial = map(_serial_twin, (_leaky_relu_kernel,
                                                               _leaky_relu_grad_kernel))


def leaky_relu(x, slope):
    if not _fast_dtype(x):
        return reference.leaky_relu(x, slope)
    xc = np.ascontiguousarray(x)
    y = np.empty(x.shape, dtype=x.dtype)
    _pick(_leaky_relu_kernel, _leaky_relu_serial, x.size)(xc.reshape(-1), x.dtype.type(slope), y.reshape(-1))
    return y


def leaky_relu_grad(y, gy, slope):
    if not _fast_dtype(y, gy) or y.shape != gy.shape:
        return reference.leaky_relu_grad(y, gy, slope)
    t = gy.dtype.type
    # The reference's scale is mask * (1 - slope) + slope, rounded in gy's dtype.
    one = t(t(1 - slope) + t(slope))
    gx = np.empty(gy.shape, dtype=gy.dtype)
    _pick(_leaky_relu_grad_kernel, _leaky_relu_grad_serial, gy.size)(
        np.ascontiguousarray(y).reshape(-1), np.ascontiguousarray(gy).reshape(-1), one, t(slope),
        gx.reshape(-1))
    return gx


# ---------------------------------------------------------------------------------------
# Optimizer updates: in place on flat views, in the reference's operation order.  A
# parameter or state array that is not C-contiguous (so has no flat view to update in
# place) takes the reference path.

def _flat_inplace(*arrays) -> bool:
    return _fast_dtype(*arrays) and all(a.flags.c_contiguous for a in arrays)


@njit(parallel=True, cache=True)
def _sgd_kernel(p, g, buf, has_buf, lr, momentum, one_minus_damp, wd, nesterov, first):
    for k in prange(p.size):
        d = g[k]
        if wd != 0:
            d = d + wd * p[k]
        if has_buf:
            if first:
                b = d
            else:
                b = buf[k] * momentum
                b = b + one_minus_damp * d
            buf[k] = b
            d = d + momentum * b if nesterov else b
        p[k] -= lr * d


@njit(parallel=True, cache=True)
def _adam_kernel(p, g, m, v, step_size, one_minus_b1, beta2, one_minus_b2, bc2_sqrt, eps, wd):
    for k in prange(p.size):
        d = g[k]
        if wd != 0:
            d = d + wd * p[k]
        mk = m[k] + one_minus_b1 * (d - m[k])
        vk = v[k] * beta2
        vk = vk + one_minus_b2 * d * d
        m[k] = mk
        v[k] = vk
        p[k] -= step_size * mk / (np.sqrt(vk) / bc2_sqrt + eps)


@njit(parallel=True, cache=True)
def _rmsprop_kernel(p, g, sq, ga, centered, buf, has_buf, lr, alpha, one_minus_alpha, eps, wd,
                    momentum):
    for k in prange(p.size):
        d = g[k]
        if wd != 0:
            d = d + wd * p[k]
        s = sq[k] * alpha
        s = s + one_minus_alpha * d * d
        sq[k] = s
        if centered:
            a = ga[k] + one_minus_alpha * (d - ga[k])
            ga[k] = a
            denom = np.sqrt(s - a * a) + eps
        else:
            denom = np.sqrt(s) + eps
        if has_buf:
            b = buf[k] * momentum
            b = b + d / denom
            buf[k] = b
            p[k] -= lr * b
        else:
            p[k] -= lr * d / denom


_sgd_serial, _adam_serial, _rmsprop_serial = map(_serial_twin, (_sgd_kernel, _adam_kernel,
                                                                 _rmsprop_kernel))


def sgd_update(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
               first=False):
    arrays = (p, g) if buf is None else (p, g, buf)
    if not _flat_inplace(*arrays):
        return reference.sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov,
                                    first)
    t = p.dtype.type
    b = p if buf is None else buf               # a dummy when there is no buffer: never read
    _pick(_sgd_kernel, _sgd_serial, p.size)(
        p.reshape(-1), g.reshape(-1), b.reshape(-1), buf is not None, t(lr), t(momentum),
        t(1 - dampening), t(weight_decay), bool(nesterov), bool(first))


def adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay=0.0):
    if not _flat_inplace(p, g, m, v):
        return reference.adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)
    t = p.dtype.type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    _pick(_adam_kernel, _adam_serial, p.size)(
        p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(lr / bias_correction1),
        t(1 - beta1), t(beta2), t(1 - beta2), t(bias_correction2_sqrt), t(eps), t(weight_decay))


def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay=0.0,
                   momentum=0.0):
    arrays = [p, g, square_avg] + [a for a in (grad_avg, buf) if a is not None]
    if not _flat_inplace(*arrays):
        return reference.rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps,
                                        weight_decay, momentum)
    t = p.dtype.type
    ga = p if grad_avg is None else grad_avg    # dummies when absent: never read
    b = p if buf is None else buf
    _pick(_rmsprop_kernel, _rmsprop_serial, p.size)(
        p.reshape(-1), g.reshape(-1), square_avg.reshape(-1), ga.reshape(-1),
        grad_avg is not None, b.reshape(-1), buf is not None, t(lr), t(alpha), t(1 - alpha),
        t(eps), t(weight_decay), t(momentum))


# ---------------------------------------------------------------------------------------
# Minibatch discrimination's pairwise L1 distances: one pass over the (i, j) pairs each,
# the signs S[i, j, b, c] recomputed from M instead of stored (the reference materialises
# (N, N, B, C) arrays: 8 MB each at batch 64, B = 100, C = 5).  Sums run over c (forward,
# adjoint) or j (gradient) in the reference's order (the adjoint's short sum over c in float64).

@njit(parallel=True, cache=True)
def _pairwise_l1_kernel(M, out):
    N, B, C = M.shape
    for i in prange(N):
        for j in range(N):
            for b in range(B):
                s = abs(M[i, b, 0] - M[j, b, 0])
                for c in range(1, C):
                    s += abs(M[i, b, c] - M[j, b, c])
                out[i, j, b] = s


@njit(parallel=True, cache=True)
def _pairwise_l1_grad_kernel(M, g, zero, out):
    # j outside (b, c): the inner loops run along rows of M and out; each out[k, b, c] still
    # receives its terms in the reference's j order.
    N, B, C = M.shape
    for k in prange(N):
        for b in range(B):
            for c in range(C):
                out[k, b, c] = zero
        for j in range(N):
            for b in range(B):
                w = g[k, j, b] + g[j, k, b]
                for c in range(C):
                    d = M[k, b, c] - M[j, b, c]
                    out[k, b, c] += w * ((d > 0) - (d < 0))


@njit(parallel=True, cache=True)
def _pairwise_l1_grad_adjoint_kernel(M, u, zero, out):
    N, B, C = M.shape
    for k in prange(N):
        for j in range(N):
            for b in range(B):
                acc = zero
                for c in range(C):
                    d = M[k, b, c] - M[j, b, c]
                    acc += ((d > 0) - (d < 0)) * (u[k, b, c] - u[j, b, c])
                out[k, j, b] = acc


_pairwise_serial = {k: _serial_twin(k) for k in (
    _pairwise_l1_kernel, _pairwise_l1_grad_kernel, _pairwise_l1_grad_adjoint_kernel)}


def _pairwise(kernel, M, a, out_shape):
    out = np.empty(out_shape, dtype=M.dtype)
    args = (np.ascontiguousarray(M),)
    if a is not None:
        args += (np.ascontiguousarray(a), M.dtype.type(0))
    size = M.shape[0] * M.shape[0] * M.shape[1] * M.shape[2]
    _pick(kernel, _pairwise_serial[kernel], size)(*args, out)
    return out


def pairwise_l1(M):
    if not _fast_dtype(M) or M.ndim != 3 or M.shape[2] == 0:
        return reference.pairwise_l1(M)
    return _pairwise(_pairwise_l1_kernel, M, None, (M.shape[0], M.shape[0], M.shape[1]))


def pairwise_l1_grad(M, g):
    if not _fast_dtype(M, g) or M.ndim != 3 or g.shape != (M.shape[0],) * 2 + M.shape[1:2]:
        return reference.pairwise_l1_grad(M, g)
    return _pairwise(_pairwise_l1_grad_kernel, M, g, M.shape)


def pairwise_l1_grad_adjoint(M, u):
    if not _fast_dtype(M, u) or M.ndim != 3 or u.shape != M.shape:
        return reference.pairwise_l1_grad_adjoint(M, u)
    return _pairwise(_pairwise_l1_grad_adjoint_kernel, M, u, (M.shape[0], M.shape[0], M.shape[1]))


for _name in ("matmul", "im2col", "col2im", "conv2d", "conv_transpose2d", "conv2d_grad_weight",
              "batch_norm_stats", "batch_norm_apply", "batch_norm_backward",
              "batch_norm_act_apply", "batch_norm_act_backward",
              "leaky_relu", "leaky_relu_grad", "sgd_update", "adam_update", "rmsprop_update",
              "pairwise_l1", "pairwise_l1_grad", "pairwise_l1_grad_adjoint"):
    register(_name, "cpu", globals()[_name])
