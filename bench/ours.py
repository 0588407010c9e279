"""The tinygan side of every workload: `make(spec, device) -> (fn, sync)`.

Kernels are called raw, through `tinygan.kernels.get` (so `set_mode` picks fast or reference);
layers go through `tinygan.functional` with autograd (the gradients through `tinygan.grad`,
which leaves `.grad` alone, so repeated calls do not accumulate); steps are the real variants'
`train_step` on a fixed random batch in [-1, 1].

Run as `python -m bench.ours --memory VARIANT --batch N` it measures the peak memory of one
step in this fresh process and prints it as JSON (see `shapes.rss_step_peak`).  This module
never imports torch.
"""
from __future__ import annotations

import argparse
import json
import sys

import tinygan  # noqa: F401  (before numpy: its OpenBLAS thread setting must come first)
import numpy as np  # noqa: E402

from . import shapes


def _xp(device: str):
    if device == "cuda":
        import cupy
        return cupy
    return np


def _sync_for(device: str):
    if device == "cuda":
        import cupy

        def sync():
            cupy.cuda.get_current_stream().synchronize()
        return sync
    return lambda: None


def _rand(xp, *shape, scale=1.0, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * np.float32(scale)
    return xp.asarray(a)


def _kernel_fn(w, xp):
    from tinygan import kernels
    k, N = w["kernel"], w["batch"]
    get = lambda: kernels.get(k, xp)      # looked up per call: honours set_mode at run time
    if k in ("conv2d", "conv_transpose2d", "conv2d_grad_weight", "im2col", "col2im"):
        cin, cout, K, s, p, h, oh = (w[a] for a in ("cin", "cout", "k", "s", "p", "h", "oh"))
        st, pd = (s, s), (p, p)
        if w["kind"] == "convT":           # as a conv2d seen from the other side: y -> x
            x_in, g_out, W = _rand(xp, N, cout, oh, oh), _rand(xp, N, cin, h, h), _rand(xp, cin, cout, K, K)
        else:
            x_in, g_out, W = _rand(xp, N, cin, h, h), _rand(xp, N, cout, oh, oh), _rand(xp, cout, cin, K, K)
        if k == "conv2d":
            return lambda: get()(x_in, W, st, pd)
        if k == "conv_transpose2d":
            return lambda: get()(g_out, W, st, pd, (0, 0))
        if k == "conv2d_grad_weight":
            return lambda: get()(x_in, g_out, (K, K), st, pd)
        if k == "im2col":
            return lambda: get()(x_in, K, K, st, pd)
        col = kernels.reference.im2col(x_in, K, K, st, pd)
        return lambda: get()(col, x_in.shape, st, pd)
    if k.startswith("batch_norm") or k.startswith("leaky_relu"):
        C, H = w["c"], w["h"]
        x, gy = _rand(xp, N, C, H, H), _rand(xp, N, C, H, H, seed=1)
        mean, var = kernels.reference.batch_norm_stats(x)
        inv_std = 1.0 / xp.sqrt(var + 1e-5)
        weight, bias = xp.ones(C, np.float32), xp.zeros(C, np.float32)
        slope = w.get("slope", 0.2)
        y = kernels.reference.batch_norm_act_apply(x, mean, inv_std, weight, bias, slope)
        calls = {"batch_norm_stats": lambda: get()(x),
                 "batch_norm_apply": lambda: get()(x, mean, inv_std, weight, bias),
                 "batch_norm_backward": lambda: get()(x, gy, mean, inv_std, weight),
                 "batch_norm_act_apply": lambda: get()(x, mean, inv_std, weight, bias, slope),
                 "batch_norm_act_backward": lambda: get()(x, y, gy, mean, inv_std, weight, slope),
                 "leaky_relu": lambda: get()(x, 0.2),
                 "leaky_relu_grad": lambda: get()(x, gy, 0.2)}
        return calls[k]
    if k == "matmul":                      # x @ Wᵀ with W stored (n, k), as linear calls it
        m, kk, n = w["mkn"]
        x, W = _rand(xp, m, kk), _rand(xp, n, kk, seed=1)
        return lambda: get()(x, W.T)
    if k.startswith("pairwise_l1"):
        B, C = w["mbd"]
        M, g, u = _rand(xp, N, B, C), _rand(xp, N, N, B, seed=1), _rand(xp, N, B, C, seed=2)
        return {"pairwise_l1": lambda: get()(M), "pairwise_l1_grad": lambda: get()(M, g),
                "pairwise_l1_grad_adjoint": lambda: get()(M, u)}[k]
    # optimizer updates over every DCGAN parameter, one kernel call per parameter (as optim does)
    ps = [_rand(xp, *s, scale=0.02, seed=i) for i, s in enumerate(w["params"])]
    gs = [_rand(xp, *s, scale=0.01, seed=100 + i) for i, s in enumerate(w["params"])]
    st1 = [xp.zeros_like(p) for p in ps]
    st2 = [xp.abs(g) for g in gs]
    step = [0]
    if k == "adam_update":
        def fn():
            step[0] += 1
            f = get()
            for p, g, m, v in zip(ps, gs, st1, st2):
                f(p, g, m, v, step[0], 2e-4, 0.5, 0.999, 1e-8)
    elif k == "sgd_update":
        def fn():
            f = get()
            for p, g, b in zip(ps, gs, st1):
                f(p, g, b, 1e-3, momentum=0.9)
    elif k == "rmsprop_update":
        def fn():
            f = get()
            for p, g, s in zip(ps, gs, st2):
                f(p, g, s, None, None, 5e-5, 0.99, 1e-8)
    else:
        raise KeyError(f"no tinygan workload for kernel {k!r}")
    return fn


def _layer_fn(w, xp):
    import tinygan
    import tinygan.functional as F
    from tinygan import Tensor
    N = w["batch"]
    if w["kind"] == "act":
        C, H = w["c"], w["h"]
        x = Tensor(_rand(xp, N, C, H, H), requires_grad=True)
        gy = Tensor(_rand(xp, N, C, H, H, seed=1))
        wt = Tensor(xp.ones(C, np.float32), requires_grad=True)
        b = Tensor(xp.zeros(C, np.float32), requires_grad=True)
        rm, rv = xp.zeros(C, np.float32), xp.ones(C, np.float32)
        act = {"relu": F.relu, "tanh": F.tanh, "leaky_relu": lambda t: F.leaky_relu(t, 0.2)}[w["act"]]
        inputs = [x, wt, b] if w["bn"] else [x]

        def forward():
            if w["bn"] and w["act"] != "tanh":     # as nn.Sequential runs the pair: one op
                slope = 0.2 if w["act"] == "leaky_relu" else 0.0
                return F.batch_norm_act(x, rm, rv, wt, b, training=True, negative_slope=slope)
            h = F.batch_norm(x, rm, rv, wt, b, training=True) if w["bn"] else x
            return act(h)
    elif w["kind"] in ("inorm", "rpad"):
        C, H = w["c"], w["h"]
        x = Tensor(_rand(xp, N, C, H, H), requires_grad=True)
        OH = H + 2 if w["kind"] == "rpad" else H
        gy = Tensor(_rand(xp, N, C, OH, OH, seed=1))
        wt = Tensor(xp.ones(C, np.float32), requires_grad=True)
        b = Tensor(xp.zeros(C, np.float32), requires_grad=True)
        inputs = [x, wt, b] if w["kind"] == "inorm" else [x]

        def forward():
            if w["kind"] == "inorm":
                return F.instance_norm(x, weight=wt, bias=b)
            return F.pad(x, (1, 1, 1, 1), mode="reflect")
    else:
        cin, cout, K, s, p, h, oh = (w[a] for a in ("cin", "cout", "k", "s", "p", "h", "oh"))
        x = Tensor(_rand(xp, N, cin, h, h), requires_grad=True)
        gy = Tensor(_rand(xp, N, cout, oh, oh, seed=1))
        shape = (cin, cout, K, K) if w["kind"] == "convT" else (cout, cin, K, K)
        W = Tensor(_rand(xp, *shape, scale=0.02, seed=2), requires_grad=True)
        inputs = [x, W]
        conv = F.conv_transpose2d if w["kind"] == "convT" else F.conv2d

        def forward():
            return conv(x, W, stride=s, padding=p)
    if w["pass_"] == "fwd":
        return forward
    return lambda: tinygan.grad(forward(), inputs, grad_outputs=gy)


def make_step(variant: str, N: int, device: str = "cpu"):
    """The variant's own nets, losses and optimizers; a call = one step (dcgan, gan) or one
    wgan_gp iteration (n_critic critic updates, the last one followed by the G update).
    Each `train_step` is followed by what the training loop does with it: one fetch of its
    losses to the host, and the step count."""
    import tinygan
    from tinygan import Tensor, backend, gans
    tinygan.manual_seed(0)
    model = gans.create(variant, shapes.IMAGE, device=device)
    xp = _xp(device)
    batch = np.random.default_rng(0).uniform(-1, 1, (N,) + shapes.IMAGE).astype(np.float32)
    x = Tensor(xp.asarray(batch))
    n_calls = shapes.N_CRITIC if variant == "wgan_gp" else 1

    def step():
        for _ in range(n_calls):
            model.train_step(x)               # its losses fetched once, as in training
            model.steps_done += 1         # wgan_gp's G waits on it
    return step


def record_gemms(step) -> list:
    """The matrix products one call of `step` computes, as (a_shape, a_transposed, b_shape,
    b_transposed, with_out): every `blas.matmul` call (the conv kernels' products and the
    `matmul` kernel of `linear` and the MatMul op).  `step` must have run once already
    (nothing left to compile)."""
    from tinygan.kernels import blas
    calls = []

    def layout(a):
        if a.flags.c_contiguous:
            return a.shape, False
        if a.ndim == 2 and a.flags.f_contiguous:
            return a.shape, True
        return a.shape, None                      # anything else: replayed as a C-order copy

    plain = blas.matmul

    def recording(a, b, out=None):
        calls.append((*layout(a), *layout(b), out is not None))
        return plain(a, b, out=out)

    blas.matmul = recording
    try:
        step()
    finally:
        blas.matmul = plain
    return calls


def make_gemm_replay(w: dict):
    """Only the GEMMs of workload `w` (a step of w["variant"], or a layer's fwd+bwd), same
    shapes and memory layouts, back to back: the time no implementation built on this BLAS
    can go below (its compute floor)."""
    from tinygan import kernels
    old = kernels.get_mode()
    kernels.set_mode("fast")
    try:
        if w["group"] == "steps":
            step = make_step(w["variant"], w["batch"])
        else:
            step = _layer_fn(dict(w, kind=w["layer_kind"]), np)
        step()
        calls = record_gemms(step)
    finally:
        kernels.set_mode(old)
    r = np.random.default_rng(0)

    def operand(shape, transposed):
        a = r.standard_normal(shape[::-1] if transposed else shape).astype(np.float32)
        return a.T if transposed else a

    ops = [(operand(sa, ta), operand(sb, tb), wo) for sa, ta, sb, tb, wo in calls]
    outs = [np.empty(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1]),
                     np.float32) if wo else None for a, b, wo in ops]

    from tinygan.kernels import blas

    def replay():
        for (a, b, _), out in zip(ops, outs):
            blas.matmul(a, b, out=out)
    replay.n_gemms = len(ops)
    replay.gflop = sum(2 * a.size * b.shape[-1] for a, b, _ in ops) / 1e9
    return replay


