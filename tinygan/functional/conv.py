"""Convolution and transposed convolution: a family closed under differentiation by three ops.

Notation (NCHW): x (N, C, H, W);  conv2d weight W (OC, C, KH, KW);  stride (SH, SW), padding
(PH, PW);  y (N, OC, OH, OW) with OH = (H + 2*PH - KH) // SH + 1;  xpad is x zero-padded by PH, PW.

    conv2d              y[n,o,p,q]  = sum_{c,j,i} W[o,c,j,i] * xpad[n, c, p*SH + j, q*SW + i]
    conv_transpose2d    the adjoint of conv2d in x:  <conv2d(x, W), y> = <x, conv_transpose2d(y, W)>
    conv2d_grad_weight  gW[o,c,j,i] = sum_{n,p,q} gy[n,o,p,q] * xpad[n, c, p*SH + j, q*SW + i]

Each of them is bilinear in its two inputs, so each partial derivative is a linear map of the
upstream gradient — and that linear map is always one of the three ops again:

    conv2d(x, W):              gx = conv_transpose2d(gy, W)      gW = conv2d_grad_weight(x, gy)
    conv_transpose2d(x, W):    gx = conv2d(gy, W)                gW = conv2d_grad_weight(gy, x)
    conv2d_grad_weight(x, gy), upstream ggW:
                               gx = conv_transpose2d(gy, ggW)    ggy = conv2d(x, ggW)

(the last line uses the *incoming* ggW; DeZero's version ignored it).  A bias adds
gb = sum of gy over (N, OH, OW).  So the family can be differentiated to any order — a
gradient penalty needs two — and a backend needs exactly three fast kernels, fetched here
through `tinygan.kernels.get`.

Output padding.  conv2d's floor maps SH neighbouring input sizes H to the same OH, so its
adjoint must be told which one to rebuild: the backward passes
output_padding = (H + 2*PH - KH) % SH, which restores x's exact size (and is always < SH).
"""
from __future__ import annotations

from .. import kernels
from ..autograd import Function, Tensor, _is_array
from ..backend import get_array_module
from ._args import pair as _pair

__all__ = ["conv2d", "conv_transpose2d", "conv2d_grad_weight"]


def _restoring_output_padding(x_shape, kernel_size, stride, padding) -> tuple:
    """The output_padding with which conv_transpose2d maps conv2d's output size back to x's."""
    return tuple((x_shape[2 + d] + 2 * padding[d] - kernel_size[d]) % stride[d] for d in range(2))


def _add_bias(y, b):
    y += b.reshape(1, -1, 1, 1)       # y is the kernel's fresh output: adding in place is safe
    return y


