"""Reference kernels: plain NumPy/CuPy, written to be read.

These are the teaching versions and the oracle every fast kernel is tested against; a fast
kernel in `cpu.py` / `cuda.py` has exactly the same signature.  They take and return raw
arrays (no autograd) and work for NumPy or CuPy input through `xp`.

Notation (NCHW):
    N batch, C / C_in input channels, OC / C_out output channels,
    H, W input height/width, KH, KW kernel size, SH, SW stride, PH, PW padding,
    OH, OW output height/width:  OH = (H + 2*PH - KH) // SH + 1.

The convolution family is closed under differentiation with three kernels
(conv2d, conv_transpose2d, conv2d_grad_weight): the backward of each is made of the others.
"""
from __future__ import annotations

from tinygan.backend import get_array_module


def conv_output_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def conv_transpose_output_size(size: int, k: int, s: int, p: int, op: int = 0) -> int:
    return (size - 1) * s - 2 * p + k + op


def im2col(x, KH, KW, stride, padding):
    """Unfold every KH×KW window of x into a column: (N, C, H, W) -> (N, C, KH, KW, OH, OW).

    Instead of looping over the OH·OW windows, loop over the KH·KW kernel offsets: for offset
    (j, i), the pixel each window sees there is a strided slice of the padded image.  The
    extra S-1 rows/cols of padding keep every slice in bounds.
    """
    xp = get_array_module(x)
    N, C, H, W = x.shape
    (SH, SW), (PH, PW) = stride, padding
    OH, OW = conv_output_size(H, KH, SH, PH), conv_output_size(W, KW, SW, PW)
    img = xp.pad(x, ((0, 0), (0, 0), (PH, PH + SH - 1), (PW, PW + SW - 1)))
    col = xp.empty((N, C, KH, KW, OH, OW), dtype=x.dtype)
    for j in range(KH):
        for i in range(KW):
            col[:, :, j, i] = img[:, :, j:j + SH * OH:SH, i:i + SW * OW:SW]
    return col


def col2im(col, x_shape, stride, padding):
    """The adjoint of im2col: add every column entry back onto the pixel it was read from."""
    xp = get_array_module(col)
    N, C, H, W = x_shape
    _, _, KH, KW, OH, OW = col.shape
    (SH, SW), (PH, PW) = stride, padding
    img = xp.zeros((N, C, H + 2 * PH + SH - 1, W + 2 * PW + SW - 1), dtype=col.dtype)
    for j in range(KH):
        for i in range(KW):
            img[:, :, j:j + SH * OH:SH, i:i + SW * OW:SW] += col[:, :, j, i]
    return img[:, :, PH:PH + H, PW:PW + W]


def conv2d(x, w, stride=(1, 1), padding=(0, 0)):
    """y[n, o, p, q] = sum_{c,j,i} w[o, c, j, i] * xpad[n, c, p*SH + j, q*SW + i].

    x (N, C, H, W), w (OC, C, KH, KW) -> y (N, OC, OH, OW).
    """
    xp = get_array_module(x)
    KH, KW = w.shape[2:]
    col = im2col(x, KH, KW, stride, padding)                  # (N, C, KH, KW, OH, OW)
    y = xp.tensordot(col, w, axes=((1, 2, 3), (1, 2, 3)))     # (N, OH, OW, OC)
    return xp.ascontiguousarray(y.transpose(0, 3, 1, 2))


def conv_transpose2d(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    """The adjoint of conv2d with respect to its input (a.k.a. "deconvolution").

    x (N, C_in, H, W), w (C_in, C_out, KH, KW) -> y (N, C_out, OH, OW) with
    OH = (H - 1)*SH - 2*PH + KH + output_padding.  Each input pixel scatters a weighted copy
    of the kernel onto the output: multiply into columns, then col2im adds them up.
    """
    xp = get_array_module(x)
    N, _, H, W = x.shape
    KH, KW = w.shape[2:]
    OH = conv_transpose_output_size(H, KH, stride[0], padding[0], output_padding[0])
    OW = conv_transpose_output_size(W, KW, stride[1], padding[1], output_padding[1])
    col = xp.tensordot(w, x, axes=((0,), (1,)))                # (C_out, KH, KW, N, H, W)
    col = xp.ascontiguousarray(col.transpose(3, 0, 1, 2, 4, 5))  # (N, C_out, KH, KW, H, W)
    return col2im(col, (N, w.shape[1], OH, OW), stride, padding)


def conv2d_grad_weight(x, gy, kernel_size, stride=(1, 1), padding=(0, 0)):
    """dL/dw of y = conv2d(x, w): gw[o, c, j, i] = sum_{n,p,q} gy[n, o, p, q] * xpad[n, c, p*SH+j, q*SW+i].

    x (N, C, H, W), gy (N, OC, OH, OW) -> gw (OC, C, KH, KW).
    """
    xp = get_array_module(x)
    KH, KW = kernel_size
    col = im2col(x, KH, KW, stride, padding)                  # (N, C, KH, KW, OH, OW)
    if col.shape[4:] != gy.shape[2:]:
        raise ValueError(f"conv2d_grad_weight: gy {tuple(gy.shape)} does not match the "
                         f"{tuple(col.shape[4:])} output of x {tuple(x.shape)}")
    return xp.tensordot(gy, col, axes=((0, 2, 3), (0, 4, 5)))  # (OC, C, KH, KW)
