"""The PyTorch side, in its own process: the same workloads, the same nets, the same steps.

Never imported by the process that times tinygan (two BLAS/OpenMP runtimes in one process
fight for the cores, and the comparison would measure the fight).  `bench.run` starts it as
`python -m bench.torch_worker --serve` and talks JSON lines over its stdin/stdout:

    {"op": "hello", "device": "cpu", "threads": 2}       -> versions, thread count
    {"op": "calibrate", "spec": {...}, "min_sample_s": t} -> {"inner": k, "t": seconds per call}
    {"op": "sample", "n": n}                              -> {"times": [...]} (seconds per call)
    {"op": "quit"}

`python -m bench.torch_worker --memory dcgan --batch 64` measures one step's peak RSS in a
fresh process, exactly as `python -m bench.ours --memory` does for tinygan.

The nets mirror tinygan/gans/nets.py: DCGAN G/D (bias-free convs, BN except on G's output
and D's input, ReLU / LeakyReLU(0.2), tanh, N(0, 0.02) init), the WGAN-GP critic (no BN,
biased middle convs), and the Keras MNIST MLPs (BatchNorm1d momentum 0.2 in torch terms).
The steps mirror gans/gan.py, dcgan.py and wgan.py line by line, and like tinygan's
training loop fetch each step's losses to the host once (one stacked `.tolist()`).
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

if __package__ in (None, ""):                       # run as a file: make `bench` importable
    import os
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import shapes  # noqa: E402

DEV = "cpu"


def _sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def _rand(*shape, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).to(DEV)


# ---------------------------------------------------------------------------------------
# Nets (tinygan/gans/nets.py)

def dcgan_G(z_dim=100, ngf=64, channels=1):
    return nn.Sequential(
        nn.ConvTranspose2d(z_dim, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(),
        nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh())


def dcgan_D(ndf=64, channels=1, batch_norm=True):
    def mid(cin, cout):
        if batch_norm:
            return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2)]
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=True), nn.LeakyReLU(0.2)]
    return nn.Sequential(
        nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
        *mid(ndf, ndf * 2), *mid(ndf * 2, ndf * 4),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Flatten(0))


def dcgan_init_(m):
    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(mod.weight, 0.0, 0.02)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(mod.weight, 1.0, 0.02)
            nn.init.zeros_(mod.bias)
    return m


def mlp_G():
    layers = []
    for i, o in shapes.MLP_G[:-1]:
        layers += [nn.Linear(i, o), nn.BatchNorm1d(o, momentum=0.2), nn.LeakyReLU(0.2)]
    i, o = shapes.MLP_G[-1]
    return nn.Sequential(*layers, nn.Linear(i, o), nn.Tanh(), nn.Unflatten(1, shapes.IMAGE))


def mlp_D():
    layers = [nn.Flatten()]
    for i, o in shapes.MLP_D[:-1]:
        layers += [nn.Linear(i, o), nn.LeakyReLU(0.2)]
    i, o = shapes.MLP_D[-1]
    return nn.Sequential(*layers, nn.Linear(i, o), nn.Flatten(0))


# ---------------------------------------------------------------------------------------
# Steps (tinygan/gans/gan.py, dcgan.py, wgan.py)

def make_step(variant: str, N: int, g_backward_inputs: bool = False):
    """The canonical step (loss_G.backward() also fills D's weight gradients, which the G
    update never uses), or with `g_backward_inputs` the G step as tinygan does it:
    loss_G.backward(inputs=G's parameters)."""
    torch.manual_seed(0)
    x = torch.empty((N,) + shapes.IMAGE).uniform_(-1, 1).to(DEV)
    bce = F.binary_cross_entropy_with_logits
    if variant == "gan":
        G, D = mlp_G().to(DEV), mlp_D().to(DEV)
        pad = lambda t: t
    else:
        G = dcgan_init_(dcgan_G()).to(DEV)
        D = dcgan_init_(dcgan_D(batch_norm=variant != "wgan_gp")).to(DEV)
        pad = lambda t: F.pad(t, (2, 2, 2, 2), value=-1.0)      # 28 -> 32, as to_net does
    lr, betas = (1e-4, (0.0, 0.9)) if variant == "wgan_gp" else (2e-4, (0.5, 0.999))
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    z = lambda: torch.randn(N, shapes.Z_DIM, device=DEV)
    zG = (lambda: z()) if variant == "gan" else (lambda: z().reshape(N, -1, 1, 1))

    def gan_step():
        xr = pad(x)
        fake = G(zG()).detach()
        lr_, lf = D(xr), D(fake)
        loss_D = bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        lg = D(G(zG()))
        loss_G = bce(lg, torch.ones_like(lg))
        opt_G.zero_grad()
        loss_G.backward(inputs=list(G.parameters()) if g_backward_inputs else None)
        opt_G.step()
        return torch.stack([loss_D.detach(), loss_G.detach()]).tolist()

    def critic_step(g_turn):
        xr = pad(x)
        fake = G(zG()).detach()
        wl = D(fake).mean() - D(xr).mean()
        eps = torch.rand(N, 1, 1, 1, device=DEV)
        x_hat = (eps * xr + (1 - eps) * fake).detach().requires_grad_()
        g, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        norms = ((g.reshape(N, -1) ** 2).sum(dim=1) + 1e-12).sqrt()
        penalty = 10.0 * ((norms - 1.0) ** 2).mean()
        loss_D = wl + penalty
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        logs = [loss_D, wl, penalty]
        if g_turn:
            loss_G = -D(G(zG())).mean()
            opt_G.zero_grad()
            loss_G.backward()
            opt_G.step()
            logs.append(loss_G)
        return torch.stack([t.detach() for t in logs]).tolist()

    if variant == "wgan_gp":
        def iteration():
            for i in range(shapes.N_CRITIC):
                critic_step(i == shapes.N_CRITIC - 1)
        return iteration
    return gan_step


# ---------------------------------------------------------------------------------------
# Kernels and layers

def _kernel_fn(w):
    k, N = w["kernel"], w["batch"]
    if "cin" in w:
        cin, cout, K, s, p, h, oh = (w[a] for a in ("cin", "cout", "k", "s", "p", "h", "oh"))
        if w["kind"] == "convT":
            x_in, g_out, W = _rand(N, cout, oh, oh), _rand(N, cin, h, h), _rand(cin, cout, K, K)
        else:
            x_in, g_out, W = _rand(N, cin, h, h), _rand(N, cout, oh, oh), _rand(cout, cin, K, K)
        if k == "conv2d":
            return lambda: F.conv2d(x_in, W, stride=s, padding=p)
        if k == "conv_transpose2d":
            return lambda: F.conv_transpose2d(g_out, W, stride=s, padding=p)
        if k == "conv2d_grad_weight":
            return lambda: torch.nn.grad.conv2d_weight(x_in, W.shape, g_out, stride=s, padding=p)
        if k == "im2col":
            return lambda: F.unfold(x_in, K, padding=p, stride=s)
        col = F.unfold(x_in, K, padding=p, stride=s)
        return lambda: F.fold(col, x_in.shape[2:], K, padding=p, stride=s)
    if k == "matmul":
        m, kk, n = w["mkn"]
        x, W = _rand(m, kk), _rand(n, kk, seed=1)
        return lambda: x @ W.T
    if "mbd" in w:
        # the same maps written as torch ops (what its autograd of (M_i - M_j).abs().sum() runs)
        B, C = w["mbd"]
        M, g, u = _rand(N, B, C), _rand(N, N, B, seed=1), _rand(N, B, C, seed=2)
        sign = lambda: torch.sign(M[:, None] - M[None, :])              # noqa: E731
        calls = {"pairwise_l1": lambda: (M[:, None] - M[None, :]).abs().sum(3),
                 "pairwise_l1_grad": lambda: ((g + g.transpose(0, 1))[..., None] * sign()).sum(1),
                 "pairwise_l1_grad_adjoint": lambda: (sign() * (u[:, None] - u[None, :])).sum(3)}
        return calls[k]
    if "c" in w:
        C, H = w["c"], w["h"]
        x, gy = _rand(N, C, H, H), _rand(N, C, H, H, seed=1)
        var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
        inv_std = 1.0 / torch.sqrt(var + 1e-5)
        weight, bias = torch.ones(C, device=DEV), torch.zeros(C, device=DEV)
        calls = {
            "batch_norm_stats": lambda: torch.var_mean(x, dim=(0, 2, 3), unbiased=False),
            "batch_norm_apply": lambda: F.batch_norm(x, mean, var, weight, bias, training=False),
            "batch_norm_backward": lambda: torch.ops.aten.native_batch_norm_backward(
                gy, x, weight, None, None, mean, inv_std, True, 1e-5, [True, True, True]),
            "leaky_relu": lambda: F.leaky_relu(x, 0.2),
            "leaky_relu_grad": lambda: torch.ops.aten.leaky_relu_backward(gy, x, 0.2, False)}
        # The fused pair as torch runs it: two ops (it has no fused BN + activation on CPU).
        slope = w.get("slope", 0.2)
        y = F.leaky_relu(F.batch_norm(x, mean, var, weight, bias, training=False), slope)
        calls["batch_norm_act_apply"] = lambda: F.leaky_relu(
            F.batch_norm(x, mean, var, weight, bias, training=False), slope)
        calls["batch_norm_act_backward"] = lambda: torch.ops.aten.native_batch_norm_backward(
            torch.ops.aten.leaky_relu_backward(gy, y, slope, False), x, weight, None, None, mean,
            inv_std, True, 1e-5, [True, True, True])
        return calls[k]
    params = []
    for i, s in enumerate(w["params"]):
        p = nn.Parameter(_rand(*s, scale=0.02, seed=i))
        p.grad = _rand(*s, scale=0.01, seed=100 + i)
        params.append(p)
    # foreach=False: torch's per-tensor loop, the same shape of work as tinygan's optimizers
    opt = {"adam_update": lambda: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), foreach=False),
           "sgd_update": lambda: torch.optim.SGD(params, lr=1e-3, momentum=0.9, foreach=False),
           "rmsprop_update": lambda: torch.optim.RMSprop(params, lr=5e-5, foreach=False)}[k]()
    return opt.step


