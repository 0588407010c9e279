"""Batch norm: statistics, apply and backward, plain and fused with a leaky ReLU."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference, routed
from .runtime import (REASSOC, REFERENCE, _pick, _serial_twin, _shapes_differ, loops_route,
                      loops_unless, unfit)

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


def _slope_unfit(slope):
    return None if 0 <= slope <= 1 else f"slope {slope} outside [0, 1]"


def _as_ncl(x):
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def _batch_norm_stats_route(x):
    return loops_route(x)


@routed(_batch_norm_stats_route)
def batch_norm_stats(x):
    if _batch_norm_stats_route(x)[0] == REFERENCE:
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


def _batch_norm_apply_route(x, mean, inv_std, weight, bias):
    return loops_route(x)


@routed(_batch_norm_apply_route)
def batch_norm_apply(x, mean, inv_std, weight, bias):
    if _batch_norm_apply_route(x, mean, inv_std, weight, bias)[0] == REFERENCE:
        return reference.batch_norm_apply(x, mean, inv_std, weight, bias)
    return _bn_apply(x, mean, inv_std, weight, bias, 1.0)


def _batch_norm_backward_route(x, gy, mean, inv_std, weight):
    return loops_route(x, gy)


@routed(_batch_norm_backward_route)
def batch_norm_backward(x, gy, mean, inv_std, weight):
    if _batch_norm_backward_route(x, gy, mean, inv_std, weight)[0] == REFERENCE:
        return reference.batch_norm_backward(x, gy, mean, inv_std, weight)
    return _bn_backward(x, None, gy, mean, inv_std, weight, None)


def _batch_norm_act_apply_route(x, mean, inv_std, weight, bias, slope):
    return loops_unless(unfit(x) or _slope_unfit(slope))


@routed(_batch_norm_act_apply_route)
def batch_norm_act_apply(x, mean, inv_std, weight, bias, slope):
    if _batch_norm_act_apply_route(x, mean, inv_std, weight, bias, slope)[0] == REFERENCE:
        return reference.batch_norm_act_apply(x, mean, inv_std, weight, bias, slope)
    return _bn_apply(x, mean, inv_std, weight, bias, slope)


def _batch_norm_act_backward_route(x, y, gy, mean, inv_std, weight, slope):
    return loops_unless(unfit(x, y, gy) or _slope_unfit(slope)
                        or _shapes_differ(x=x, y=y, gy=gy))


@routed(_batch_norm_act_backward_route)
def batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope):
    if _batch_norm_act_backward_route(x, y, gy, mean, inv_std, weight, slope)[0] == REFERENCE:
        return reference.batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope)
    return _bn_backward(x, y, gy, mean, inv_std, weight, slope)
