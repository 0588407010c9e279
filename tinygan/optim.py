"""Optimizers with PyTorch's exact update rules: SGD, Adam, RMSprop.

An optimizer holds a list of parameters and, per parameter, a little state (momentum
buffers, moving averages, a step count).  `step()` reads each `p.grad` and updates `p.data`
in place, outside the graph; parameters whose grad is None (not reached by the last
backward) are skipped and their state does not move.  The arithmetic of one update is a raw
array kernel (`adam_update`, ... in `tinygan.kernels`), so a fused version can replace the
readable reference one.

State is keyed by the parameter's *position* in the list (never by `id`, which changes from
one process to the next), so `state_dict()` — host NumPy arrays, step counts and the
hyperparameters — restores a run exactly, and has the layout of PyTorch's:

    {"state": {0: {"step": 3, "exp_avg": ndarray, "exp_avg_sq": ndarray}, ...},
     "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), ..., "params": [0, 1, ...]}]}
"""
from __future__ import annotations

import numpy as np

from . import backend, distributed, kernels
from .autograd import Tensor, enable_grad, no_grad

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop"]


class Optimizer:
    """Base class: parameter bookkeeping, `zero_grad`, `step` over every parameter with a
    gradient, and checkpointing.  A subclass writes `_init_state(p)` and `_update(p, g, state, group)`.

    `params` is an iterable of Tensors with `requires_grad=True` (`model.parameters()`), or a
    list of dicts `{"params": ..., "lr": ...}` for per-group hyperparameters, as in torch.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors "
                            f"(e.g. model.parameters()), got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict] = []
        seen = set()
        for group in groups:
            group = dict(group)
            ps = group["params"]
            group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
            for k, v in self.defaults.items():
                group.setdefault(k, v)
            for p in group["params"]:
                self._check_param(p, len(seen))
                if id(p) in seen:
                    raise ValueError(f"{type(self).__name__}: a parameter of shape {p.shape} "
                                     f"appears more than once")
                seen.add(id(p))
            self.param_groups.append(group)
        self.state: dict[int, dict] = {}       # position -> state of that parameter

    def _check_param(self, p, index: int):
        name = type(self).__name__
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: parameter {index} is a {type(p).__name__}, not a Tensor")
        if not p.requires_grad:
            raise ValueError(f"{name}: parameter {index} (shape {p.shape}) does not require grad; "
                             f"only tensors with requires_grad=True can be optimized")
        if not p.is_leaf:
            raise ValueError(f"{name}: parameter {index} (shape {p.shape}) is not a leaf tensor "
                             f"(it was computed by an op); optimize the leaves it came from")

    def _indexed_params(self):
        """(position, parameter, its group) over all groups, positions counted across groups."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield i, p, group
                i += 1

    def zero_grad(self, set_to_none: bool = True) -> None:
        for _, p, _ in self._indexed_params():
            p.grad = None

    def step(self, closure=None):
        """Update every parameter that has a gradient.  `closure` (optional) re-evaluates the
        loss with grad enabled and returns it, as in torch."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            if distributed.data_parallel_active():
                self._average_gradients()
            for i, p, group in self._indexed_params():
                if p.grad is None:
                    continue
                if p.grad.shape != p.shape:
                    raise RuntimeError(f"{type(self).__name__}: parameter {i} has shape {p.shape} "
                                       f"but its grad has shape {p.grad.shape}")
                state = self.state.get(i)
                if state is None:
                    state = self.state[i] = self._init_state(p, group)
                self._update(p.data, p.grad.data, state, group)
        return loss

    def _average_gradients(self) -> None:
        """Data-parallel training (`distributed.data_parallel`): every rank's gradients become
        their mean over the ranks, in one fused Allreduce, so that every copy of the model
        takes the same step, the one its loss averaged over the global batch gives."""
        grads = []
        for _, p, _ in self._indexed_params():
            if p.grad is None:
                continue
            g = p.grad.data
            if not getattr(g.flags, "writeable", True) or not g.flags.c_contiguous:
                g = backend.get_array_module(g).ascontiguousarray(g).copy()
                p.grad = Tensor(g)
            grads.append(g)
        distributed.allreduce_(grads)

    def _init_state(self, p: Tensor, group: dict) -> dict:
        raise NotImplementedError

    def _update(self, p, g, state: dict, group: dict) -> None:
        raise NotImplementedError

    # -- checkpointing -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Per-parameter state (host NumPy copies, int step counts) keyed by position, and the
        hyperparameters of each group with its parameters' positions."""
        state = {}
        for i, s in self.state.items():
            state[i] = {k: (int(v) if k == "step" else np.array(backend.as_numpy(v), copy=True))
                        for k, v in s.items()}
        groups, start = [], 0
        for group in self.param_groups:
            g = {k: v for k, v in group.items() if k != "params"}
            g["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(g)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict()` saved (keys may have become strings on the way through
        JSON; a PyTorch optimizer state dict converted to NumPy loads too).  Arrays go to
        each parameter's device and dtype; everything is checked before anything changes."""
        name = type(self).__name__
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: {len(groups)} parameter groups saved, "
                             f"this optimizer has {len(self.param_groups)}")
        for k, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict: group {k} saved {len(saved['params'])} "
                                 f"parameters, this optimizer has {len(own['params'])}")
        params = [p for _, p, _ in self._indexed_params()]
        new_state = {}
        for key, s in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, but there "
                                 f"are only {len(params)}")
            p, entry = params[i], {}
            for k, v in s.items():
                if k == "step":
                    entry[k] = int(np.asarray(v))
                    continue
                a = v.data if isinstance(v, Tensor) else np.asarray(v)
                if tuple(a.shape) != p.shape:
                    raise ValueError(f"{name}.load_state_dict: {k!r} of parameter {i} has shape "
                                     f"{tuple(a.shape)}, the parameter has {p.shape}")
                entry[k] = backend.to_device(a, p.device).astype(p.dtype, copy=True)
            new_state[i] = entry
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k in self.defaults:         # torch's extra flags (foreach, fused...) are ignored
                    own[k] = tuple(v) if isinstance(v, list) else v
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines + [")"])


