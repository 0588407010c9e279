"""Winograd F(2×2, 2×2) for the DCGAN's convolutions: kernel 4, stride 2, padding 1.

Why.  On 2 cores the DCGAN step is bound by its GEMMs (docs/performance.md: where a step's
time goes).  A stride-2 4×4 convolution is four stride-1 2×2 convolutions, one per *phase*
of the padded input, and a stride-1 2×2 convolution has a minimal-multiplication algorithm
(Winograd 1980; Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks"): each
2×2 output tile costs 9 products per (input channel, output channel) instead of 16 — 0.5625×
the GEMM FLOPs.

The phase split.  With xpad = x zero-padded by 1 and xph[a, b][P, Q] = xpad[2P + a, 2Q + b]
(a, b ∈ {0, 1}), the kernel tap (j, i) = (2u + a, 2v + b) only ever meets phase (a, b):

    y[n, o, p, q] = Σ_{c, a, b} Σ_{u, v ∈ {0,1}} W[o, c, 2u+a, 2v+b] · xph[a, b][n, c, p+u, q+v]

— a stride-1 2×2 correlation over 4·C "phase channels" (c, a, b).

F(2, 2) in one dimension: y0 = d0 g0 + d1 g1, y1 = d1 g0 + d2 g1 from three products,

    m0 = (d0 - d1) g0,   m1 = d1 (g0 + g1),   m2 = (d2 - d1) g1;   y0 = m0 + m1,  y1 = m1 + m2,

i.e. y = Aᵀ[(G g) ⊙ (Bᵀ d)] with the matrices below; in two dimensions each factor is
applied along both axes: a 3×3 data tile d (rows 2T..2T+2 of a phase) and a 2×2 filter g
become 3×3 = 9 "points" k, and for every point the sum over phase channels is ONE matrix
product over the whole batch:

    V[k] (4C, N·tiles) = Bᵀ d B          per data tile        (input transform)
    U[k] (OC, 4C)      = G g Gᵀ          per filter           (filter transform)
    M[k] (OC, N·tiles) = U[k] @ V[k]     9 GEMMs
    y tile (2×2)       = Aᵀ M A                               (output transform)

The weight gradient is the same algorithm with the roles of filter and output swapped:
gW[o, (c,a,b), u, v] = Σ_{n,p,q} gy[n,o,p,q] · xph[a,b][n,c,p+u,q+v]; splitting p = 2T + s
makes each term a 2×2 "filter" (a tile of gy) correlated with a 3×3 data tile — the very
tiles, hence the very V, of the forward:

    Ugy[k] (OC, N·tiles) = G gy_tile Gᵀ,   M'[k] = Ugy[k] @ V[k]ᵀ (OC, 4C),   gW = Aᵀ M' A.

All transform coefficients are 0 and ±1 (sums and differences), so float32 rounding stays
at the level of a reordered GEMM sum.  Tiles must fit exactly: H and W multiples of 4
(OH, OW even); everything else takes the im2col path of cpu/conv.py.

The transposed convolution (conv2d's input gradient, and a generator's layers) is the adjoint
of the same linear map, each step transposed and taken in reverse order:

    gM[k] (OC, N·tiles) = A g Aᵀ          per 2×2 tile g of gy  (adjoint of Aᵀ M A; A = G,
                                                                so it is Ugy of the weight gradient)
    gV[k] (4C, N·tiles) = U[k]ᵀ @ gM[k]   9 GEMMs
    gx                  = B gV Bᵀ         per tile, added back where the data tile was read
                                          (adjacent tiles of a phase share a row or column)

Written per output phase instead it needed 4 phases × 9 points = 36 thin GEMMs, which MKL ran
no faster than the one big im2col GEMM; as the adjoint it is 9 GEMMs with the forward's shapes,
which made G3's shape and the DCGAN step faster (the figures: docs/performance.md).

`conv2d_readable`, `conv2d_grad_weight_readable` and `conv_transpose2d_readable` are the
algorithm in NumPy einsums (the teaching version, tested against reference.py); the Numba
loops below compute the same transforms in one parallel pass each.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import blas

# F(2, 2): y = AT [(G g) * (BT d)]  (1-D; 2-D applies each along both axes)
BT = np.array([[1, -1, 0], [0, 1, 0], [0, -1, 1]], dtype=np.float64)
G = np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float64)


# Below this many input channels the 9 GEMMs are too thin (K = 4C) to pay for the transforms:
# D1's (C = 1) forward and weight gradient took about twice their im2col time.
MIN_CHANNELS = 16


def applies(x_shape, kernel_size, stride, padding) -> bool:
    """Whether conv2d / conv2d_grad_weight of an NCHW x of `x_shape` take this path."""
    return (tuple(kernel_size) == (4, 4) and tuple(stride) == (2, 2)
            and tuple(padding) == (1, 1) and len(x_shape) == 4
            and x_shape[2] % 4 == 0 and x_shape[3] % 4 == 0
            and x_shape[1] >= MIN_CHANNELS and min(x_shape) > 0)


def applies_transposed(x_shape, w_shape, stride, padding) -> bool:
    """Whether conv_transpose2d of an NCHW x by w (C_in, C_out, 4, 4) takes this path: the
    adjoint of a conv2d that `applies`, to an output of (2H, 2W) (output_padding 0)."""
    return (len(x_shape) == 4 and len(w_shape) == 4 and w_shape[0] == x_shape[1]
            and applies((x_shape[0], w_shape[1], 2 * x_shape[2], 2 * x_shape[3]),
                        w_shape[2:], stride, padding))


# ---------------------------------------------------------------------------------------
# The readable version

def _data_tiles(x):
    """d[n, c, a, b, T, S, r, s] = xph[a, b][n, c, 2T + r, 2S + s]: the 3×3 tiles of each phase."""
    N, C, H, W = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    xph = xpad.reshape(N, C, H // 2 + 1, 2, W // 2 + 1, 2).transpose(0, 1, 3, 5, 2, 4)
    TH, TW = H // 4, W // 4
    d = np.empty((N, C, 2, 2, TH, TW, 3, 3), dtype=x.dtype)
    for r in range(3):
        for s in range(3):
            d[..., r, s] = xph[..., r:r + 2 * TH:2, s:s + 2 * TW:2]
    return d


def _input_transform_readable(x):
    """V[k, l, c, a, b, n, T, S] = (Bᵀ d B)[k, l] of each data tile."""
    return np.einsum("kr,ls,ncabTSrs->klcabnTS", BT, BT, _data_tiles(x))


def conv2d_readable(x, w):
    """conv2d(x, w, stride 2, padding 1) for a 4×4 w, by Winograd F(2×2, 2×2) in einsums."""
    N, C, H, W = x.shape
    OC = w.shape[0]
    V = _input_transform_readable(x)
    wph = w.reshape(OC, C, 2, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4)   # [o, c, a, b, u, v]
    U = np.einsum("ku,lv,ocabuv->klocab", G, G, wph)
    M = np.einsum("klocab,klcabnTS->klonTS", U, V)                  # the 9 products
    y = np.einsum("ik,jl,klonTS->noTiSj", AT, AT, M)                # [n, o, T, α, S, β]
    return y.reshape(N, OC, H // 2, W // 2).astype(x.dtype)


def conv2d_grad_weight_readable(x, gy):
    """conv2d_grad_weight(x, gy, 4×4, stride 2, padding 1) by the same algorithm."""
    N, OC, OH, OW = gy.shape
    C = x.shape[1]
    V = _input_transform_readable(x)
    g = gy.reshape(N, OC, OH // 2, 2, OW // 2, 2)                    # [n, o, T, s, S, t]
    Ugy = np.einsum("ks,lt,noTsSt->klonTS", G, G, g)
    Mp = np.einsum("klonTS,klcabnTS->klocab", Ugy, V)               # the 9 products
    gwp = np.einsum("uk,vl,klocab->ocabuv", AT, AT, Mp)             # [o, c, a, b, u, v]
    return gwp.transpose(0, 1, 4, 2, 5, 3).reshape(OC, C, 4, 4).astype(x.dtype)


def conv_transpose2d_readable(x, w):
    """conv_transpose2d(x, w, stride 2, padding 1) for w (C_in, C_out, 4, 4): the adjoint of
    conv2d_readable(., w) (w read as a conv weight, C_in = its output channels), each step of
    the forward transposed and taken in reverse order."""
    N, Ci, H, W = x.shape
    Co = w.shape[1]
    g = x.reshape(N, Ci, H // 2, 2, W // 2, 2)                      # [n, o, T, α, S, β]
    gM = np.einsum("ik,jl,noTiSj->klonTS", AT, AT, g)               # adjoint of Aᵀ m A
    wph = w.reshape(Ci, Co, 2, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4)  # [o, c, a, b, u, v]
    U = np.einsum("ku,lv,ocabuv->klocab", G, G, wph)
    gV = np.einsum("klocab,klonTS->klcabnTS", U, gM)                # the 9 products, Uᵀ
    gd = np.einsum("kr,ls,klcabnTS->ncabTSrs", BT, BT, gV)          # adjoint of Bᵀ d B
    # ... and of _data_tiles: every tile added back where it was read (neighbours overlap by
    # one row / column of their phase), then the padding cut off
    TH, TW = H // 2, W // 2
    ypad = np.zeros((N, Co, 2 * H + 2, 2 * W + 2), dtype=np.result_type(x, w))
    yph = ypad.reshape(N, Co, H + 1, 2, W + 1, 2).transpose(0, 1, 3, 5, 2, 4)   # a view
    for r in range(3):
        for s in range(3):
            yph[..., r:r + 2 * TH:2, s:s + 2 * TW:2] += gd[..., r, s]
    return ypad[:, :, 1:-1, 1:-1].astype(x.dtype)


# ---------------------------------------------------------------------------------------
# The fast version: one parallel Numba pass per transform, MKL (blas.matmul) for the 9 GEMMs.
#
# Layouts: V (9, 4C, tiles) and M (9, OC, tiles), point-major so that each GEMM operand is one
# contiguous matrix; phase channel index c·4 + a·2 + b; tile index (T·TW + S)·N + n — the batch
# innermost.  The planes are tiny (a D3 phase has 2×2 tiles), so the only long run of
# independent tiles is the batch: with n innermost every transform is a loop over 64
# contiguous values that LLVM vectorises, after one transpose of each (c, ·) plane stack into
# (pixel, n) order in a thread-local buffer (with the zero padding built in).  With n
# outermost the same transforms ran as scalar code, several times a plain fill of V.  Indices
# are uint64 (see cpu/gathers.py: a signed index is wrapped, which keeps the loops scalar).

U64 = np.uint64


# The three 2-D transforms of F(2, 2), one scalar tile at a time (LLVM inlines them into the
# loops below).  Outputs in point order k = 3·row + col.

@njit(cache=True)
def _bt_d_b(d00, d01, d02, d10, d11, d12, d20, d21, d22):
    """Bᵀ d B of a 3×3 data tile: Bᵀ d along the rows, then along the columns."""
    e00, e01, e02 = d00 - d10, d01 - d11, d02 - d12
    e20, e21, e22 = d20 - d10, d21 - d11, d22 - d12
    return (e00 - e01, e01, e02 - e01, d10 - d11, d11, d12 - d11, e20 - e21, e21, e22 - e21)


@njit(cache=True)
def _g_g_gt(g00, g01, g10, g11):
    """G g Gᵀ of a 2×2 filter (or gy tile)."""
    h0, h1, h2 = g00, g00 + g10, g10          # G g, column 0
    i0, i1, i2 = g01, g01 + g11, g11          # G g, column 1
    return (h0, h0 + i0, i0, h1, h1 + i1, i1, h2, h2 + i2, i2)


@njit(cache=True)
def _at_m_a(m00, m01, m02, m10, m11, m12, m20, m21, m22):
    """Aᵀ m A of the 3×3 points of one tile: the 2×2 output (y00, y01, y10, y11)."""
    z00, z01, z02 = m00 + m10, m01 + m11, m02 + m12      # Aᵀ m, row 0
    z10, z11, z12 = m10 + m20, m11 + m21, m12 + m22      # Aᵀ m, row 1
    return z00 + z01, z01 + z02, z10 + z11, z11 + z12


@njit(cache=True)
def _put_points(f, t, P, v):
    """f[k·P + t] = v[k] for the 9 points: one value into each point's plane."""
    for k in range(9):
        f[U64(k) * P + t] = v[k]


