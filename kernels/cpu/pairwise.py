"""Minibatch discrimination's pairwise L1 distances, their gradient and its adjoint."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference, routed
from .runtime import REFERENCE, _pick, _serial_twin, _shapes_differ, loops_unless, unfit

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


def _not_3d(M):
    return None if M.ndim == 3 else f"M of shape {tuple(M.shape)} is not (N, B, C)"


def _pairwise(kernel, M, a, out_shape):
    out = np.empty(out_shape, dtype=M.dtype)
    args = (np.ascontiguousarray(M),)
    if a is not None:
        args += (np.ascontiguousarray(a), M.dtype.type(0))
    size = M.shape[0] * M.shape[0] * M.shape[1] * M.shape[2]
    _pick(kernel, _pairwise_serial[kernel], size)(*args, out)
    return out


def _pairwise_l1_route(M):
    return loops_unless(unfit(M) or _not_3d(M))


@routed(_pairwise_l1_route)
def pairwise_l1(M):
    if _pairwise_l1_route(M)[0] == REFERENCE:
        return reference.pairwise_l1(M)
    return _pairwise(_pairwise_l1_kernel, M, None, (M.shape[0], M.shape[0], M.shape[1]))


def _pairwise_l1_grad_route(M, g):
    return loops_unless(unfit(M, g) or _not_3d(M)
                        or _shapes_differ(g=g, expected=(M.shape[0],) * 2 + M.shape[1:2]))


@routed(_pairwise_l1_grad_route)
def pairwise_l1_grad(M, g):
    if _pairwise_l1_grad_route(M, g)[0] == REFERENCE:
        return reference.pairwise_l1_grad(M, g)
    return _pairwise(_pairwise_l1_grad_kernel, M, g, M.shape)


def _pairwise_l1_grad_adjoint_route(M, u):
    return loops_unless(unfit(M, u) or _not_3d(M) or _shapes_differ(u=u, M=M))


@routed(_pairwise_l1_grad_adjoint_route)
def pairwise_l1_grad_adjoint(M, u):
    if _pairwise_l1_grad_adjoint_route(M, u)[0] == REFERENCE:
        return reference.pairwise_l1_grad_adjoint(M, u)
    return _pairwise(_pairwise_l1_grad_adjoint_kernel, M, u, (M.shape[0], M.shape[0], M.shape[1]))
