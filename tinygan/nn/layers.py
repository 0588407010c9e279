"""Layers: a Module holding Parameters and calling one functional op in `forward`.

Names, argument order, parameter shapes and default initialisation follow PyTorch, so that a
`state_dict` converts by key and a torch user reads the model without a dictionary:

    Linear          weight (out, in)               bias (out,)
    Conv2d          weight (OC, C, KH, KW)         bias (OC,)
    ConvTranspose2d weight (C_in, C_out, KH, KW)   bias (C_out,)
    BatchNorm       weight, bias (C,)   buffers running_mean, running_var (C,), num_batches_tracked ()
    BatchNormAct    the same as BatchNorm (it is one, with its activation applied in the same op)
    Embedding       weight (num_embeddings, embedding_dim)

Default init (torch's `reset_parameters`): weights kaiming_uniform with a = sqrt(5), i.e.
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); Embedding N(0, 1);
BatchNorm scale 1, shift 0.  The math of each layer lives in `tinygan.functional`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from ..functional._args import pair as _pair
from . import init
from .module import Module, Parameter

__all__ = ["Sequential", "ModuleList", "Identity", "Linear", "Conv2d", "ConvTranspose2d",
           "BatchNorm1d", "BatchNorm2d", "BatchNormAct1d", "BatchNormAct2d", "SyncBatchNorm", "LeakyReLU", "ReLU",
           "Tanh", "Sigmoid", "Flatten", "Unflatten", "Upsample", "Embedding", "Dropout"]
__all__ += ["PReLU", "Dropout2d"]


def _empty_parameter(shape, device, dtype) -> Parameter:
    xp = backend.xp_for(device or "cpu")
    return Parameter(xp.empty(shape, dtype=backend.resolve_dtype(dtype)))


def _uniform_bias_(bias: Parameter | None, weight: Parameter) -> None:
    if bias is not None:
        fan_in, _ = init._fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


# ---------------------------------------------------------------------------------------
# Containers

class Sequential(Module):
    """Modules applied one after the other; `Sequential(a, b)` names them "0", "1".

    It runs exactly the modules it holds.  Batch norm and its activation as one op is a
    module of its own, `BatchNormAct2d` / `BatchNormAct1d`, which a net names.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(dict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"Sequential index {index} is out of range for {len(items)} modules")
        return items[index][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        # After the largest number in use, not at len(self): a net numbered with gaps (see
        # gans.nets.sequential_keeping_keys) must not have a layer replaced.
        numbers = [int(k) for k in self._modules if k.isdigit()]
        self.add_module(str(max(numbers, default=-1) + 1), module)
        return self


class ModuleList(Module):
    """A list of modules, registered as "0", "1", ... (for nets that loop over their layers)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Identity(Module):
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


# ---------------------------------------------------------------------------------------
# Affine layers

class Linear(Module):
    """y = x W^T + b, with x (..., in_features) and W (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = _empty_parameter((self.out_features, self.in_features), device, dtype)
        self.bias = _empty_parameter((self.out_features,), device, dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        _uniform_bias_(self.bias, self.weight)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, output_padding,
                 bias, device, dtype):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, name, "kernel_size")
        self.stride = _pair(stride, name, "stride")
        self.padding = _pair(padding, name, "padding")
        self.output_padding = _pair(output_padding, name, "output_padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size {self.kernel_size} and stride "
                             f"{self.stride} must be >= 1 and padding {self.padding} >= 0")
        channels = (self.in_channels, self.out_channels)
        shape = (channels[::-1] if not self.transposed else channels) + self.kernel_size
        self.weight = _empty_parameter(shape, device, dtype)
        self.bias = _empty_parameter((self.out_channels,), device, dtype) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        _uniform_bias_(self.bias, self.weight)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D cross-correlation over NCHW input; weight (OC, C, KH, KW)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, 0, bias,
                         device, dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class ConvTranspose2d(_ConvNd):
    """The adjoint of Conv2d (upsampling by `stride`); weight (C_in, C_out, KH, KW).

    Output size: (H - 1)·stride - 2·padding + kernel_size + output_padding.
    """
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, bias: bool = True, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, output_padding,
                         bias, device, dtype)
        for op, s in zip(self.output_padding, self.stride):
            if not 0 <= op < s:
                raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be "
                                 f">= 0 and smaller than stride {self.stride}")

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding)


