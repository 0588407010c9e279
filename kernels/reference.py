"""Reference kernels: plain NumPy/CuPy, written to be read.

These are the teaching versions and the oracle every fast kernel is tested against; a fast
kernel in `cpu/` / `cuda.py` has exactly the same signature.  They take and return raw
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


def matmul(a, b):
    """a @ b: the product of `linear` and of the MatMul op (batched over leading dims for
    N-D operands), as the array module's BLAS computes it."""
    return a @ b


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


# ---------------------------------------------------------------------------------------
# Batch norm (section owned by tinygan/functional/normalization.py)
#
# x is (N, C) or (N, C, H, W); channel c's statistics are taken over every other axis, over
# M = N (or N*H*W) values.  mean, var, inv_std, weight, bias are (C,) arrays; weight and bias
# are always arrays (the op passes ones/zeros when the layer has no affine part), so that a
# fast kernel never has to branch on None.

def _bn_axes(x):
    """The reduction axes of x and the shape that broadcasts a (C,) vector against x."""
    axes = (0,) + tuple(range(2, x.ndim))
    return axes, (1, x.shape[1]) + (1,) * (x.ndim - 2)


def batch_norm_stats(x):
    """Per-channel mean and biased variance: mean = 1/M sum x,  var = 1/M sum (x - mean)^2.

    Two passes (centre first, then square) rather than E[x^2] - E[x]^2, which loses every
    digit when |mean| >> std.
    """
    axes, shape = _bn_axes(x)
    mean = x.mean(axis=axes)
    xc = x - mean.reshape(shape)
    return mean, (xc * xc).mean(axis=axes)


def batch_norm_apply(x, mean, inv_std, weight, bias):
    """y = (x - mean) * inv_std * weight + bias, as one per-channel affine map x * scale + shift."""
    _, shape = _bn_axes(x)
    scale = weight * inv_std
    shift = bias - mean * scale
    return x * scale.reshape(shape) + shift.reshape(shape)


def batch_norm_backward(x, gy, mean, inv_std, weight):
    """First-order training-mode backward of batch_norm_apply with batch statistics.

    With xhat = (x - mean) * inv_std and sums over the M values of a channel:
        gb = sum(gy),   gw = sum(gy * xhat),
        gx = (weight * inv_std / M) * (M * gy - gb - xhat * gw).
    Returns (gx, gw, gb).  mean and inv_std are taken as numbers: this is the forward of the
    op BatchNormGrad, whose own backward recomputes them from x to differentiate again.
    """
    axes, shape = _bn_axes(x)
    M = x.size // x.shape[1]
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    gb = gy.sum(axis=axes)
    gw = (gy * xhat).sum(axis=axes)
    gx = (weight * inv_std / M).reshape(shape) * (M * gy - gb.reshape(shape) - xhat * gw.reshape(shape))
    return gx, gw, gb


def batch_norm_act_apply(x, mean, inv_std, weight, bias, slope):
    """leaky_relu(batch_norm_apply(x, ...), slope) for 0 <= slope <= 1 (ReLU: slope 0).

    The pair a DCGAN repeats after every hidden conv; a fast backend does it in one pass and
    never stores the normalised x in between."""
    return leaky_relu(batch_norm_apply(x, mean, inv_std, weight, bias), slope)


def batch_norm_act_backward(x, y, gy, mean, inv_std, weight, slope):
    """(gx, gw, gb) of y = batch_norm_act_apply(x, ...): the activation's masked scale
    (read from the sign of y), then batch_norm_backward."""
    return batch_norm_backward(x, leaky_relu_grad(y, gy, slope), mean, inv_std, weight)


# ---------------------------------------------------------------------------------------
# Optimizer updates (section owned by tinygan/optim.py)
#
# Each updates p and its state arrays in
# place, exactly as PyTorch's single-tensor code does, with the same operation order so that
# float32 results agree to rounding.  g is never modified (it is the user's .grad).

def sgd_update(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
               first=False):
    """p <- p - lr * d, where d = g (+ weight_decay * p), or with momentum the buffer
    b <- momentum * b + (1 - dampening) * d (b = d on the first step), and d = b, or
    d + momentum * b for Nesterov.  `buf` is None when momentum == 0."""
    if weight_decay != 0:
        g = g + weight_decay * p
    if buf is not None:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g


