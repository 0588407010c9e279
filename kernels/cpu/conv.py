"""The matrix product and the convolution family (conv2d, conv_transpose2d,
conv2d_grad_weight): im2col columns of the whole batch and ONE GEMM per convolution, or
Winograd F(2x2, 2x2) (winograd.py) for the DCGAN's kernel-4 stride-2 layers.  Every product
goes through blas.matmul.
"""
from __future__ import annotations

import numpy as np

from .. import blas, reference, routed, shared, winograd
from ..reference import conv_output_size, conv_transpose_output_size
from .gathers import (_batch_minor_kernel, _channel_major, _col2im_batch_minor_kernel,
                      _im2col_channel_major, _row_block, _swap01)
from .runtime import MALLOC_TUNED, REFERENCE, _scratch, unfit

# The plans the routes below name (kernels.explain shows them).
GEMM, NUMPY_MATMUL = "BLAS GEMM", "np.matmul"
WINOGRAD = "winograd F(2x2,2x2)"
IM2COL = "im2col + GEMM"
ONE_PIXEL = "one GEMM (1x1 input)"
SCATTER = "GEMM + col2im scatter"
_WINOGRAD_WHY = ("kernel 4x4, stride 2, padding 1, >= 16 channels on the image side, H and W "
                 "multiples of 4: 9 GEMMs with 0.5625x the FLOPs")


# ---------------------------------------------------------------------------------------
# The matrix product (`linear`, the MatMul op): the BLAS that blas.py picked

def _matmul_route(a, b):
    why = blas.route(a, b)
    return (GEMM, f"by {blas.describe()}") if why is None else (NUMPY_MATMUL, why)


@routed(_matmul_route)
def matmul(a, b):
    return blas.matmul(a, b)          # blas.matmul branches on blas.route itself


# ---------------------------------------------------------------------------------------
# The convolution family: columns + one GEMM + a transpose

def _winograd_input(x):
    """winograd.input_transform(x), shared like the columns inside a `sharing_inputs` block
    (a transposed convolution's two backward products both start from gy's)."""
    if not MALLOC_TUNED:
        return winograd.input_transform(x)
    return shared("winograd", x, (), lambda: winograd.input_transform(x))


def _winograd_gy(gy):
    """winograd.gy_transform(gy), shared the same way (a conv2d's two backward products, the
    input gradient by the Winograd transposed convolution and the weight gradient, both
    start from it)."""
    if not MALLOC_TUNED:
        return winograd.gy_transform(gy)
    return shared("winograd_gy", gy, (), lambda: winograd.gy_transform(gy))


def _conv2d_route(x, w, stride=(1, 1), padding=(0, 0)):
    why = unfit(x, w)
    if why:
        return REFERENCE, why
    if w.shape[1] == x.shape[1] and winograd.applies(x.shape, w.shape[2:], stride, padding):
        return WINOGRAD, _WINOGRAD_WHY
    return IM2COL, "not the Winograd shape: the columns of the whole batch, one GEMM"


@routed(_conv2d_route, products=True)
def conv2d(x, w, stride=(1, 1), padding=(0, 0)):
    plan = _conv2d_route(x, w, stride, padding)[0]
    if plan == REFERENCE:
        return reference.conv2d(x, w, stride, padding)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    if plan == WINOGRAD:
        return winograd.conv2d(_winograd_input(x), w, x.shape)      # the DCGAN's k4 s2 p1
    N = x.shape[0]
    OC, C, KH, KW = w.shape
    col = _im2col_channel_major(x, KH, KW, stride, padding)
    OH, OW = col.shape[4:]
    Y = _scratch("gemm", (OC, N * OH * OW), x.dtype)
    blas.matmul(w.reshape(OC, C * KH * KW), col.reshape(C * KH * KW, -1), out=Y)  # (OC, N·OH·OW)
    y = np.empty((N, OC, OH, OW), dtype=x.dtype)
    _swap01(Y.reshape(OC, N, OH * OW), y.reshape(N, OC, OH * OW))
    return y


