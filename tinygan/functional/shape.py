"""Shape ops: reshape, transpose/permute, indexing, cat/stack, flatten, squeeze, device moves.

None of these compute anything, so each backward is the inverse rearrangement of the
gradient — and is differentiable because it is itself one of these ops.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function, Tensor, as_tensor
from ..backend import get_array_module, to_device as _to_device


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)


class Permute(Function):
    def __init__(self, dims):
        self.dims = dims

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, gy):
        return permute(gy, *np.argsort(self.dims).tolist())


class GetItem(Function):
    """x[key] for any NumPy-style key (ints, slices, None, Ellipsis, integer/boolean arrays)."""

    def __init__(self, key):
        self.key = key

    def forward(self, x):
        return x[self.key]

    def backward(self, gy):
        return GetItemGrad(self.key, self.inputs[0].shape)(gy)


class GetItemGrad(Function):
    """Scatter-add gy into zeros of the source shape (repeated indices add up).

    Linear in gy, so its backward is the forward op again: indexing.
    """

    def __init__(self, key, shape):
        self.key, self.shape = key, shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if xp is np:
            np.add.at(gx, self.key, gy)
        else:
            xp.add.at(gx, self.key, gy)
        return gx

    def backward(self, ggx):
        return getitem(ggx, self.key)


class Concat(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        return get_array_module(xs[0]).concatenate(xs, axis=self.dim)

    def backward(self, gy):
        grads, start = [], 0
        for x, need in zip(self.inputs, self.needs_input_grad):
            stop = start + x.shape[self.dim]
            if need:
                index = [slice(None)] * gy.ndim
                index[self.dim] = slice(start, stop)
                grads.append(gy[tuple(index)])
            else:
                grads.append(None)
            start = stop
        return tuple(grads)


class ToDevice(Function):
    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.src = "cuda" if get_array_module(x) is not np else "cpu"
        return _to_device(x, self.device)

    def backward(self, gy):
        return to_device(gy, self.src)


# ---------------------------------------------------------------------------------------

def reshape(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
    try:
        target = np.empty(x.shape, dtype=bool).reshape(shape).shape   # resolves -1, checks size
    except ValueError:
        raise ValueError(f"reshape: cannot reshape {x.shape} ({x.numel()} elements) to {shape}") from None
    if target == x.shape:
        return x
    return Reshape(target)(x)


def _dim(d: int, ndim: int, opname: str) -> int:
    if not -ndim <= d < ndim:
        raise ValueError(f"{opname}: dim {d} is out of range for a tensor of rank {ndim}")
    return d % ndim


def permute(x, *dims):
    dims = tuple(dims[0]) if len(dims) == 1 and not isinstance(dims[0], int) else dims
    if sorted(_dim(d, x.ndim, "permute") for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dims of {x.shape}")
    dims = tuple(_dim(d, x.ndim, "permute") for d in dims)
    if dims == tuple(range(x.ndim)):
        return x
    return Permute(dims)(x)


def transpose(x, dim0, dim1):
    dims = list(range(x.ndim))
    a, b = _dim(dim0, x.ndim, "transpose"), _dim(dim1, x.ndim, "transpose")
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, *dims)


def getitem(x, key):
    if isinstance(key, Tensor):
        key = key.data
    elif isinstance(key, tuple):
        key = tuple(k.data if isinstance(k, Tensor) else k for k in key)
    elif isinstance(key, list):
        key = np.asarray(key)
    return GetItem(key)(x)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    ref = next(t for t in tensors if isinstance(t, Tensor))
    tensors = [as_tensor(t, ref) for t in tensors]
    d = _dim(dim, ref.ndim, "cat")
    for t in tensors:
        if t.ndim != ref.ndim or t.shape[:d] + t.shape[d + 1:] != ref.shape[:d] + ref.shape[d + 1:]:
            raise ValueError(f"cat: shapes {[t.shape for t in tensors]} differ outside dim {dim}")
    if len(tensors) == 1:
        return tensors[0]
    return Concat(d)(*tensors)


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    d = _dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], dim=d)


def flatten(x, start_dim=1, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _dim(start_dim, x.ndim, "flatten"), _dim(end_dim, x.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:]) if x.numel() else \
        reshape(x, x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    d = _dim(dim, x.ndim, "squeeze")
    if x.shape[d] != 1:
        return x
    return reshape(x, x.shape[:d] + x.shape[d + 1:])


def unsqueeze(x, dim):
    d = _dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def to_device(x, device):
    return ToDevice(device)(x)
