"""What is measured: the workload list, their shapes and FLOP counts (standard library only).

This module is imported by both sides — the tinygan side (`ours.py`) and the PyTorch worker
(`torch_worker.py`) — so it must import neither NumPy-based tinygan nor torch.  A workload is a
dict `{"name", "group", "kind", "flops", ...shape fields}`; each side turns it into a
zero-argument callable.

The benchmark DCGAN (docs/performance.md): MNIST padded to 32×32, float32, bias-free convs,
    G: z(100,1,1) -ConvT k4s1p0-> 256×4×4 -BN,ReLU-> ConvT k4s2p1 128×8×8 -BN,ReLU-> 64×16×16
       -BN,ReLU-> 1×32×32 -tanh
    D: 1×32×32 -Conv k4s2p1-> 64×16×16 -LReLU-> 128×8×8 -BN,LReLU-> 256×4×4 -BN,LReLU->
       -Conv k4s1p0-> 1×1×1 (logits)

FLOPs (multiply and add counted as 2): a conv2d forward is 2·N·OC·OH·OW·C·KH·KW; a transposed
conv moves the same products the other way, 2·N·C_in·H·W·C_out·KH·KW (H, W its *input*); each of
the two backward products (input gradient, weight gradient) costs one forward, so fwd+bwd = 3×.
Batch norm, activations and optimizer updates are memory-bound: no FLOP count (GFLOP/s is left
blank for them).
"""
from __future__ import annotations

import math
import os
import re
import statistics
import time

STEPS = ("gan", "dcgan", "wgan_gp")
N_CRITIC = 5                 # wgan_gp: one "iteration" = 5 critic updates, the 5th with a G step
Z_DIM = 100
IMAGE = (1, 28, 28)          # the MNIST shape the variants are created with (padded to 32 inside)

# name, kind, C_in, C_out, K, stride, padding, input size (square)
CONV_LAYERS = [
    ("G1", "convT", 100, 256, 4, 1, 0, 1),
    ("G2", "convT", 256, 128, 4, 2, 1, 4),
    ("G3", "convT", 128, 64, 4, 2, 1, 8),
    ("G4", "convT", 64, 1, 4, 2, 1, 16),
    ("D1", "conv", 1, 64, 4, 2, 1, 32),
    ("D2", "conv", 64, 128, 4, 2, 1, 16),
    ("D3", "conv", 128, 256, 4, 2, 1, 8),
    ("D4", "conv", 256, 1, 4, 1, 0, 4),
]

# name, channels, size, with batch norm?, activation — the non-conv layers of the DCGAN
ACT_LAYERS = [
    ("G1", 256, 4, True, "relu"),
    ("G2", 128, 8, True, "relu"),
    ("G3", 64, 16, True, "relu"),
    ("G4", 1, 32, False, "tanh"),
    ("D1", 64, 16, False, "leaky_relu"),
    ("D2", 128, 8, True, "leaky_relu"),
    ("D3", 256, 4, True, "leaky_relu"),
]
ACT_TITLE = {"relu": "ReLU", "tanh": "tanh", "leaky_relu": "LReLU"}

# name, channels, size — the image-to-image layers of a CycleGAN-style ResNet generator on
# 32×32 images (ngf = 32, two stride-2 downsamplings): instance norm (affine, as batch norm of
# the (1, N·C, H, W) view) and the reflection pad of 1 before each 3×3 conv
I2I_LAYERS = [
    ("R1", 32, 32),
    ("R3", 128, 8),
]
I2I_OPS = {"inorm": "InstanceNorm", "rpad": "ReflectionPad 1"}

MLP_G = [(Z_DIM, 256), (256, 512), (512, 1024), (1024, 784)]
MLP_D = [(784, 512), (512, 256), (256, 1)]


def conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def convT_out(size: int, k: int, s: int, p: int) -> int:
    return (size - 1) * s - 2 * p + k


def conv_layer(name: str) -> dict:
    """Shapes of one DCGAN conv layer, at batch N filled in later: x (C_in, H, H) -> y (C_out, OH, OH)."""
    for L, kind, cin, cout, k, s, p, h in CONV_LAYERS:
        if L == name:
            oh = convT_out(h, k, s, p) if kind == "convT" else conv_out(h, k, s, p)
            return dict(layer=L, kind=kind, cin=cin, cout=cout, k=k, s=s, p=p, h=h, oh=oh)
    raise KeyError(name)


def conv_flops(c: dict, N: int) -> int:
    """One forward of the layer (see the module docstring)."""
    spatial = c["h"] ** 2 if c["kind"] == "convT" else c["oh"] ** 2
    return 2 * N * c["cin"] * c["cout"] * c["k"] ** 2 * spatial


def _linear_flops(layers, N):
    return [2 * N * i * o for i, o in layers]


