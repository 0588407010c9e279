"""Gathers and scatters: im2col and col2im (channel-major for the convolutions' GEMMs,
batch-innermost for the transposed convolution's scatter), and the transposing copies
between layouts.  Each channel (or chunk of the batch of one channel) is one thread's, so
col2im adds into its planes without races and in the reference's order (bit-identical).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference, routed, shared
from ..reference import conv_output_size
from .runtime import MALLOC_TUNED, REFERENCE, _scratch, loops_route


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

def _im2col_route(x, KH, KW, stride, padding):
    return loops_route(x)


@routed(_im2col_route)
def im2col(x, KH, KW, stride, padding):
    if _im2col_route(x, KH, KW, stride, padding)[0] == REFERENCE:
        return reference.im2col(x, KH, KW, stride, padding)
    x = np.ascontiguousarray(x)
    col = np.ascontiguousarray(_im2col_channel_major(x, KH, KW, stride, padding))
    C, _, _, N, OH, OW = col.shape
    out = np.empty((N, C, KH, KW, OH, OW), dtype=x.dtype)
    _swap01(col.reshape(C * KH * KW, N, OH * OW), out.reshape(N, C * KH * KW, OH * OW))
    return out


def _col2im_route(col, x_shape, stride, padding):
    return loops_route(col)


@routed(_col2im_route)
def col2im(col, x_shape, stride, padding):
    if _col2im_route(col, x_shape, stride, padding)[0] == REFERENCE:
        return reference.col2im(col, x_shape, stride, padding)
    col = np.ascontiguousarray(col)
    N, C, KH, KW, OH, OW = col.shape
    colT = _transpose01(col.reshape(N, C * KH * KW, OH * OW), "t")
    return _col2im_channel_major(colT.reshape(C, KH, KW, N, OH, OW), x_shape, stride, padding)