def make(w: dict, device: str = "cpu"):
    """(fn, sync) for workload spec `w`."""
    xp = _xp(device)
    if w["kind"] == "gemms":
        fn = make_gemm_replay(w)
    elif w["group"] == "kernels":
        fn = _kernel_fn(w, xp)
    elif w["group"] == "layers":
        fn = _layer_fn(w, xp)
    else:
        fn = make_step(w["variant"], w["batch"], device)
    return fn, _sync_for(device)


def fast_kernels(device: str = "cpu") -> list:
    """The kernel names that have a fast version registered for this backend."""
    from tinygan import kernels
    xp = _xp(device)
    old = kernels.get_mode()
    kernels.set_mode("fast")
    try:
        return sorted(n for n in reference_kernel_names()
                      if kernels.get(n, xp) is not getattr(kernels.reference, n))
    finally:
        kernels.set_mode(old)


def reference_kernel_names() -> list:
    """Public functions of kernels/reference.py that are kernels (not size helpers)."""
    import inspect
    from tinygan.kernels import reference
    return sorted(n for n, f in vars(reference).items()
                  if inspect.isfunction(f) and f.__module__ == reference.__name__
                  and not n.startswith("_") and not n.endswith("_size"))


def load_kernel_code(device: str = "cpu") -> None:
    """Call every fast CPU kernel (parallel loops and serial twins) once on tiny float32
    arrays, so that Numba's runtime and the compiled code are in memory before the RSS
    baseline is read — as torch's libraries are once `import torch` returns.  The memory
    figures then count data (nets, optimizer state, activations, pools), not code."""
    if device != "cpu":
        return
    from tinygan.kernels import cpu
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    p, g = r.standard_normal(8).astype(np.float32), r.standard_normal(8).astype(np.float32)
    saved = cpu.PARALLEL_MIN, cpu.SHORT_ROW, cpu.TABLE_ROW
    try:
        for cpu.PARALLEL_MIN in (0, 1 << 62):
            for cpu.TABLE_ROW in (0, 1 << 62):        # im2col's two gathers
                y = cpu.conv2d(x, w, (1, 1), (1, 1))
                cpu.conv_transpose2d(y, w, (1, 1), (1, 1), (0, 0))
                cpu.conv2d_grad_weight(x, y, (3, 3), (1, 1), (1, 1))
                cpu.col2im(cpu.im2col(x, 3, 3, (1, 1), (1, 1)), x.shape, (1, 1), (1, 1))
            for cpu.SHORT_ROW in (0, 1 << 62):        # batch norm's two loop shapes
                mean, var = cpu.batch_norm_stats(x)
                cpu.batch_norm_apply(x, mean, var, mean, var)
                cpu.batch_norm_backward(x, x, mean, var, mean)
            cpu.leaky_relu_grad(cpu.leaky_relu(x, 0.2), x, 0.2)
            cpu.adam_update(p, g, p.copy(), p * p, 1, 1e-3, 0.5, 0.999, 1e-8)
            cpu.sgd_update(p, g, p.copy(), 1e-3, 0.9)
            cpu.rmsprop_update(p, g, p * p, None, None, 1e-3, 0.99, 1e-8)
    finally:
        cpu.PARALLEL_MIN, cpu.SHORT_ROW, cpu.TABLE_ROW = saved
    from tinygan.kernels import blas
    for n in (8, 512):       # the BLAS's code and threads (MKL loads its kernels at first use)
        a = r.standard_normal((n, n)).astype(np.float32)
        blas.matmul(a, a)
        blas.matmul(a, a.T)
    cpu.clear_pool()


def memory_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ours")
    ap.add_argument("--memory", required=True, choices=shapes.STEPS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", default="fast", choices=["fast", "reference"])
    a = ap.parse_args(argv)
    from tinygan import kernels
    kernels.set_mode(a.mode)
    load_kernel_code(a.device)
    start = shapes.rss_now_kib()
    step = make_step(a.memory, a.batch, a.device)
    sync = _sync_for(a.device)
    step()                                   # warm-up: kernels compiled / loaded, Adam state made
    sync()
    out = shapes.rss_step_peak(step, sync, start)
    # Informational second number: NumPy's own allocations as tracemalloc sees them (Numba's
    # internal allocations are not traced, so this can only under-count a fast kernel).
    import tracemalloc
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    step()
    sync()
    out["tracemalloc_step_mib"] = (tracemalloc.get_traced_memory()[1] - base) / 2 ** 20
    tracemalloc.stop()
    out["torch_imported"] = "torch" in sys.modules
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(memory_main())
