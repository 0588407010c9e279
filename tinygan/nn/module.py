"""`Module` and `Parameter`: the bookkeeping that turns a pile of Tensors into a model.

A Module does three things and no math:
  - it *registers*, in assignment order, what `__init__` assigns to it: a `Parameter` goes to
    `_parameters`, a `Module` to `_modules`, a tensor named by `register_buffer` to `_buffers`
    (state that is not learned: BatchNorm's running statistics);
  - it *walks* that tree to name everything the way PyTorch does (`main.1.running_mean`), so
    `parameters()` has a stable order and `state_dict()` converts to and from PyTorch's by key;
  - it carries the `training` flag that BatchNorm and Dropout read.

Ordered dicts everywhere: iteration order is the order of assignment, never a hash order (the
optimizer state of a checkpoint is matched to parameters by position, so the order is part of
the file format).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import Tensor, _is_array


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable; `requires_grad=True` unless told otherwise.

    The array is shared, not copied: `Parameter(t)` wraps `t.data`.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty(0, dtype=backend.DEFAULT_DTYPE)
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _value_array(value, key: str):
    """The raw array inside a state-dict value: a Tensor, an ndarray, a number, or anything
    with `__array__` (a CPU torch tensor)."""
    if isinstance(value, Tensor):
        return value.data
    if _is_array(value):
        return value
    try:
        return np.asarray(value)
    except Exception as e:
        raise TypeError(f"load_state_dict: value for {key!r} is a {type(value).__name__}, "
                        f"not an array or Tensor") from e


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return lines[0] if len(lines) == 1 else \
        "\n".join([lines[0]] + [" " * spaces + line for line in lines[1:]])


class Module:
    """Base class of every layer and model.  Subclasses call `super().__init__()` first, assign
    Parameters / Modules / buffers as attributes, and write `forward`."""

    training: bool

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- registration ----------------------------------------------------------------------
    def _registries(self, name: str):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {name!r} before {type(self).__name__}.__init__ "
                                 f"has called super().__init__()")
        return d["_parameters"], d["_buffers"], d["_modules"]

    def __setattr__(self, name: str, value):
        if isinstance(value, (Parameter, Module)):
            self._registries(name)
            self.__dict__.pop(name, None)         # a plain attribute becomes a registered one
            if isinstance(value, Parameter):
                self.register_parameter(name, value)
            else:
                self.add_module(name, value)
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} as parameter {name!r} "
                                f"(nn.Parameter or None expected)")
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} as child module {name!r} "
                                f"(nn.Module or None expected)")
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = self._as_buffer(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails.  Read __dict__ directly: during copy/pickle
        # reconstruction the registries may not exist yet, and self._parameters would recurse.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def _check_new_name(self, name: str, kind: str):
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        params, buffers, modules = self._registries(name)
        registered = any(name in r for r in (params, buffers, modules))
        if (name in self.__dict__ or hasattr(type(self), name)) and not registered:
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")
        for registry in (params, buffers, modules):
            registry.pop(name, None)
        self._non_persistent.discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be an nn.Parameter or None, "
                            f"got {type(param).__name__}")
        self._check_new_name(name, "parameter")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """State that is saved and moved with the module but not learned (running statistics).
        Non-persistent buffers are left out of `state_dict()`."""
        self._check_new_name(name, "buffer")
        self._buffers[name] = self._as_buffer(name, tensor)
        if not persistent:
            self._non_persistent.add(name)

    @staticmethod
    def _as_buffer(name, value):
        if value is None or (isinstance(value, Tensor) and not isinstance(value, Parameter)):
            return value
        if _is_array(value):
            return Tensor(value)
        raise TypeError(f"buffer {name!r} must be a Tensor, an array or None, got {type(value).__name__}")

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be an nn.Module or None, got {type(module).__name__}")
        self._check_new_name(name, "module")
        self._modules[name] = module

    register_module = add_module

    # -- walking the tree --------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set | None = None):
        """(dotted name, module) for self and every descendant, depth first, each once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        # A tensor shared by two layers (tied weights) is listed once, under its first name.
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in modules:
            for name, t in getattr(m, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        yield from self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn) -> Module:
        """Call `fn(m)` on every submodule (children first) and on self, like torch."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- state dict --------------------------------------------------------------------------
    def _state_items(self, prefix: str = ""):
        """(key, Tensor) in PyTorch's state-dict order: a module's own parameters, then its
        persistent buffers, then each child's, recursively."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, b
        for name, m in self._modules.items():
            if m is not None:
                yield from m._state_items(f"{prefix}{name}.")

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict:
        """{PyTorch-style key: host NumPy array}: a snapshot (copies), so later training steps
        do not change it.  `keep_vars=True` gives the live Tensors instead."""
        return {k: (t if keep_vars else np.array(backend.as_numpy(t.data), copy=True))
                for k, t in self._state_items(prefix)}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy `state_dict`'s arrays into this module's tensors, in place (the Parameter
        objects an optimizer holds stay the same).  Values may be NumPy arrays, Tensors, or a
        PyTorch state dict converted with `{k: v.numpy()}`.  Every key and shape is checked
        before anything is written, so a failed load leaves the module untouched."""
        own = dict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and unexpected:
            errors.append("unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        if strict and missing:
            errors.append("missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        arrays = {}
        for key, t in own.items():
            if key not in state_dict:
                continue
            value = _value_array(state_dict[key], key)
            if tuple(value.shape) != t.shape:
                errors.append(f"size mismatch for {key!r}: the state_dict has shape "
                              f"{tuple(value.shape)}, this model has {t.shape}")
            else:
                arrays[key] = value
        if errors:
            raise ValueError(f"load_state_dict for {type(self).__name__}:\n  " + "\n  ".join(errors))
        for key, value in arrays.items():
            t = own[key]
            t.data[...] = backend.to_device(value, t.device)   # casts to t's dtype, in place
        return IncompatibleKeys(missing, unexpected)

    # -- modes, devices, gradients -------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (batch statistics in BatchNorm, Dropout active) for self and all children."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients (`grad = None`, so the next backward starts fresh)."""
        for p in self.parameters():
            p.grad = None

    def to(self, device=None, dtype=None) -> Module:
        """Move every parameter and buffer to `device` and/or cast floating ones to `dtype`,
        in place: the Parameter objects stay the same, only their `.data` changes.
        `to("cuda")`, `to(np.float64)` and `to(device, dtype)` all work."""
        device, dtype = backend.to_arguments(device, dtype)
        if device is not None:
            backend.xp_for(device)                # fails early and clearly when CUDA is missing
        for t in list(self.parameters()) + list(self.buffers()):
            t.data = self._moved(t.data, device, dtype)
            if t.grad is not None:
                t.grad = Tensor(self._moved(t.grad.data, device, dtype))
        return self

    @staticmethod
    def _moved(a, device, dtype):
        if device is not None and backend.device_of(a) != device:
            a = backend.to_device(a, device)
        if dtype is not None and a.dtype.kind == "f" and a.dtype != dtype:
            a = a.astype(dtype)
        return a

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("cuda")

    def float(self) -> Module:
        return self.to(dtype=np.float32)

    def double(self) -> Module:
        return self.to(dtype=np.float64)

    # -- printing --------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its constructor arguments)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"