def _check(cond: bool, opt: str, what: str, value):
    if not cond:
        raise ValueError(f"{opt}: invalid {what}: {value}")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's form):

        g <- g + weight_decay · p
        b <- g on the first step, else  momentum · b + (1 - dampening) · g
        p <- p - lr · (g + momentum · b  if nesterov else  b)
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        _check(lr >= 0, "SGD", "learning rate", lr)
        _check(momentum >= 0, "SGD", "momentum", momentum)
        _check(weight_decay >= 0, "SGD", "weight_decay", weight_decay)
        _check(not nesterov or (momentum > 0 and dampening == 0), "SGD",
               "nesterov (needs momentum > 0 and dampening = 0)", nesterov)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _init_state(self, p, group):
        return {}

    def _update(self, p, g, state, group):
        xp = backend.get_array_module(p)
        buf, first = None, False
        if group["momentum"] != 0:
            first = "momentum_buffer" not in state
            if first:
                state["momentum_buffer"] = xp.zeros_like(p)
            buf = state["momentum_buffer"]
        kernels.get("sgd_update", xp)(p, g, buf, group["lr"], group["momentum"],
                                      group["dampening"], group["weight_decay"],
                                      group["nesterov"], first)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) exactly as PyTorch computes it, at step t = 1, 2, ...:

        g <- g + weight_decay · p                      (L2 penalty, not AdamW)
        m <- β1 · m + (1 - β1) · g                     v <- β2 · v + (1 - β2) · g²
        p <- p - lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps)

    Note where eps sits: after the bias correction of sqrt(v), as torch (the paper adds it to
    the corrected sqrt(v̂), which is the same thing).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        _check(lr >= 0, "Adam", "learning rate", lr)
        _check(eps >= 0, "Adam", "epsilon value", eps)
        _check(0 <= betas[0] < 1, "Adam", "beta parameter at index 0", betas[0])
        _check(0 <= betas[1] < 1, "Adam", "beta parameter at index 1", betas[1])
        _check(weight_decay >= 0, "Adam", "weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _init_state(self, p, group):
        xp = backend.get_array_module(p.data)
        return {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}

    def _update(self, p, g, state, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        kernels.get("adam_update", backend.get_array_module(p))(
            p, g, state["exp_avg"], state["exp_avg_sq"], state["step"], group["lr"],
            beta1, beta2, group["eps"], group["weight_decay"])


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e) in PyTorch's form:

        g <- g + weight_decay · p
        s <- α · s + (1 - α) · g²
        centered:  a <- α · a + (1 - α) · g,   denom = sqrt(s - a²) + eps   else  sqrt(s) + eps
        momentum > 0:  b <- momentum · b + g / denom,  p <- p - lr · b
        otherwise:     p <- p - lr · g / denom

    eps is added outside the square root (TensorFlow puts it inside: a different optimizer
    for small gradients, which matters to WGAN's lr = 5e-5 critic).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        _check(lr >= 0, "RMSprop", "learning rate", lr)
        _check(eps >= 0, "RMSprop", "epsilon value", eps)
        _check(0 <= alpha, "RMSprop", "alpha value", alpha)
        _check(momentum >= 0, "RMSprop", "momentum value", momentum)
        _check(weight_decay >= 0, "RMSprop", "weight_decay value", weight_decay)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _init_state(self, p, group):
        xp = backend.get_array_module(p.data)
        state = {"step": 0, "square_avg": xp.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(p.data)
        return state

    def _update(self, p, g, state, group):
        state["step"] += 1
        xp = backend.get_array_module(p)
        # Hyperparameters may have been changed (or loaded) after the state was created.
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = xp.zeros_like(p)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = xp.zeros_like(p)
        kernels.get("rmsprop_update", xp)(
            p, g, state["square_avg"], state.get("grad_avg") if group["centered"] else None,
            state.get("momentum_buffer") if group["momentum"] > 0 else None, group["lr"],
            group["alpha"], group["eps"], group["weight_decay"], group["momentum"])