def _layer_fn(w):
    N = w["batch"]
    if w["kind"] == "act":
        C, H = w["c"], w["h"]
        x = _rand(N, C, H, H).requires_grad_()
        gy = _rand(N, C, H, H, seed=1)
        wt = torch.ones(C, device=DEV, requires_grad=True)
        b = torch.zeros(C, device=DEV, requires_grad=True)
        rm, rv = torch.zeros(C, device=DEV), torch.ones(C, device=DEV)
        act = {"relu": F.relu, "tanh": torch.tanh, "leaky_relu": lambda t: F.leaky_relu(t, 0.2)}[w["act"]]
        inputs = [x, wt, b] if w["bn"] else [x]

        def forward():
            h = F.batch_norm(x, rm, rv, wt, b, training=True) if w["bn"] else x
            return act(h)
    elif w["kind"] in ("inorm", "rpad"):
        C, H = w["c"], w["h"]
        x = _rand(N, C, H, H).requires_grad_()
        OH = H + 2 if w["kind"] == "rpad" else H
        gy = _rand(N, C, OH, OH, seed=1)
        wt = torch.ones(C, device=DEV, requires_grad=True)
        b = torch.zeros(C, device=DEV, requires_grad=True)
        inputs = [x, wt, b] if w["kind"] == "inorm" else [x]

        def forward():
            if w["kind"] == "inorm":
                return F.instance_norm(x, weight=wt, bias=b)
            return F.pad(x, (1, 1, 1, 1), mode="reflect")
    else:
        cin, cout, K, s, p, h, oh = (w[a] for a in ("cin", "cout", "k", "s", "p", "h", "oh"))
        x = _rand(N, cin, h, h).requires_grad_()
        gy = _rand(N, cout, oh, oh, seed=1)
        shape = (cin, cout, K, K) if w["kind"] == "convT" else (cout, cin, K, K)
        W = _rand(*shape, scale=0.02, seed=2).requires_grad_()
        inputs = [x, W]
        conv = F.conv_transpose2d if w["kind"] == "convT" else F.conv2d

        def forward():
            return conv(x, W, stride=s, padding=p)
    if w["pass_"] == "fwd":
        return forward
    return lambda: torch.autograd.grad(forward(), inputs, grad_outputs=gy)