def adam_update(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay=0.0):
    """One Adam step t = `step` (>= 1) on p with moments m, v:
    m <- m + (1-β1)(g - m),  v <- β2 v + (1-β2) g²,
    p <- p - lr/(1-β1^t) * m / (sqrt(v)/sqrt(1-β2^t) + eps)."""
    xp = get_array_module(p)
    if weight_decay != 0:
        g = g + weight_decay * p
    m += (1 - beta1) * (g - m)                  # torch: exp_avg.lerp_(g, 1 - beta1)
    v *= beta2
    v += (1 - beta2) * g * g
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    denom = xp.sqrt(v) / bias_correction2_sqrt + eps
    p -= (lr / bias_correction1) * m / denom


def rmsprop_update(p, g, square_avg, grad_avg, buf, lr, alpha, eps, weight_decay=0.0,
                   momentum=0.0):
    """s <- α s + (1-α) g²;  denom = sqrt(s - a²) + eps with a <- a + (1-α)(g - a) when
    centered (grad_avg given), else sqrt(s) + eps;  p <- p - lr * g / denom, or through the
    momentum buffer b <- momentum * b + g / denom, p <- p - lr * b (when buf is given)."""
    xp = get_array_module(p)
    if weight_decay != 0:
        g = g + weight_decay * p
    square_avg *= alpha
    square_avg += (1 - alpha) * g * g
    if grad_avg is not None:
        grad_avg += (1 - alpha) * (g - grad_avg)
        denom = xp.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        denom = xp.sqrt(square_avg) + eps
    if buf is not None:
        buf *= momentum
        buf += g / denom
        p -= lr * buf
    else:
        p -= lr * g / denom


# ---------------------------------------------------------------------------------------
# Leaky ReLU (section owned by tinygan/functional/activation.py)
#
# y = x for x > 0, slope * x otherwise.  Both kernels avoid `xp.where`, which costs many times
# more than one `maximum` (it builds a mask and selects): the selection is done by arithmetic.

def leaky_relu(x, slope):
    """y = max(x, slope*x) when slope <= 1 (the larger of the two is x exactly when x > 0);
    y = min(x, slope*x) when slope > 1 (there slope*x is the larger one for x > 0)."""
    xp = get_array_module(x)
    if slope <= 1:
        return xp.maximum(x, slope * x)
    return xp.minimum(x, slope * x)


def leaky_relu_grad(y, gy, slope):
    """gx = gy * (1 if y > 0 else slope) — a masked scale, linear in gy.

    `y` is only read for its sign: the output of leaky_relu for slope >= 0 (same sign as x),
    the input x itself otherwise.  The scale is built as mask * (1 - slope) + slope.
    """
    scale = (y > 0).astype(gy.dtype)
    scale *= gy.dtype.type(1 - slope)
    scale += gy.dtype.type(slope)
    scale *= gy
    return scale


# ---------------------------------------------------------------------------------------
# Minibatch discrimination's pairwise L1 distances (Salimans et al. 2016, §3.2).  M is
# (N, B, C): N samples, each with B kernels' C-dimensional rows.  With the signs
# S[i, j, b, c] = sign(M[i, b, c] − M[j, b, c]) (piecewise constant in M, S[j, i] = −S[i, j]),
# the distances' gradient is a linear map of the upstream gradient, and so is its adjoint;
# the two maps are each other's adjoints, which is what makes the op differentiable forever.

def _pairwise_signs(M):
    xp = get_array_module(M)
    return xp.sign(M[:, None] - M[None, :])                         # (N, N, B, C)


def pairwise_l1(M):
    """l1[i, j, b] = Σ_c |M[i, b, c] − M[j, b, c]|:  (N, B, C) -> (N, N, B)."""
    return abs(M[:, None] - M[None, :]).sum(axis=3)


def pairwise_l1_grad(M, g):
    """gM[k, b, c] = Σ_j (g[k, j, b] + g[j, k, b]) S[k, j, b, c]:  g (N, N, B) -> (N, B, C),
    the gradient of Σ g·l1 in M."""
    sym = g + g.transpose(1, 0, 2)
    return (sym[..., None] * _pairwise_signs(M)).sum(axis=1)


def pairwise_l1_grad_adjoint(M, u):
    """g'[k, j, b] = Σ_c S[k, j, b, c] (u[k, b, c] − u[j, b, c]):  u (N, B, C) -> (N, N, B),
    the adjoint of pairwise_l1_grad (and, at u = M, pairwise_l1 itself)."""
    return (_pairwise_signs(M) * (u[:, None] - u[None, :])).sum(axis=3)