def _conv_transpose2d_route(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    why = unfit(x, w)
    if why:
        return REFERENCE, why
    H, W = x.shape[2:]
    KH, KW = w.shape[2:]
    OH = conv_transpose_output_size(H, KH, stride[0], padding[0], output_padding[0])
    OW = conv_transpose_output_size(W, KW, stride[1], padding[1], output_padding[1])
    if (H, W, padding[0], padding[1], OH, OW) == (1, 1, 0, 0, KH, KW):
        return ONE_PIXEL, "a 1x1 input whose window is the whole output: no columns, no scatter"
    if (winograd.applies_transposed(x.shape, w.shape, stride, padding)
            and (OH, OW) == (2 * H, 2 * W)):
        return WINOGRAD, _WINOGRAD_WHY
    return SCATTER, "not the Winograd shape: batch-innermost columns, scattered onto the output"


@routed(_conv_transpose2d_route, products=True)
def conv_transpose2d(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    plan = _conv_transpose2d_route(x, w, stride, padding, output_padding)[0]
    if plan == REFERENCE:
        return reference.conv_transpose2d(x, w, stride, padding, output_padding)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    N, C, H, W = x.shape
    _, OC, KH, KW = w.shape
    OH = conv_transpose_output_size(H, KH, stride[0], padding[0], output_padding[0])
    OW = conv_transpose_output_size(W, KW, stride[1], padding[1], output_padding[1])
    if plan == ONE_PIXEL:
        # One input pixel whose window is the whole output (a DCGAN G's first layer, and
        # the input gradient of a critic's last): y[n, (o, j, i)] = sum_c x[n, c] w[c, (o, j, i)]
        # is one GEMM straight into NCHW, no columns, no scatter.  With C = 1 (a critic's
        # one logit) it is an outer product, which OpenBLAS runs far slower than a broadcast
        # multiply of the same float32 products.
        if C == 1:
            return np.multiply(x.reshape(N, 1), w.reshape(1, OC * KH * KW)).reshape(N, OC, KH, KW)
        return blas.matmul(x.reshape(N, C), w.reshape(C, OC * KH * KW)).reshape(N, OC, KH, KW)
    if plan == WINOGRAD:
        return winograd.conv_transpose2d(_winograd_gy(x), w, x.shape)   # the DCGAN's k4 s2 p1
    # col[(o, j, i), (h, w, n)] = sum_c w[c, o, j, i] x[n, c, h, w]: one GEMM over the batch,
    # then every column entry is added onto the output pixel it belongs to (col2im).
    # (the columns batch-innermost: x copied to (C, H·W, n) first, see _col2im_batch_minor_kernel;
    # the batch in chunks whose columns fit in COL_CHUNK_BYTES, see _batch_chunk)
    y = np.empty((N, OC, OH, OW), dtype=x.dtype)
    rows = OC * KH * KW
    nc = _batch_chunk(N, rows * H * W * x.itemsize)
    xbuf = _scratch("t", (C * H * W * nc,), x.dtype)
    colbuf = _scratch("gemm", (rows * H * W * nc,), x.dtype)
    for n0 in range(0, N, nc):
        n = min(nc, N - n0)
        xB = xbuf[:C * H * W * n].reshape(C, H * W, n)
        col = colbuf[:rows * H * W * n].reshape(rows, H * W * n)
        _batch_minor_kernel(x[n0:n0 + n], xB)
        blas.matmul(w.reshape(C, rows).T, xB.reshape(C, H * W * n), out=col)
        _col2im_batch_minor_kernel(col.reshape(OC, KH, KW, H, W, n), stride[0], stride[1],
                                   padding[0], padding[1], _row_block(OC, OH, OW),
                                   y[n0:n0 + n])
    return y


# The transposed convolution's GEMM writes its columns and the scatter reads them back: at
# G3's shape (also D2's input gradient) 16 MiB of them, which go out to memory and come back.
# Done in chunks of the batch whose columns fit in cache (one 8 MiB buffer), each chunk's GEMM
# writes lines that are still in cache and the scatter reads them from there, which made the
# layer and the DCGAN step's scatters faster.  Smaller chunks lost it again: the scatter's
# batch runs get short (4 MiB, 16 images: the step no faster than with the whole batch).
COL_CHUNK_BYTES = 8 << 20


def _batch_chunk(N, col_bytes_per_image):
    """Images per chunk of the transposed convolution: the fewest equal chunks whose columns
    fit in COL_CHUNK_BYTES (one image at least)."""
    chunks = min(N, max(1, -(-(N * col_bytes_per_image) // COL_CHUNK_BYTES)))
    return -(-N // chunks)


def _conv2d_grad_weight_route(x, gy, kernel_size, stride=(1, 1), padding=(0, 0)):
    why = unfit(x, gy)
    if why:
        return REFERENCE, why
    if winograd.applies(x.shape, kernel_size, stride, padding):
        return WINOGRAD, _WINOGRAD_WHY
    return IM2COL, "not the Winograd shape: gy times the columns' transpose, one GEMM"


@routed(_conv2d_grad_weight_route, products=True)
def conv2d_grad_weight(x, gy, kernel_size, stride=(1, 1), padding=(0, 0)):
    plan = _conv2d_grad_weight_route(x, gy, kernel_size, stride, padding)[0]
    if plan == REFERENCE:
        return reference.conv2d_grad_weight(x, gy, kernel_size, stride, padding)
    x, gy = np.ascontiguousarray(x), np.ascontiguousarray(gy)
    N, C, H, W = x.shape
    KH, KW = kernel_size
    OH = conv_output_size(H, KH, stride[0], padding[0])
    OW = conv_output_size(W, KW, stride[1], padding[1])
    if tuple(gy.shape[2:]) != (OH, OW) or gy.shape[0] != N:
        raise ValueError(f"conv2d_grad_weight: gy {tuple(gy.shape)} does not match the "
                         f"{(OH, OW)} output of x {tuple(x.shape)}")
    OC = gy.shape[1]
    if plan == WINOGRAD:
        return winograd.conv2d_grad_weight(_winograd_input(x), _winograd_gy(gy), x.shape)
    col = _im2col_channel_major(x, KH, KW, stride, padding).reshape(C * KH * KW, -1)
    gyT = _channel_major(gy, "t")                                 # (OC, N, OH·OW)
    # gW[o, (c, j, i)] = sum over (n, p, q) of gy[n, o, p, q] col[(c, j, i), (n, p, q)]:
    # gy @ colᵀ, colᵀ handed to BLAS as a transposed operand.  (col @ gyᵀ is the same GEMM
    # in OpenBLAS's time, but its (C·KH·KW, OC) result then needs a transposing copy, a
    # noticeable part of D3's weight gradient.)
    return blas.matmul(gyT.reshape(OC, N * OH * OW), col.T).reshape(OC, C, KH, KW)
