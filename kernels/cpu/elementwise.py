"""Elementwise passes and optimizer updates: the leaky ReLU and its gradient, and one
loop per SGD / Adam / RMSprop update instead of ~10 NumPy temporaries."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import reference, routed
from .runtime import (REFERENCE, _pick, _serial_twin, _shapes_differ, loops_route, loops_unless,
                      unfit)


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


def _leaky_relu_route(x, slope):
    return loops_route(x)


@routed(_leaky_relu_route)
def leaky_relu(x, slope):
    if _leaky_relu_route(x, slope)[0] == REFERENCE:
        return reference.leaky_relu(x, slope)
    xc = np.ascontiguousarray(x)
    y = np.empty(x.shape, dtype=x.dtype)
    _pick(_leaky_relu_kernel, _leaky_relu_serial, x.size)(xc.reshape(-1), x.dtype.type(slope), y.reshape(-1))
    return y


def _leaky_relu_grad_route(y, gy, slope):
    return loops_unless(unfit(y, gy) or _shapes_differ(y=y, gy=gy))


@routed(_leaky_relu_grad_route)
def leaky_relu_grad(y, gy, slope):
    if _leaky_relu_grad_route(y, gy, slope)[0] == REFERENCE:
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

def _flat_route(*arrays):
    why = unfit(*arrays)
    if not why and not all(a.flags.c_contiguous for a in arrays):
        why = "an array that is not C-contiguous (no flat view to update in place)"
    return loops_unless(why)


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


def _sgd_update_route(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
               first=False):
    return _flat_route(*((p, g) if buf is None else (p, g, buf)))


@routed(_sgd_update_route)
def sgd_update(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
               first=False):
    if _sgd_update_route(p, g, buf, lr, momentum, dampening, weight_decay, nesterov,
                         first)[0] == REFERENCE:
        return reference.sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov,
                                    first)
    t = p.dtype.type
    b = p if buf is None else buf               # a dummy when there is no buffer: never read
    _pick(_sgd_kernel, _sgd_serial, p.size)(
        p.reshape(-1), g.reshape(-1), b.reshape(-1), buf is not None, t(lr), t(momentum),
        t(1 - dampening), t(weight_decay), bool(nesterov), bool(first))


def _adam_update_route(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay=0.0):
    return _flat_route(p, g, m, v)


@routed(_adam_update_route)
def adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay=0.0):
    if _adam_update_route(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)[0] == REFERENCE:
        return reference.adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay)
    t = p.dtype.type
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    _pick(_adam_kernel, _adam_serial, p.size)(
        p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(lr / bias_correction1),
        t(1 - beta1), t(beta2), t(1 - beta2), t(bias_correction2_sqrt), t(eps), t(weight_decay))


def _rmsprop_update_route(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay=0.0,
                   momentum=0.0):
    return _flat_route(p, g, square_avg, *(a for a in (grad_avg, buf) if a is not None))


@routed(_rmsprop_update_route)
def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay=0.0,
                   momentum=0.0):
    if _rmsprop_update_route(p, g, square_avg, grad_avg, buf, lr, alpha, eps,
                            weight_decay, momentum)[0] == REFERENCE:
        return reference.rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps,
                                        weight_decay, momentum)
    t = p.dtype.type
    ga = p if grad_avg is None else grad_avg    # dummies when absent: never read
    b = p if buf is None else buf
    _pick(_rmsprop_kernel, _rmsprop_serial, p.size)(
        p.reshape(-1), g.reshape(-1), square_avg.reshape(-1), ga.reshape(-1),
        grad_avg is not None, b.reshape(-1), buf is not None, t(lr), t(alpha), t(1 - alpha),
        t(eps), t(weight_decay), t(momentum))