def make(w: dict):
    if w["group"] == "kernels":
        return _kernel_fn(w)
    if w["group"] == "layers":
        return _layer_fn(w)
    if w["kind"] != "step":
        raise ValueError(f"no PyTorch counterpart for a {w['kind']!r} workload")
    return make_step(w["variant"], w["batch"], w.get("torch_g_inputs", False))


# ---------------------------------------------------------------------------------------

def _setup(device: str, threads: int):
    global DEV
    DEV = device
    torch.set_num_threads(threads)
    if device == "cuda":
        torch.backends.cudnn.benchmark = True       # PyTorch at its best: cuDNN's autotuner


def serve() -> int:
    out = sys.stdout
    sys.stdout = sys.stderr             # nothing but replies may reach the pipe
    fn = inner = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "hello":
                _setup(req.get("device", "cpu"), int(req.get("threads", 2)))
                rep = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "device": DEV, "cudnn": (torch.backends.cudnn.version()
                                                if DEV == "cuda" else None)}
            elif op == "calibrate":
                fn = None
                fn = make(req["spec"])
                inner, t = shapes.calibrate(fn, _sync, req["min_sample_s"])
                rep = {"inner": inner, "t": t}
            elif op == "sample":
                rep = {"times": shapes.sample(fn, _sync, int(req["n"]), inner)}
            elif op == "quit":
                break
            else:
                rep = {"error": f"unknown op {op!r}"}
        except Exception as e:          # report, keep serving: one workload must not end the run
            rep = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(rep) + "\n")
        out.flush()
    return 0