@njit(parallel=True, cache=True)
def _input_kernel(x, V):
    """V[3k + l, c·4 + a·2 + b, tile] = (Bᵀ d B)[k, l] for each 3×3 data tile d of x's phases."""
    N, C, H, W = x.shape
    TH, TW, Wp = H // 4, W // 4, W + 2
    NT = N * TH * TW
    P = U64(4 * C * NT)                          # one point's plane
    xf, Vf = x.reshape(-1), V.reshape(-1)
    n2, n4 = U64(2 * N), U64(4 * N)
    for c in prange(C):
        # pad[(h, w), n] = xpad[n, c, h, w]: tile row r of phase a is padded row 4T + a + 2r
        # (filled 16 images at a time, n innermost: its writes then run contiguously; with
        # the pixel innermost they scatter over the 83 KB buffer of a D2 channel, 3-4x slower)
        pad = np.zeros((H + 2) * Wp * N, dtype=x.dtype)
        for n0 in range(0, N, 16):
            for h in range(H):
                for w in range(W):
                    dst = U64(((h + 1) * Wp + w + 1) * N)
                    src = U64(c * H * W + h * W + w)
                    for n in range(n0, min(N, n0 + 16)):
                        pad[dst + U64(n)] = xf[src + U64(n * C * H * W)]
        for a in range(2):
            for b in range(2):
                ch = U64((c * 4 + a * 2 + b) * NT)
                for T in range(TH):
                    for S in range(TW):
                        o0 = U64(((4 * T + a) * Wp + 4 * S + b) * N)
                        o1, o2 = o0 + U64(2 * Wp * N), o0 + U64(4 * Wp * N)
                        t0 = ch + U64((T * TW + S) * N)
                        for n in range(N):
                            m = U64(n)
                            d00, d01, d02 = pad[o0 + m], pad[o0 + n2 + m], pad[o0 + n4 + m]
                            d10, d11, d12 = pad[o1 + m], pad[o1 + n2 + m], pad[o1 + n4 + m]
                            d20, d21, d22 = pad[o2 + m], pad[o2 + n2 + m], pad[o2 + n4 + m]
                            v = _bt_d_b(d00, d01, d02, d10, d11, d12, d20, d21, d22)
                            _put_points(Vf, t0 + m, P, v)