class Conv2d(Function):
    """y = conv2d(x, W) (+ b); inputs (x, W) or (x, W, b)."""

    def __init__(self, stride, padding):
        self.stride, self.padding = stride, padding

    def forward(self, x, W, b=None):
        y = kernels.get("conv2d", get_array_module(x))(x, W, self.stride, self.padding)
        return y if b is None else _add_bias(y, b)

    def backward(self, gy):
        x, W = self.inputs[:2]
        need = self.needs_input_grad
        kernel_size = W.shape[2:]
        gx = gW = gb = None
        with kernels.sharing_inputs():          # both products start from gy in (OC, N, ·)
            if need[0]:
                op = _restoring_output_padding(x.shape, kernel_size, self.stride, self.padding)
                gx = ConvTranspose2d(self.stride, self.padding, op)(gy, W)
            if need[1]:
                gW = Conv2dGradWeight(kernel_size, self.stride, self.padding)(x, gy)
        if len(self.inputs) == 2:
            return gx, gW
        if need[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gW, gb


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, W) (+ b) with W (C_in, C_out, KH, KW); inputs (x, W) or (x, W, b)."""

    def __init__(self, stride, padding, output_padding):
        self.stride, self.padding, self.output_padding = stride, padding, output_padding

    def forward(self, x, W, b=None):
        y = kernels.get("conv_transpose2d", get_array_module(x))(
            x, W, self.stride, self.padding, self.output_padding)
        return y if b is None else _add_bias(y, b)

    def backward(self, gy):
        # y = conv_transpose2d(x, W) is the adjoint of conv2d(., W), so <y, gy> = <x, conv2d(gy, W)>:
        # in x that is conv2d(gy, W); in W it is the weight gradient of a conv2d whose input is
        # gy and whose upstream gradient is x.  gy's conv2d output has exactly x's size because
        # output_padding < stride.
        x, W = self.inputs[:2]
        need = self.needs_input_grad
        gx = gW = gb = None
        with kernels.sharing_inputs():          # both products start from gy's im2col columns
            if need[0]:
                gx = Conv2d(self.stride, self.padding)(gy, W)
            if need[1]:
                gW = Conv2dGradWeight(W.shape[2:], self.stride, self.padding)(gy, x)
        if len(self.inputs) == 2:
            return gx, gW
        if need[2]:
            gb = gy.sum((0, 2, 3))
        return gx, gW, gb


class Conv2dGradWeight(Function):
    """gW = conv2d_grad_weight(x, gy): dL/dW of y = conv2d(x, W), bilinear in (x, gy)."""

    def __init__(self, kernel_size, stride, padding):
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), stride, padding

    def forward(self, x, gy):
        return kernels.get("conv2d_grad_weight", get_array_module(x))(
            x, gy, self.kernel_size, self.stride, self.padding)

    def backward(self, ggW):
        # <gW, ggW> = <conv2d(x, ggW), gy> by the definition of gW; differentiate that in gy
        # (conv2d(x, ggW)) and in x (the adjoint of conv2d(., ggW) applied to gy).
        x, gy = self.inputs
        need = self.needs_input_grad
        gx = ggy = None
        if need[0]:
            op = _restoring_output_padding(x.shape, self.kernel_size, self.stride, self.padding)
            gx = ConvTranspose2d(self.stride, self.padding, op)(gy, ggW)
        if need[1]:
            ggy = Conv2d(self.stride, self.padding)(x, ggW)
        return gx, ggy


# ---------------------------------------------------------------------------------------
# Door checks: every bad argument becomes a ValueError/TypeError that names the op, the
# argument and the shapes, before any kernel sees it.

def _tensor(v, op: str, name: str) -> Tensor:
    if isinstance(v, Tensor):
        return v
    if _is_array(v):
        return Tensor(v)
    raise TypeError(f"{op}: {name} must be a Tensor or an array, got {type(v).__name__}")


def _check_operands(op: str, named: list) -> None:
    """Same device, floating point, same dtype, for [(name, tensor), ...] (None entries skipped)."""
    named = [(n, t) for n, t in named if t is not None]
    first_name, first = named[0]
    for name, t in named[1:]:
        if t.device != first.device:
            raise ValueError(f"{op}: {first_name} is on {first.device} but {name} is on {t.device}; "
                             f"move them to one device with .to(device)")
    for name, t in named:
        if t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be floating point, got {t.dtype}")
    for name, t in named[1:]:
        if t.dtype != first.dtype:
            raise TypeError(f"{op}: {first_name} is {first.dtype} but {name} is {t.dtype}; "
                            f"convert one of them with .float() or .double()")


def _check_4d(op: str, name: str, t: Tensor, layout: str) -> None:
    if t.ndim != 4:
        raise ValueError(f"{op}: {name} must be 4-D {layout}, got shape {t.shape}")


def _check_geometry(op: str, stride, padding) -> None:
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be >= 1, got {stride}")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be >= 0, got {padding}")


def _check_kernel_fits(op: str, x: Tensor, kernel_size, padding, what: str) -> None:
    padded = tuple(x.shape[2 + d] + 2 * padding[d] for d in range(2))
    if min(kernel_size) < 1:
        raise ValueError(f"{op}: {what} has an empty kernel {tuple(kernel_size)}")
    if kernel_size[0] > padded[0] or kernel_size[1] > padded[1]:
        raise ValueError(f"{op}: kernel {tuple(kernel_size)} is larger than the padded input "
                         f"{padded} (input {x.shape}, {what}, padding {padding})")


def _check_bias(op: str, b: Tensor, W: Tensor, channels: int, which: str) -> None:
    if b.shape != (channels,):
        raise ValueError(f"{op}: bias has shape {b.shape} but weight {W.shape} has {channels} "
                         f"{which} channels, expected ({channels},)")


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D cross-correlation, as `torch.nn.functional.conv2d` (no dilation, no groups).

    y[n,o,p,q] = b[o] + sum_{c,j,i} weight[o,c,j,i] * xpad[n, c, p*SH + j, q*SW + i]
    x (N, C, H, W), weight (OC, C, KH, KW), bias (OC,) or None -> y (N, OC, OH, OW),
    OH = (H + 2*PH - KH) // SH + 1.  stride and padding: an int or a pair.
    """
    op = "conv2d"
    x, W = _tensor(x, op, "input"), _tensor(weight, op, "weight")
    b = None if bias is None else _tensor(bias, op, "bias")
    stride, padding = _pair(stride, op, "stride"), _pair(padding, op, "padding")
    _check_operands(op, [("input", x), ("weight", W), ("bias", b)])
    _check_4d(op, "input", x, "NCHW")
    _check_4d(op, "weight", W, "(C_out, C_in, KH, KW)")
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"{op}: input {x.shape} has {x.shape[1]} channels but weight {W.shape} "
                         f"expects {W.shape[1]}")
    _check_geometry(op, stride, padding)
    _check_kernel_fits(op, x, W.shape[2:], padding, f"weight {W.shape}")
    if b is not None:
        _check_bias(op, b, W, W.shape[0], "output")
    f = Conv2d(stride, padding)
    return f(x, W) if b is None else f(x, W, b)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """Transposed convolution ("deconvolution"), as `torch.nn.functional.conv_transpose2d`.

    The adjoint of conv2d in its input: every input pixel adds a weighted copy of the kernel
    to an SH×SW-strided output, which is then cropped by the padding:
        y[n, o, p*SH + j - PH, q*SW + i - PW] += x[n,c,p,q] * weight[c,o,j,i]   (+ b[o])
    x (N, C_in, H, W), weight (C_in, C_out, KH, KW), bias (C_out,) or None -> y (N, C_out, OH, OW),
    OH = (H - 1)*SH - 2*PH + KH + output_padding, with 0 <= output_padding < stride.
    """
    op = "conv_transpose2d"
    x, W = _tensor(x, op, "input"), _tensor(weight, op, "weight")
    b = None if bias is None else _tensor(bias, op, "bias")
    stride, padding = _pair(stride, op, "stride"), _pair(padding, op, "padding")
    output_padding = _pair(output_padding, op, "output_padding")
    _check_operands(op, [("input", x), ("weight", W), ("bias", b)])
    _check_4d(op, "input", x, "NCHW")
    _check_4d(op, "weight", W, "(C_in, C_out, KH, KW)")
    if x.shape[1] != W.shape[0]:
        raise ValueError(f"{op}: input {x.shape} has {x.shape[1]} channels but weight {W.shape} "
                         f"expects {W.shape[0]}")
    _check_geometry(op, stride, padding)
    if min(W.shape[2:]) < 1:
        raise ValueError(f"{op}: weight {W.shape} has an empty kernel {W.shape[2:]}")
    if min(output_padding) < 0 or any(o >= s for o, s in zip(output_padding, stride)):
        raise ValueError(f"{op}: output_padding {output_padding} must be >= 0 and smaller than "
                         f"stride {stride}")
    out = tuple((x.shape[2 + d] - 1) * stride[d] - 2 * padding[d] + W.shape[2 + d] + output_padding[d]
                for d in range(2))
    if min(out) < 1:
        raise ValueError(f"{op}: output size {out} is not positive (input {x.shape}, weight "
                         f"{W.shape}, stride {stride}, padding {padding}, output_padding "
                         f"{output_padding})")
    if b is not None:
        _check_bias(op, b, W, W.shape[1], "output")
    f = ConvTranspose2d(stride, padding, output_padding)
    return f(x, W) if b is None else f(x, W, b)