def load_library_code() -> None:
    """One tiny forward+backward of every layer kind and an Adam step, so that oneDNN / MKL
    have loaded and generated their code before the RSS baseline is read (the tinygan side
    does the same for its Numba kernels); the memory figures then count data, not code."""
    x = torch.randn(2, 3, 6, 6, device=DEV, requires_grad=True)
    layers = [nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.ConvTranspose2d(3, 4, 4, 2, 1, bias=False),
              nn.BatchNorm2d(3), nn.LeakyReLU(0.2), nn.Tanh()]
    lin = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.LeakyReLU(0.2)).to(DEV)
    params = [p for m in layers for p in m.parameters()] + list(lin.parameters())
    opt = torch.optim.Adam(params)
    for m in layers:
        m.to(DEV)(x).sum().backward()
    F.binary_cross_entropy_with_logits(lin(x.reshape(-1, 6)[:4]), torch.ones(4, 5, device=DEV)).backward()
    opt.step()
    _sync()


def memory_main(a) -> int:
    _setup(a.device, a.threads)
    load_library_code()
    start = shapes.rss_now_kib()
    step = make_step(a.memory, a.batch)
    step()                               # warm-up, as on the tinygan side
    _sync()
    out = shapes.rss_step_peak(step, _sync, start)
    if DEV == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        _sync()
        out["cuda_step_mib"] = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    print(json.dumps(out))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.torch_worker")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--memory", choices=shapes.STEPS)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    if a.memory:
        return memory_main(a)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