def step_flops(variant: str, N: int) -> int | None:
    """Matmul FLOPs of one training step, counting what the engine computes: every layer's
    forward, its weight gradient, and its input gradient except for the first layer of a net
    whose input needs none (data, detached fakes, z).

      D step: G forward; D forward + backward on real and on detached fake.
      G step: G forward + backward (no gx at G's first layer); D forward + backward to its
              input (gx only: the G update back-propagates into G's parameters alone).
    wgan_gp's double backward has no simple closed count: None (GFLOP/s left blank).
    """
    if variant == "dcgan":
        G = [conv_flops(conv_layer(L), N) for L in ("G1", "G2", "G3", "G4")]
        D = [conv_flops(conv_layer(L), N) for L in ("D1", "D2", "D3", "D4")]
    elif variant == "gan":
        G, D = _linear_flops(MLP_G, N), _linear_flops(MLP_D, N)
    else:
        return None
    fG, fD = sum(G), sum(D)
    d_step = fG + 2 * (3 * fD - D[0])
    g_step = (3 * fG - G[0]) + 2 * fD
    return d_step + g_step


# ---------------------------------------------------------------------------------------
# The workload list

def _conv_specs(N):
    out = []
    for L, kind, *_ in CONV_LAYERS:
        c = conv_layer(L)
        title = "ConvT" if kind == "convT" else "Conv"
        shape = f"{c['cin']}x{c['h']}² → {c['cout']}x{c['oh']}²"
        f = conv_flops(c, N)
        out.append(dict(c, group="layers", name=f"{L} {title} fwd", pass_="fwd", flops=f, shape=shape))
        out.append(dict(c, group="layers", name=f"{L} {title} fwd+bwd", pass_="fwd+bwd", flops=3 * f,
                        shape=shape))
        # The layer's floor on this BLAS: only its GEMMs, same shapes and layouts, back to
        # back (ratio: to PyTorch's whole fwd+bwd of the layer).
        out.append(dict(c, group="layers", kind="gemms", layer_kind=kind, pass_="fwd+bwd",
                        name=f"{L} {title} fwd+bwd: its GEMMs alone", flops=3 * f, shape=shape))
    return out


def _act_specs(N):
    out = []
    for L, C, H, bn, act in ACT_LAYERS:
        title = ("BN+" if bn else "") + ACT_TITLE[act]
        d = dict(layer=L, c=C, h=H, bn=bn, act=act, flops=None, shape=f"{C}x{H}²", kind="act")
        out.append(dict(d, group="layers", name=f"{L} {title} fwd", pass_="fwd"))
        out.append(dict(d, group="layers", name=f"{L} {title} fwd+bwd", pass_="fwd+bwd"))
    return out


def _i2i_specs(N):
    out = []
    for L, C, H in I2I_LAYERS:
        for kind, title in I2I_OPS.items():
            d = dict(layer=L, c=C, h=H, flops=None, shape=f"{C}x{H}²", kind=kind)
            out.append(dict(d, group="layers", name=f"{L} {title} fwd+bwd", pass_="fwd+bwd"))
    return out


def dcgan_param_shapes() -> list:
    """Parameter shapes of the DCGAN G and D (what the optimizer kernels update each step)."""
    shapes = []
    for L, kind, cin, cout, k, *_ in CONV_LAYERS:
        shapes.append((cin, cout, k, k) if kind == "convT" else (cout, cin, k, k))
    for L, C, H, bn, act in ACT_LAYERS:
        if bn:
            shapes += [(C,), (C,)]
    return shapes


def _kernel_specs(N):
    out = []

    def add(kernel, label, flops=None, **kw):
        d = dict(group="kernels", kind="kernel", kernel=kernel, name=f"{kernel} {label}", flops=flops)
        d.update(kw)                 # a conv kernel keeps its layer's kind ("conv" / "convT")
        out.append(d)

    for L, kind, *_ in CONV_LAYERS:
        c = conv_layer(L)
        f = conv_flops(c, N)
        add("conv2d" if kind == "conv" else "conv_transpose2d", L, f, **c)
        add("conv2d_grad_weight", L, f, **c)
    for L, kind, *_ in CONV_LAYERS:
        if kind == "conv" and L != "D4":
            c = conv_layer(L)
            add("im2col", L, **c)
            add("col2im", L, **c)
    for L, C, H, bn, act in ACT_LAYERS:
        if bn:
            for k in ("batch_norm_stats", "batch_norm_apply", "batch_norm_backward"):
                add(k, L, c=C, h=H)
            for k in ("batch_norm_act_apply", "batch_norm_act_backward"):
                add(k, L, c=C, h=H, slope=0.2 if act == "leaky_relu" else 0.0)
        if act == "leaky_relu":
            add("leaky_relu", L, c=C, h=H)
            add("leaky_relu_grad", L, c=C, h=H)
    # the matrix product alone, as `linear` calls it (x @ Wᵀ, W stored (out, in)): the MLP
    # G's widest layer, and a product of D2's forward's size (W (128, 1024) @ columns (1024, 4096))
    for label, (m, k, n) in (("MLP 1024→784", (N, 1024, 784)), ("D2-sized", (128, 1024, 16 * N))):
        add("matmul", f"{label} ({m}x{k} @ {k}x{n})", 2 * m * k * n, mkn=[m, k, n])
    for k in ("adam_update", "sgd_update", "rmsprop_update"):
        add(k, "DCGAN G+D params", params=dcgan_param_shapes())
    # minibatch discrimination (the `minibatch_disc` trick) at the authors' B = 100 kernels of C = 5
    for k in ("pairwise_l1", "pairwise_l1_grad", "pairwise_l1_grad_adjoint"):
        add(k, "B=100 C=5", mbd=[100, 5])
    return out


