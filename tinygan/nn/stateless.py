"""Calling a module with other tensors in place of its parameters (torch.func.functional_call).

    out = functional_call(D, {"head.weight": w, ...}, (x,))

runs `D(x)` with each named parameter (or buffer) replaced, for the length of the call, by the
given Tensor — typically one computed by graph ops from the real parameter, such as an
optimizer step written out in the graph (unrolled GANs, meta-learning).  The output then
depends on those tensors, so gradients flow back through them to whatever produced them.
Names not in the dict keep the module's own tensors; the module is restored afterwards,
even if the call raises.
"""
from __future__ import annotations

from ..autograd import Tensor
from .module import Module


def _slot(module: Module, name: str):
    """(registry dict, key) holding the parameter or buffer `name` ("body.0.weight")."""
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        child = owner._modules.get(part)
        if child is None:
            raise KeyError(f"functional_call: {type(module).__name__} has no submodule "
                           f"{'.'.join(path)!r} (for {name!r})")
        owner = child
    for registry in (owner._parameters, owner._buffers):
        if leaf in registry:
            return registry, leaf
    raise KeyError(f"functional_call: {type(module).__name__} has no parameter or buffer {name!r}")


def functional_call(module: Module, tensors: dict, args=(), kwargs: dict | None = None):
    """`module(*args, **kwargs)` with the named parameters/buffers replaced by `tensors`."""
    args = args if isinstance(args, tuple) else (args,)
    slots = []
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"functional_call: {name!r} must be a Tensor, got {type(t).__name__}")
        registry, key = _slot(module, name)
        old = registry[key]
        if old is not None and tuple(t.shape) != tuple(old.shape):
            raise ValueError(f"functional_call: {name!r} has shape {tuple(old.shape)}, "
                             f"got a tensor of shape {tuple(t.shape)}")
        slots.append((registry, key, old))
    try:
        # Straight into the registries: Module.__setattr__ admits only Parameters there, and
        # a substitute is an ordinary graph Tensor.
        for (registry, key, _), t in zip(slots, tensors.values()):
            registry[key] = t
        return module(*args, **(kwargs or {}))
    finally:
        for registry, key, old in reversed(slots):
            registry[key] = old
