"""`tinygan gradcheck`: every differentiable op checked by finite differences, 1st and 2nd order.

The test suite does this in depth (hypothesis-drawn shapes, every option); this is the quick
version a user can run on their own machine — after changing a kernel, say — and read:

    op                          1st order   2nd order
    conv2d s2 p1                ok          ok
    ...

Inputs are tiny float64 tensors; kinked functions (relu, leaky_relu, abs, max, clamp) get
inputs kept more than 1e-2 away from the kink, where a central difference with eps = 1e-6
is exact to rounding.
"""
from __future__ import annotations

import time

import numpy as np

from . import functional as F
from .autograd import Tensor
from .backend import manual_seed
from .gradcheck import GradcheckError, gradcheck, gradgradcheck


def _t(rng, *shape, low=None, away_from_zero=False):
    x = rng.standard_normal(shape)
    if away_from_zero:                      # keep clear of the kink at 0
        x = np.sign(x) * (np.abs(x) + 0.1)
    if low is not None:
        x = low + np.abs(x)
    return Tensor(x, requires_grad=True)


def _bn_act_inputs(rng):
    """(x, w, b) whose batch-normalised values stay > 0.05 from the activation's kink."""
    while True:
        x, w, b = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3)
        z = (x - x.mean((0, 2, 3), keepdims=True)) / np.sqrt(x.var((0, 2, 3), keepdims=True) + 1e-5)
        if np.abs(z * w.reshape(1, 3, 1, 1) + b.reshape(1, 3, 1, 1)).min() > 0.05:
            return [Tensor(a, requires_grad=True) for a in (x, w, b)]


def _seeded_dropout2d(a):
    """dropout2d with the same mask at every evaluation (finite differences re-run the op)."""
    manual_seed(0)
    return F.dropout2d(a, 0.5) ** 2