def _step_specs(N):
    titles = {"gan": "gan step (MLP)", "dcgan": "dcgan step (D then G)",
              "wgan_gp": f"wgan_gp iteration ({N_CRITIC} critic + 1 G)"}
    out = [dict(group="steps", kind="step", variant=v, name=titles[v], flops=step_flops(v, N))
           for v in STEPS]
    # PyTorch's canonical G step also computes D's weight gradients; the same step with
    # backward(inputs=G's parameters), as tinygan does it, is the like-for-like baseline.
    out.insert(2, dict(out[1], name="dcgan step; torch with backward(inputs=G params)",
                       torch_g_inputs=True))
    # The floor: only the GEMMs of our dcgan step, back to back (ratio: to torch's whole step).
    out.insert(3, dict(group="steps", kind="gemms", variant="dcgan",
                       name="dcgan step: its GEMMs alone", flops=step_flops("dcgan", N)))
    return out


def workloads(N: int, only: str | None = None) -> list:
    """Every workload at batch N, in run order; `only` = "kernels" | "layers" | "steps"."""
    groups = {"kernels": _kernel_specs, "layers": lambda n: _conv_specs(n) + _act_specs(n) + _i2i_specs(n),
              "steps": _step_specs}
    out = []
    for g, make in groups.items():
        if only in (None, g):
            out += make(N)
    for w in out:
        w["batch"] = N
    return out


def kernel_names_covered() -> set:
    return {w["kernel"] for w in _kernel_specs(1)}


# ---------------------------------------------------------------------------------------
# Timing and memory helpers shared by both processes

def calibrate(fn, sync, min_sample_s: float) -> tuple:
    """Warm up `fn` (first call: compilation, page faults — never timed into a result) and
    return (inner, seconds per call): `inner` calls make one sample of at least min_sample_s."""
    t0 = time.perf_counter()
    fn()
    sync()
    t = time.perf_counter() - t0
    if t < 0.25:                   # the warm-up included compilation: time a clean call
        t0 = time.perf_counter()
        fn()
        sync()
        t = time.perf_counter() - t0
    t = max(t, 1e-7)
    return max(1, min(10_000, math.ceil(min_sample_s / t))), t


def sample(fn, sync, n: int, inner: int) -> list:
    """n samples, each the mean seconds per call over `inner` back-to-back calls."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        out.append((time.perf_counter() - t0) / inner)
    return out


def median(xs):
    return statistics.median(xs) if xs else None


# Peak memory of one step, measured the same way in a fresh process on each side: RSS, which is
# what the OS has to provide and the only number both NumPy and PyTorch allocations show up in.
# glibc is told to hand large blocks straight back to the OS (fixed mmap/trim thresholds, set
# in the environment of both processes), so RSS follows live memory instead of keeping freed
# arenas; the kernel's RSS high-water mark is reset after set-up and a warm-up step.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072",
              "MALLOC_TOP_PAD_": "0"}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


def rss_now_kib() -> int:
    return _status_kib("VmRSS")


def rss_step_peak(step, sync, start_kib: int | None = None) -> dict:
    """Run `step` once more after the caller's warm-up: {"base_mib": RSS before it,
    "peak_mib": high-water RSS during it, "step_mib": the difference, and with `start_kib`
    (RSS after the imports, before the nets were built) "total_mib": peak - start, which
    counts what the step needs that outlives it too — parameters, optimizer state, buffer
    pools, memory an allocator keeps}."""
    base = _status_kib("VmRSS")
    reset = True
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")           # Linux >= 4.0: VmHWM <- current RSS
    except OSError:
        reset = False
    step()
    sync()
    peak = _status_kib("VmHWM")
    out = {"base_mib": base / 1024, "peak_mib": peak / 1024, "step_mib": (peak - base) / 1024,
           "hwm_reset": reset}
    if start_kib is not None:
        out["total_mib"] = (peak - start_kib) / 1024
    return out


def machine_info() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = m.group(1).strip() if m else model
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu_model": model, "cpu_count": os.cpu_count(), "usable_cores": usable}
