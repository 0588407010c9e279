"""Finite-difference gradient checks, first and second order (public: it is a teaching tool).

`gradcheck(fn, inputs)` compares the analytic vector-Jacobian product of `fn` with central
differences of the scalar  L(x) = sum_k <v_k, fn(x)_k>  for random upstream gradients v_k.
Random v (never all ones) catch a backward that is right only on average.

`gradgradcheck` is `gradcheck` applied to the function  (x, v) -> d<v, fn(x)>/dx  built with
`create_graph=True`: one implementation, two checks (as in Chainer).
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor, enable_grad, grad, no_grad


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message names the input and element."""


def _as_outputs(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _float64_inputs(inputs):
    """Float64 copies of the inputs (same requires_grad), plus which ones are checked."""
    out = []
    for x in inputs:
        if isinstance(x, Tensor) and x.dtype.kind == "f":
            out.append(Tensor(x.data.astype(np.float64, order="C", copy=True), requires_grad=x.requires_grad))
        else:
            out.append(x)
    return out


def _scalar(fn, inputs, vs) -> float:
    with no_grad():
        outs = _as_outputs(fn(*inputs))
    return float(sum((o.data * v).sum() for o, v in zip(outs, vs) if o.dtype.kind == "f"))


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              grad_outputs=None, seed: int = 0) -> bool:
    """Check every input with `requires_grad=True`; return True or raise GradcheckError."""
    inputs = _float64_inputs(inputs if isinstance(inputs, (list, tuple)) else [inputs])
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    rng = np.random.default_rng(seed)
    outs = [o for o in _as_outputs(fn(*inputs)) if o.dtype.kind == "f"]
    if grad_outputs is None:
        vs = [rng.standard_normal(o.shape) for o in outs]
    else:
        vs = [backend.as_numpy(g.data if isinstance(g, Tensor) else g).astype(np.float64)
              for g in _as_outputs(grad_outputs)]
    xp = backend.get_array_module(inputs[checked[0]].data)
    vs_dev = [xp.asarray(v) for v in vs]

    reached = [o for o in outs if o.requires_grad]
    if reached:
        analytic = grad(reached, [inputs[i] for i in checked],
                        [Tensor(v) for o, v in zip(outs, vs_dev) if o.requires_grad],
                        allow_unused=True)
    else:
        analytic = [None] * len(checked)

    for i, g in zip(checked, analytic):
        x = inputs[i]
        a = np.zeros(x.shape) if g is None else backend.as_numpy(g.data).astype(np.float64)
        flat = x.data.reshape(-1)          # a view: perturbing it perturbs x
        numeric = np.empty(flat.size)
        for k in range(flat.size):
            orig = flat[k].item()
            flat[k] = orig + eps
            plus = _scalar(fn, inputs, vs_dev)
            flat[k] = orig - eps
            minus = _scalar(fn, inputs, vs_dev)
            flat[k] = orig
            numeric[k] = (plus - minus) / (2 * eps)
        numeric = numeric.reshape(x.shape)
        err = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and err.max() > 0:
            worst = np.unravel_index(int(np.argmax(err)), x.shape)
            raise GradcheckError(_jacobian_message(fn, inputs, i, worst, outs, eps, atol, rtol))
    return True


_MAX_ROWS = 4096     # backward passes spent on naming the Jacobian entry of a failure


def _jacobian_message(fn, inputs, i, k, outs, eps, atol, rtol) -> str:
    """The failure in the Jacobian's own terms.  The check compares v·J for a random v, so its
    numbers are projections (21 and 28 become 2.64 and 3.52 for one v), not derivatives a
    learner can verify by hand.  Here column k of J is rebuilt both ways: numerically from two
    forwards, analytically one output element (one backward with a one-hot upstream) at a
    time; the entry where they differ most is the one named."""
    x = inputs[i]
    idx = tuple(int(j) for j in k)
    flat, pos = x.data.reshape(-1), int(np.ravel_multi_index(k, x.shape))
    orig = flat[pos].item()
    cols = []
    for step in (eps, -eps):
        flat[pos] = orig + step
        with no_grad():
            cols.append([backend.as_numpy(o.data).astype(np.float64)
                         for o in _as_outputs(fn(*inputs)) if o.dtype.kind == "f"])
    flat[pos] = orig
    xp = backend.get_array_module(x.data)
    with enable_grad():               # a fresh graph: the check's backward has freed its own
        outs = [o for o in _as_outputs(fn(*inputs)) if o.dtype.kind == "f"]
    best = None
    rows = 0
    for j, o in enumerate(outs):
        for m in np.ndindex(*o.shape):
            if rows == _MAX_ROWS:
                break
            rows += 1
            numeric = (cols[0][j][m] - cols[1][j][m]) / (2 * eps)
            analytic = 0.0
            if o.requires_grad:
                onehot = xp.zeros(o.shape)
                onehot[m] = 1.0
                g, = grad([o], [x], [Tensor(onehot)], retain_graph=True, allow_unused=True)
                analytic = 0.0 if g is None else float(backend.as_numpy(g.data)[k])
            gap = abs(analytic - numeric) - (atol + rtol * abs(numeric))
            if best is None or gap > best[0]:
                best = (gap, j, tuple(int(n) for n in m), analytic, numeric)
    _, j, m, analytic, numeric = best
    out = f"output {j}" if len(outs) > 1 else "output"
    return (f"gradcheck failed for input {i} (shape {x.shape}) at index {idx}: analytic "
            f"{analytic:.8g} vs numerical {numeric:.8g} for the Jacobian entry "
            f"d {out}{list(m) if m else ''} / d input {i}{list(idx)} "
            f"(atol={atol}, rtol={rtol}, eps={eps})")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck of x, v -> d<v, fn(x)>/dx (with create_graph=True)."""
    inputs = _float64_inputs(inputs if isinstance(inputs, (list, tuple)) else [inputs])
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input has requires_grad=True")
    outs = [o for o in _as_outputs(fn(*inputs)) if o.dtype.kind == "f"]
    xp = backend.get_array_module(inputs[checked[0]].data)
    rng = np.random.default_rng(seed + 1)
    if grad_outputs is None:
        gos = [Tensor(xp.asarray(rng.standard_normal(o.shape)), requires_grad=True) for o in outs]
    else:
        gos = [Tensor(xp.asarray(backend.as_numpy(g.data if isinstance(g, Tensor) else g),
                                 dtype=np.float64), requires_grad=True)
               for g in _as_outputs(grad_outputs)]
    n = len(inputs)

    def first_order(*args):
        xs, vs = list(args[:n]), args[n:]
        with enable_grad():          # the finite differences call this under no_grad
            ys = [o for o in _as_outputs(fn(*xs)) if o.dtype.kind == "f"]
        pairs = [(y, v) for y, v in zip(ys, vs) if y.requires_grad]
        if not pairs:
            return tuple(Tensor(xp.zeros(xs[i].shape)) for i in checked)
        with enable_grad():
            gs = grad([y for y, _ in pairs], [xs[i] for i in checked], [v for _, v in pairs],
                      create_graph=True, allow_unused=True)
        return tuple(Tensor(xp.zeros(xs[i].shape)) if g is None else g
                     for i, g in zip(checked, gs))

    return gradcheck(first_order, list(inputs) + gos, eps=eps, atol=atol, rtol=rtol, seed=seed + 2)