def _cases(rng):
    """(name, fn, inputs) for every differentiable op the library exposes."""
    t = lambda *s, **k: _t(rng, *s, **k)   # noqa: E731
    x4 = t(2, 3, 5, 5)
    labels = Tensor(np.array([0, 2, 1]))
    probs = Tensor(rng.uniform(0.1, 0.9, (3, 4)))
    running = (np.zeros(3), np.ones(3))
    return [
        ("add / mul / div (broadcast)", lambda a, b: (a + b) * a / (b * b + 1.0), [t(3, 4), t(4)]),
        ("matmul", lambda a, b: a @ b, [t(3, 4), t(4, 2)]),
        ("pow / sqrt / exp / log", lambda a: (a ** 3).sqrt() + a.exp() + a.log(), [t(3, 4, low=0.5)]),
        ("sum / mean / var", lambda a: a.sum(0) + a.mean(1, keepdim=True) + a.var(0), [t(3, 4)]),
        ("max (amax)", lambda a: a.max(1), [Tensor(np.arange(12.0).reshape(3, 4) * 0.37 % 1.3, requires_grad=True)]),
        ("reshape / permute / transpose", lambda a: a.reshape(4, 3).transpose(0, 1).permute(1, 0) * 2, [t(3, 4)]),
        ("indexing", lambda a: a[1:, ::2] * 3, [t(3, 4)]),
        ("cat / stack", lambda a, b: F.cat([a, F.stack([b, b])[0]], 0) ** 2, [t(2, 3), t(2, 3)]),
        ("linear", lambda x, w, b: F.linear(x, w, b), [t(3, 4), t(2, 4), t(2)]),
        ("relu", F.relu, [t(3, 4, away_from_zero=True)]),
        ("leaky_relu 0.2", lambda a: F.leaky_relu(a, 0.2), [t(3, 4, away_from_zero=True)]),
        ("tanh", F.tanh, [t(3, 4)]),
        ("sigmoid", F.sigmoid, [t(3, 4)]),
        ("softplus", F.softplus, [t(3, 4)]),
        ("softmax", lambda a: F.softmax(a, dim=1), [t(3, 4)]),
        ("log_softmax", lambda a: F.log_softmax(a, dim=1), [t(3, 4)]),
        ("conv2d s1 p0", lambda x, w, b: F.conv2d(x, w, b), [x4, t(4, 3, 3, 3), t(4)]),
        ("conv2d s2 p1", lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x4, t(2, 3, 3, 3)]),
        ("conv_transpose2d s2 p1 op1", lambda x, w, b: F.conv_transpose2d(
            x, w, b, stride=2, padding=1, output_padding=1), [t(2, 3, 3, 3), t(3, 2, 3, 3), t(2)]),
        ("batch_norm (train)", lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
         [t(4, 3, 2, 2), t(3), t(3)]),
        ("batch_norm (eval)", lambda x, w, b: F.batch_norm(x, Tensor(running[0]), Tensor(running[1]), w, b,
                                                           training=False), [t(4, 3, 2, 2), t(3), t(3)]),
        ("batch_norm_act 0.2 (train)", lambda x, w, b: F.batch_norm_act(
            x, None, None, w, b, training=True, negative_slope=0.2), _bn_act_inputs(rng)),
        ("max_pool2d", lambda a: F.max_pool2d(a, 2), [Tensor(rng.permutation(2 * 3 * 4 * 4).reshape(2, 3, 4, 4) * 0.1,
                                                             requires_grad=True)]),
        ("avg_pool2d", lambda a: F.avg_pool2d(a, 2), [t(2, 3, 4, 4)]),
        ("interpolate nearest ×2", lambda a: F.interpolate(a, scale_factor=2) ** 2, [t(1, 2, 3, 3)]),
        ("pad", lambda a: F.pad(a, (1, 2, 0, 1)) ** 2, [t(1, 2, 3, 3)]),
        ("pad reflect", lambda a: F.pad(a, (2, 1, 2, 0), mode="reflect") ** 2, [t(1, 2, 3, 3)]),
        ("instance_norm (affine)", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
         [t(2, 3, 2, 3), t(3), t(3)]),
        ("interpolate bilinear ×2", lambda a: F.interpolate(a, scale_factor=2, mode="bilinear") ** 2,
         [t(1, 2, 3, 3)]),
        ("pixel_shuffle ×2", lambda a: F.pixel_shuffle(a, 2) ** 2, [t(1, 4, 2, 3)]),
        ("prelu", lambda x, w: F.prelu(x, w), [t(2, 3, 2, away_from_zero=True), t(3)]),
        ("dropout2d (seeded mask)", _seeded_dropout2d, [t(2, 4, 2, 2)]),
        ("mse_loss", F.mse_loss, [t(3, 4), t(3, 4)]),
        ("l1_loss", F.l1_loss, [t(3, 4, away_from_zero=True), Tensor(np.zeros((3, 4)))]),
        ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, [t(3, 4), probs]),
        ("binary_cross_entropy", lambda p, y: F.binary_cross_entropy(p, y),
         [Tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True), probs]),
        ("cross_entropy", lambda a: F.cross_entropy(a, labels), [t(3, 4)]),
        ("nll_loss", lambda a: F.nll_loss(F.log_softmax(a, dim=1), labels), [t(3, 4)]),
    ]


def run_gradchecks(verbose: bool = True, seed: int = 0) -> bool:
    """Check every op; print a table when `verbose`; True when all pass."""
    rng = np.random.default_rng(seed)
    all_ok, t0 = True, time.time()
    if verbose:
        print(f"{'op':<36}{'1st order':<12}{'2nd order':<12}")
    for name, fn, inputs in _cases(rng):
        results = []
        for check in (gradcheck, gradgradcheck):
            try:
                check(fn, inputs)
                results.append("ok")
            except GradcheckError as e:
                all_ok = False
                results.append("FAIL: " + str(e).splitlines()[0])
        if verbose:
            print(f"{name:<36}{results[0]:<12}{results[1]}")
    if verbose:
        print(f"{'all passed' if all_ok else 'FAILURES above'} in {time.time() - t0:.1f} s")
    return all_ok