@njit(cache=True)
def _b_v_bt(v00, v01, v02, v10, v11, v12, v20, v21, v22):
    """B v Bᵀ of the 3×3 points of one tile (the adjoint of _bt_d_b): a 3×3 data tile."""
    e00, e01, e02 = v00, v01, v02                                  # B v, rows
    e10, e11, e12 = v10 - v00 - v20, v11 - v01 - v21, v12 - v02 - v22
    e20, e21, e22 = v20, v21, v22
    return (e00, e01 - e00 - e02, e02, e10, e11 - e10 - e12, e12, e20, e21 - e20 - e22, e22)


@njit(parallel=True, cache=True)
def _input_adjoint_kernel(gV, y):
    """The adjoint of _input_kernel: each (B gV Bᵀ) tile added back onto the padded pixels its
    data tile was read from, the padding cut off; y (N, C, H, W) is overwritten."""
    N, C, H, W = y.shape
    TH, TW, Wp = H // 4, W // 4, W + 2
    NT = N * TH * TW
    P = U64(4 * C * NT)
    P2, P3, P4, P5, P6, P7, P8 = (U64(2) * P, U64(3) * P, U64(4) * P, U64(5) * P, U64(6) * P,
                                  U64(7) * P, U64(8) * P)
    Vf, yf = gV.reshape(-1), y.reshape(-1)
    n2, n4 = U64(2 * N), U64(4 * N)
    R = max(1, min(H, 128 // W))                 # rows per run of the copy out
    for c in prange(C):
        # pad[(h, w), n]: a channel's padded planes, batch innermost like _input_kernel's, so
        # that the adds run over 64 contiguous values; one thread owns it (no races)
        pad = np.zeros((H + 2) * Wp * N, dtype=y.dtype)
        for a in range(2):
            for b in range(2):
                ch = U64((c * 4 + a * 2 + b) * NT)
                for T in range(TH):
                    for S in range(TW):
                        o0 = U64(((4 * T + a) * Wp + 4 * S + b) * N)
                        o1, o2 = o0 + U64(2 * Wp * N), o0 + U64(4 * Wp * N)
                        t0 = ch + U64((T * TW + S) * N)
                        for n in range(N):
                            m = U64(n)
                            t = t0 + m
                            d = _b_v_bt(Vf[t], Vf[P + t], Vf[P2 + t], Vf[P3 + t], Vf[P4 + t],
                                        Vf[P5 + t], Vf[P6 + t], Vf[P7 + t], Vf[P8 + t])
                            pad[o0 + m] += d[0]
                            pad[o0 + n2 + m] += d[1]
                            pad[o0 + n4 + m] += d[2]
                            pad[o1 + m] += d[3]
                            pad[o1 + n2 + m] += d[4]
                            pad[o1 + n4 + m] += d[5]
                            pad[o2 + m] += d[6]
                            pad[o2 + n2 + m] += d[7]
                            pad[o2 + n4 + m] += d[8]
        # pad's interior out to y[n, c]: 16 images at a time over R rows, so that the strided
        # reads stay in L1 while each image's rows go out as one run of R·W floats (the whole
        # plane an image at a time re-read pad from L2 for every image, markedly slower)
        for n0 in range(0, N, 16):
            for h0 in range(0, H, R):
                for n in range(n0, min(N, n0 + 16)):
                    dst = U64((n * C + c) * H * W)
                    for h in range(h0, min(H, h0 + R)):
                        src = U64(((h + 1) * Wp + 1) * N + n)
                        for w in range(W):
                            yf[dst + U64(h * W + w)] = pad[src + U64(w * N)]


@njit(parallel=True, cache=True)
def _filter_kernel(w, U):
    """U[3k + l, o, c·4 + a·2 + b] = (G g Gᵀ)[k, l] for the 2×2 filter g[u, v] = w[o, c, 2u+a, 2v+b]."""
    OC, C = w.shape[:2]
    for o in prange(OC):
        for c in range(C):
            for a in range(2):
                for b in range(2):
                    g00, g01 = w[o, c, a, b], w[o, c, a, b + 2]
                    g10, g11 = w[o, c, a + 2, b], w[o, c, a + 2, b + 2]
                    u = _g_g_gt(g00, g01, g10, g11)
                    col = c * 4 + a * 2 + b
                    for k in range(9):
                        U[k, o, col] = u[k]


@njit(parallel=True, cache=True)
def _output_kernel(M, y):
    """y[n, o, 2T + α, 2S + β] = (Aᵀ m A)[α, β] for the 3×3 points m of each tile."""
    N, OC, OH, OW = y.shape
    TH, TW = OH // 2, OW // 2
    NT = N * TH * TW
    P = U64(OC * NT)
    P2, P3, P4, P5, P6, P7, P8 = (U64(2) * P, U64(3) * P, U64(4) * P, U64(5) * P, U64(6) * P,
                                  U64(7) * P, U64(8) * P)
    Mf, yf = M.reshape(-1), y.reshape(-1)
    n_, ow = U64(N), U64(OW)
    for o in prange(OC):
        out = np.empty(OH * OW * N, dtype=y.dtype)       # out[(p, q), n], then transposed
        for T in range(TH):
            for S in range(TW):
                t0 = U64(o * NT + (T * TW + S) * N)
                d0 = U64((2 * T * OW + 2 * S) * N)
                d1 = d0 + ow * n_
                for n in range(N):
                    t = t0 + U64(n)
                    m00, m01, m02 = Mf[t], Mf[P + t], Mf[P2 + t]
                    m10, m11, m12 = Mf[P3 + t], Mf[P4 + t], Mf[P5 + t]
                    m20, m21, m22 = Mf[P6 + t], Mf[P7 + t], Mf[P8 + t]
                    y00, y01, y10, y11 = _at_m_a(m00, m01, m02, m10, m11, m12, m20, m21, m22)
                    m = U64(n)
                    out[d0 + m], out[d0 + n_ + m] = y00, y01
                    out[d1 + m], out[d1 + n_ + m] = y10, y11
        for n in range(N):
            dst = U64((n * OC + o) * OH * OW)
            for k in range(OH * OW):
                yf[dst + U64(k)] = out[U64(k * N + n)]


@njit(parallel=True, cache=True)
def _gy_kernel(gy, Ugy):
    """Ugy[3k + l, o, tile] = (G g Gᵀ)[k, l] for each 2×2 tile g of gy."""
    N, OC, OH, OW = gy.shape
    TH, TW = OH // 2, OW // 2
    NT = N * TH * TW
    P = U64(OC * NT)
    gf, Uf = gy.reshape(-1), Ugy.reshape(-1)
    n_, ow = U64(N), U64(OW)
    for o in prange(OC):
        g = np.empty(OH * OW * N, dtype=gy.dtype)         # g[(p, q), n] = gy[n, o, p, q]
        for n in range(N):
            src = U64((n * OC + o) * OH * OW)
            for k in range(OH * OW):
                g[U64(k * N + n)] = gf[src + U64(k)]
        for T in range(TH):
            for S in range(TW):
                s0 = U64((2 * T * OW + 2 * S) * N)
                s1 = s0 + ow * n_
                t0 = U64(o * NT + (T * TW + S) * N)
                for n in range(N):
                    m = U64(n)
                    u = _g_g_gt(g[s0 + m], g[s0 + n_ + m], g[s1 + m], g[s1 + n_ + m])
                    _put_points(Uf, t0 + m, P, u)


@njit(parallel=True, cache=True)
def _grad_weight_output_kernel(Mp, gw):
    """gw[o, c, 2u + a, 2v + b] = (Aᵀ m A)[u, v] for the 3×3 points m of each (o, c, a, b)."""
    OC, C = gw.shape[:2]
    for o in prange(OC):
        for c in range(C):
            for a in range(2):
                for b in range(2):
                    col = c * 4 + a * 2 + b
                    m00, m01, m02 = Mp[0, o, col], Mp[1, o, col], Mp[2, o, col]
                    m10, m11, m12 = Mp[3, o, col], Mp[4, o, col], Mp[5, o, col]
                    m20, m21, m22 = Mp[6, o, col], Mp[7, o, col], Mp[8, o, col]
                    y = _at_m_a(m00, m01, m02, m10, m11, m12, m20, m21, m22)
                    gw[o, c, a, b], gw[o, c, a, b + 2] = y[0], y[1]
                    gw[o, c, a + 2, b], gw[o, c, a + 2, b + 2] = y[2], y[3]


def input_transform(x):
    """V (9, 4C, TH·TW·N) of a C-contiguous float x whose shape `applies`."""
    N, C, H, W = x.shape
    V = np.empty((9, 4 * C, N * (H // 4) * (W // 4)), dtype=x.dtype)
    _input_kernel(x, V)
    return V


def conv2d(V, w, x_shape):
    """conv2d(x, w, stride 2, padding 1) from x's transform V = input_transform(x)."""
    N, C, H, W = x_shape
    OC = w.shape[0]
    U = np.empty((9, OC, 4 * C), dtype=w.dtype)
    _filter_kernel(w, U)
    M = np.empty((9, OC, V.shape[2]), dtype=V.dtype)
    for k in range(9):
        blas.matmul(U[k], V[k], out=M[k])
    y = np.empty((N, OC, H // 2, W // 2), dtype=V.dtype)
    _output_kernel(M, y)
    return y


def gy_transform(gy):
    """Ugy (9, OC, TH·TW·N) of a C-contiguous float gy (N, OC, OH, OW), OH and OW even."""
    N, OC, OH, OW = gy.shape
    Ugy = np.empty((9, OC, N * (OH // 2) * (OW // 2)), dtype=gy.dtype)
    _gy_kernel(gy, Ugy)
    return Ugy


def conv2d_grad_weight(V, Ugy, x_shape):
    """conv2d_grad_weight(x, gy, 4×4, stride 2, padding 1) from x's transform V and gy's Ugy."""
    OC, C = Ugy.shape[1], x_shape[1]
    dtype = Ugy.dtype
    Mp = np.empty((9, OC, 4 * C), dtype=dtype)
    for k in range(9):
        blas.matmul(Ugy[k], V[k].T, out=Mp[k])
    gw = np.empty((OC, C, 4, 4), dtype=dtype)
    _grad_weight_output_kernel(Mp, gw)
    return gw


def conv_transpose2d(gM, w, x_shape):
    """conv_transpose2d(x, w, stride 2, padding 1) for w (C_in, C_out, 4, 4) and an x of
    `x_shape` (N, C_in, H, W), H and W even, from gM = gy_transform(x): the adjoint of conv2d
    (the adjoint of the output transform Aᵀ m A is A g Aᵀ, and A = G, so x's transform is the
    weight gradient's gy transform), 9 GEMMs with Uᵀ, then the adjoint of the input transform."""
    N, Ci, H, W = x_shape
    Co = w.shape[1]
    U = np.empty((9, Ci, 4 * Co), dtype=w.dtype)
    _filter_kernel(w, U)
    gV = np.empty((9, 4 * Co, gM.shape[2]), dtype=gM.dtype)
    for k in range(9):
        blas.matmul(U[k].T, gM[k], out=gV[k])
    y = np.empty((N, Co, 2 * H, 2 * W), dtype=gM.dtype)
    _input_adjoint_kernel(gV, y)
    return y