def conv2d_grad_weight(x, gy, kernel_size, stride=1, padding=0):
    """The weight gradient of y = conv2d(x, W), as a differentiable op of (x, gy).

    gW[o,c,j,i] = sum_{n,p,q} gy[n,o,p,q] * xpad[n, c, p*SH + j, q*SW + i]
    x (N, C, H, W), gy (N, OC, OH, OW) -> gW (OC, C, KH, KW); OH, OW must be conv2d's output size.
    """
    op = "conv2d_grad_weight"
    x, gy = _tensor(x, op, "input"), _tensor(gy, op, "gy")
    kernel_size = _pair(kernel_size, op, "kernel_size")
    stride, padding = _pair(stride, op, "stride"), _pair(padding, op, "padding")
    _check_operands(op, [("input", x), ("gy", gy)])
    _check_4d(op, "input", x, "NCHW")
    _check_4d(op, "gy", gy, "NCHW")
    _check_geometry(op, stride, padding)
    _check_kernel_fits(op, x, kernel_size, padding, f"kernel_size {kernel_size}")
    expected = (x.shape[0], gy.shape[1]) + tuple(
        kernels.reference.conv_output_size(x.shape[2 + d], kernel_size[d], stride[d], padding[d]) for d in range(2))
    if gy.shape != expected:
        raise ValueError(f"{op}: gy {gy.shape} does not match the output {expected} of conv2d over "
                         f"input {x.shape} with kernel_size {kernel_size}, stride {stride}, "
                         f"padding {padding}")
    return Conv2dGradWeight(kernel_size, stride, padding)(x, gy)
