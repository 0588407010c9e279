"""Weight re-parametrisations (torch.nn.utils): `spectral_norm`, `remove_spectral_norm`.

Spectral normalisation (Miyato et al. 2018) divides a layer's weight by its largest singular
value σ(W), so the layer is 1-Lipschitz (for a linear map, ‖Wx‖ ≤ σ(W)‖x‖).  σ is estimated by
power iteration on the weight reshaped to a matrix (out, -1): with a persistent vector u,

    v ← Wᵀu / ‖Wᵀu‖,   u ← Wv / ‖Wv‖,   σ ≈ uᵀWv,   W_SN = W / σ.

One iteration per training step is enough because W moves little between steps, so u from the
last step is already close to the top singular vector.  u and v are held constant when
differentiating: the gradient flows through W in σ = uᵀWv and in W/σ only (the paper's
Algorithm 1, and torch's).

As in torch, the module's parameter becomes `weight_orig`, `weight_u` and `weight_v` are
persistent buffers (saved in the state_dict, so a resumed run continues the same iteration),
and `module.weight` is recomputed before every forward: with a power iteration in training
mode, from the stored u, v in eval mode (so evaluation never changes the module's state).
"""
from __future__ import annotations

import types

from ..autograd import Tensor, no_grad
from ..backend import get_array_module, get_rng
from .module import Module, Parameter


def _normalize(a, eps):
    xp = get_array_module(a)
    return a / xp.maximum(xp.sqrt((a * a).sum()), eps)


class SpectralNorm:
    """The re-parametrisation of one weight of one module (kept on the module)."""

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float):
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def weight_matrix(self, w):
        """W as (shape[dim], -1): a conv's rows are its output channels (dim 0; dim 1 for a
        transposed conv, whose weight is (in, out, kh, kw))."""
        if self.dim != 0:
            perm = [self.dim] + [d for d in range(w.ndim) if d != self.dim]
            w = w.permute(*perm) if isinstance(w, Tensor) else w.transpose(perm)
        return w.reshape(w.shape[0], -1)

    def power_iteration(self, module: Module) -> None:
        """Update u, v in place (no graph: they are constants of the step)."""
        w = self.weight_matrix(getattr(module, self.name + "_orig").data)
        u = getattr(module, self.name + "_u").data
        v = getattr(module, self.name + "_v").data
        for _ in range(self.n_power_iterations):
            v[...] = _normalize(w.T @ u, self.eps)
            u[...] = _normalize(w @ v, self.eps)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        """W / σ with σ = uᵀWv, differentiable in W with u and v fixed."""
        if do_power_iteration:
            with no_grad():
                self.power_iteration(module)
        w = getattr(module, self.name + "_orig")
        # Copies: the next step's in-place iteration must not change what this graph saw.
        u = Tensor(getattr(module, self.name + "_u").data.copy())
        v = Tensor(getattr(module, self.name + "_v").data.copy())
        sigma = (u * (self.weight_matrix(w) @ v)).sum()
        return w / sigma


def _forward_with_spectral_norm(module, *args, **kwargs):
    for fn in module._spectral_norms.values():
        object.__setattr__(module, fn.name, fn.compute_weight(module, module.training))
    return type(module).forward(module, *args, **kwargs)


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Spectrally normalise `module.<name>` (torch.nn.utils.spectral_norm); returns the module.

    Apply it after any custom initialisation: `module.weight` is from now on computed, and
    initialisers must write to `module.weight_orig`."""
    if n_power_iterations < 1:
        raise ValueError(f"spectral_norm: n_power_iterations must be >= 1, got {n_power_iterations}")
    norms = module.__dict__.setdefault("_spectral_norms", {})
    if name in norms:
        raise RuntimeError(f"spectral_norm: {type(module).__name__}.{name} is already normalised")
    weight = module._parameters.get(name)
    if not isinstance(weight, Parameter):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if dim is None:
        dim = 1 if getattr(module, "transposed", False) else 0
    fn = SpectralNorm(name, int(n_power_iterations), dim % weight.ndim, float(eps))
    h, w = fn.weight_matrix(weight.data).shape
    xp, rng = get_array_module(weight.data), get_rng(weight.device)
    u = _normalize(xp.asarray(rng.standard_normal(h), dtype=weight.dtype), fn.eps)
    v = _normalize(xp.asarray(rng.standard_normal(w), dtype=weight.dtype), fn.eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    norms[name] = fn
    object.__setattr__(module, name, Tensor(weight.data))    # until the first forward
    # An instance attribute shadows the class's forward (Module.__call__ calls self.forward);
    # a bound method, so copy.deepcopy rebinds it to the copy.
    object.__setattr__(module, "forward", types.MethodType(_forward_with_spectral_norm, module))
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo `spectral_norm`: the current normalised weight becomes a plain parameter again."""
    norms = module.__dict__.get("_spectral_norms", {})
    if name not in norms:
        raise ValueError(f"remove_spectral_norm: {type(module).__name__}.{name} is not normalised")
    fn = norms.pop(name)
    with no_grad():
        weight = fn.compute_weight(module, do_power_iteration=False).data
    for suffix in ("_orig", "_u", "_v"):
        delattr(module, name + suffix)
    module.__dict__.pop(name, None)
    module.register_parameter(name, Parameter(weight))
    if not norms:
        module.__dict__.pop("forward", None)
    return module