class Embedding(Module):
    """A lookup table: row idx of `weight` (num_embeddings, embedding_dim), init N(0, 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.weight = _empty_parameter((self.num_embeddings, self.embedding_dim), device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)

    def forward(self, idx):
        return F.embedding(idx, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


# ---------------------------------------------------------------------------------------
# Batch normalisation

class _NormBase(Module):
    """The state of a normalisation layer, as torch's: weight and bias (C,) when affine;
    buffers running_mean, running_var (C,) and num_batches_tracked () when tracking."""
    _ranks: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        C = self.num_features
        if affine:
            self.weight = _empty_parameter((C,), device, dtype)
            self.bias = _empty_parameter((C,), device, dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            xp = backend.xp_for(device or "cpu")
            dt = backend.resolve_dtype(dtype)
            self.register_buffer("running_mean", Tensor(xp.zeros(C, dtype=dt)))
            self.register_buffer("running_var", Tensor(xp.ones(C, dtype=dt)))
            self.register_buffer("num_batches_tracked", Tensor(xp.zeros((), dtype=np.int64)))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    """y = (x - mean) / sqrt(var + eps) · weight + bias, statistics per channel (dim 1).

    Training: batch statistics, and the running ones move towards them by `momentum`
    (the unbiased batch variance, as torch; `momentum=None` gives the cumulative average
    1/num_batches_tracked).  Eval: the running statistics.  `track_running_stats=False`
    keeps no buffers and always uses batch statistics.
    """

    def forward(self, x):
        return self._batch_norm(x, None)

    def _batch_norm(self, x, negative_slope: float | None):
        """F.batch_norm with this layer's state; with `negative_slope`, F.batch_norm_act."""
        name = type(self).__name__
        if x.ndim not in self._ranks:
            ranks = " or ".join(f"{r}-D" for r in self._ranks)
            raise ValueError(f"{name}: expected {ranks} input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input {x.shape} has {x.shape[1]} channels but the layer "
                             f"has num_features={self.num_features}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                t = self.num_batches_tracked.data
                # On a GPU the count stays there: float() of it would wait for the device.
                on_host = backend.get_array_module(t) is np
                momentum = 1.0 / (float(t) if on_host else t.astype(x.dtype))
        # Batch statistics when training, and also in eval mode when there are no running ones.
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        sequence = x.ndim == 3          # (N, C, L): statistics over N and L, i.e. BN2d with W = 1
        if sequence:
            x = x.reshape(x.shape + (1,))
        args = (x, self.running_mean if track else None, self.running_var if track else None,
                self.weight, self.bias, use_batch_stats, momentum, self.eps)
        y = self._normalize(args, negative_slope)
        return y.reshape(y.shape[:3]) if sequence else y

    def _normalize(self, args, negative_slope):
        return F.batch_norm(*args) if negative_slope is None else F.batch_norm_act(*args, negative_slope)


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input."""
    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) input, statistics over N, H, W."""
    _ranks = (4,)


class _BatchNormAct:
    """Batch norm, then ReLU or LeakyReLU, as the one op `F.batch_norm_act`: the same numbers
    as the two layers, one pass forward and one backward instead of two each, and the
    normalised activations are never stored.  It is a BatchNorm1d/2d (code that finds batch
    norms by type, for init or freezing, finds it) with the same state_dict keys."""

    def __init__(self, num_features: int, activation: str = "relu", negative_slope: float = 0.01,
                 eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        name = type(self).__name__
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(f"{name}: activation must be 'relu' or 'leaky_relu', got {activation!r}")
        slope = 0.0 if activation == "relu" else negative_slope
        if isinstance(slope, bool) or not isinstance(slope, (int, float, np.integer, np.floating)) \
                or not 0.0 <= slope <= 1.0:
            raise ValueError(f"{name}: negative_slope must be a number in [0, 1], got {slope!r}")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.activation, self.negative_slope = activation, float(slope)

    def forward(self, x):
        return self._batch_norm(x, self.negative_slope)

    def extra_repr(self):
        act = f"activation={self.activation!r}"
        if self.activation == "leaky_relu":
            act += f", negative_slope={self.negative_slope}"
        return f"{self.num_features}, {act}, " + super().extra_repr().split(", ", 1)[1]


class BatchNormAct1d(_BatchNormAct, BatchNorm1d):
    """BatchNorm1d then ReLU / LeakyReLU(negative_slope), as one op."""


class BatchNormAct2d(_BatchNormAct, BatchNorm2d):
    """BatchNorm2d then ReLU / LeakyReLU(negative_slope), as one op."""


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, ...) input whose training statistics are those of the global
    batch, every rank's samples together (`F.sync_batch_norm`: one Allreduce of 2C numbers
    forward, one backward), so that N ranks normalise as one process with the whole batch
    would.  With one process, or in eval mode, it is plain batch norm.  `negative_slope`:
    a ReLU (0) or LeakyReLU after it, as BatchNormAct; None: none.  Same state_dict keys as
    BatchNorm.  `SyncBatchNorm.convert_sync_batchnorm(net)` swaps a net's batch norms for it.
    """
    _ranks = (2, 3, 4)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 negative_slope: float | None = None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.negative_slope = None if negative_slope is None else float(negative_slope)

    def forward(self, x):
        return self._batch_norm(x, self.negative_slope)

    def _normalize(self, args, negative_slope):
        from .. import distributed
        x, running_mean, running_var, weight, bias, use_batch_stats, momentum, eps = args
        if not use_batch_stats or distributed.size() == 1:
            return super()._normalize(args, negative_slope)
        return F.sync_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps,
                                 negative_slope)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """`module` with every BatchNorm1d/2d (BatchNormAct too, keeping its activation)
        replaced by a SyncBatchNorm that holds the SAME parameter and buffer tensors, so that
        optimizers made before still update them and the state_dict keys do not change.
        Replaced in place; a batch norm passed itself comes back converted."""
        if type(module) in (BatchNorm1d, BatchNorm2d, BatchNormAct1d, BatchNormAct2d):
            new = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats,
                      negative_slope=getattr(module, "negative_slope", None))
            new._parameters.update(module._parameters)
            new._buffers.update(module._buffers)
            new.train(module.training)
            return new
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child)
        return module

    def extra_repr(self):
        act = "" if self.negative_slope is None else f", negative_slope={self.negative_slope}"
        return super().extra_repr() + act


# ---------------------------------------------------------------------------------------
# Parameter-free layers

class LeakyReLU(Module):
    """max(x, 0) + negative_slope · min(x, 0).  (`inplace` is accepted and ignored: tinygan
    never overwrites an op's input.)"""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """max(x, 0) + a · min(x, 0) with learned slopes a: one shared (num_parameters=1) or one per
    channel; weight (num_parameters,) initialised to `init` (0.25), as torch."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = int(num_parameters), float(init)
        self.weight = _empty_parameter((self.num_parameters,), device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.weight.data[...] = self.init

    def forward(self, x):
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class ReLU(Module):
    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Flatten(Module):
    """Merge dims start_dim..end_dim into one: (N, C, H, W) -> (N, C·H·W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into `unflattened_size`: Unflatten(1, (C, H, W)) undoes Flatten()."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(int(s) for s in unflattened_size)

    def forward(self, x):
        d = self.dim % x.ndim if -x.ndim <= self.dim < x.ndim else None
        if d is None:
            raise ValueError(f"Unflatten: dim {self.dim} is out of range for input {x.shape}")
        sizes = self.unflattened_size
        known = int(np.prod([s for s in sizes if s != -1]))     # -1: inferred, as in reshape
        fits = x.shape[d] % known == 0 if -1 in sizes else x.shape[d] == known
        if not fits:
            raise ValueError(f"Unflatten: dim {self.dim} of input {x.shape} has size {x.shape[d]}, "
                             f"which cannot be split into {self.unflattened_size}")
        return x.reshape(x.shape[:d] + sizes + x.shape[d + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Upsample(Module):
    """Resize NCHW input to `size` or by `scale_factor` (2 when neither is given), with
    mode "nearest" (default), "bilinear" or "bicubic": F.interpolate's arguments."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self):
        sf = self.scale_factor
        if sf is None and self.size is not None:
            return f"size={self.size!r}, mode={self.mode!r}"
        sf = 2 if sf is None else sf
        sf = float(sf) if isinstance(sf, (int, float)) else tuple(float(s) for s in sf)
        return f"scale_factor={sf}, mode={self.mode!r}"


class Dropout(Module):
    """Training: zero each element with probability p and scale the rest by 1/(1-p);
    eval: the identity."""
    _op = staticmethod(F.dropout)

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return self._op(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace=False"


class Dropout2d(Dropout):
    """Dropout of whole channels of NCHW input (one draw per (n, c)); eval: the identity."""
    _op = staticmethod(F.dropout2d)
