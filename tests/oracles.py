"""Loop-level oracles: each op written straight from its definition, slow and obviously right.

They share no code with `kernels/` (no im2col, no col2im, no tensordot) so that a test
comparing a kernel with them is not a kernel checking itself.  NumPy only, float64 results.
Notation as in kernels/reference.py: x (N, C, H, W), w (OC, C, KH, KW) for conv2d and
(C_in, C_out, KH, KW) for conv_transpose2d, stride (SH, SW), padding (PH, PW).
"""
import numpy as np


def zero_pad(x, padding):
    """x (N, C, H, W) with PH rows of zeros above and below, PW columns left and right."""
    PH, PW = padding
    N, C, H, W = x.shape
    out = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=np.float64)
    out[:, :, PH:PH + H, PW:PW + W] = x
    return out


def conv2d_naive(x, w, stride=(1, 1), padding=(0, 0)):
    """y[n, o, p, q] = sum_{c, j, i} w[o, c, j, i] * xpad[n, c, p*SH + j, q*SW + i]."""
    (SH, SW), xpad = stride, zero_pad(x, padding)
    N, _, HP, WP = xpad.shape
    OC, C, KH, KW = w.shape
    OH, OW = (HP - KH) // SH + 1, (WP - KW) // SW + 1
    y = np.zeros((N, OC, OH, OW))
    for n in range(N):
        for o in range(OC):
            for p in range(OH):
                for q in range(OW):
                    window = xpad[n, :, p * SH:p * SH + KH, q * SW:q * SW + KW]
                    y[n, o, p, q] = np.sum(window * w[o])
    return y


def conv_transpose2d_naive(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
    """The scatter definition: input pixel (p, q) adds x[n, c, p, q] * w[c, :, :, :] to the
    KH×KW block of the full output at (p*SH, q*SW); the full output (size (H-1)*SH + KH +
    output_padding) is then cropped by the padding on each side."""
    (SH, SW), (PH, PW), (OPH, OPW) = stride, padding, output_padding
    N, C, H, W = x.shape
    _, OC, KH, KW = w.shape
    full = np.zeros((N, OC, (H - 1) * SH + KH + OPH, (W - 1) * SW + KW + OPW))
    for n in range(N):
        for c in range(C):
            for p in range(H):
                for q in range(W):
                    full[n, :, p * SH:p * SH + KH, q * SW:q * SW + KW] += x[n, c, p, q] * w[c]
    OH, OW = full.shape[2] - 2 * PH, full.shape[3] - 2 * PW
    return full[:, :, PH:PH + OH, PW:PW + OW]


def conv2d_grad_weight_naive(x, gy, kernel_size, stride=(1, 1), padding=(0, 0)):
    """gw[o, c, j, i] = sum_{n, p, q} gy[n, o, p, q] * xpad[n, c, p*SH + j, q*SW + i]."""
    (KH, KW), (SH, SW), xpad = kernel_size, stride, zero_pad(x, padding)
    N, OC, OH, OW = gy.shape
    gw = np.zeros((OC, x.shape[1], KH, KW))
    for n in range(N):
        for o in range(OC):
            for p in range(OH):
                for q in range(OW):
                    gw[o] += gy[n, o, p, q] * xpad[n, :, p * SH:p * SH + KH, q * SW:q * SW + KW]
    return gw


def pool2d_naive(x, kernel_size, stride, padding, reduce):
    """y[n, c, p, q] = reduce(window at (p*SH, q*SW) of x padded with zeros (avg) or -inf (max))."""
    (KH, KW), (SH, SW), (PH, PW) = kernel_size, stride, padding
    N, C, H, W = x.shape
    fill = -np.inf if reduce == "max" else 0.0
    xpad = np.full((N, C, H + 2 * PH, W + 2 * PW), fill)
    xpad[:, :, PH:PH + H, PW:PW + W] = x
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    y = np.zeros((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for p in range(OH):
                for q in range(OW):
                    window = xpad[n, c, p * SH:p * SH + KH, q * SW:q * SW + KW]
                    y[n, c, p, q] = window.max() if reduce == "max" else window.sum() / (KH * KW)
    return y


def upsample_nearest_naive(x, out_size):
    """y[n, c, h, w] = x[n, c, floor(h * H / OH), floor(w * W / OW)]."""
    N, C, H, W = x.shape
    OH, OW = out_size
    y = np.zeros((N, C, OH, OW))
    for h in range(OH):
        for w in range(OW):
            y[:, :, h, w] = x[:, :, (h * H) // OH, (w * W) // OW]
    return y


def softplus(a):
    """log(1 + e^a), computed without overflow: the NumPy oracle of the GAN losses' softplus."""
    return np.logaddexp(0.0, a)
