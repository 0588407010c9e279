"""`dcgan` at equal steps against PyTorch: the same nets, recipe, data and seeds, one yardstick.

    .venv/bin/python scripts/dcgan_vs_torch.py --torch-python /path/to/venv-with-torch/bin/python \
        [--steps 1000] [--seeds 0 1 2] [--n 2000] [--out runs/dcgan_vs_torch] [--json PATH]

For each seed, two runs on the 5,000 shipped MNIST digits (`mnist-subset`), batch 64:

  tinygan   `tinygan train dcgan --data mnist-subset --steps S --seed s`, then 2,000 samples
            drawn as `tinygan eval` draws them (nets in eval mode: BN running statistics);
  PyTorch   this file run by the torch interpreter (`--torch-worker`): the DCGAN nets of
            bench/torch_worker.py (the same layers and N(0, 0.02) init), the step of
            gans/dcgan.py (D on a real batch and a detached fake batch, BCE with logits
            summed; then G's non-saturating BCE on fresh fakes; Adam(2e-4, 0.5, 0.999)),
            the digits padded to 32×32 with -1 as `to_net` does, the batches served in the
            order of tinygan's DataLoader for the same seed, and 2,000 samples from G in
            eval mode, cropped back to 28×28.

Both sample sets are scored here by `tinygan.metrics.image_metrics` (the shipped classifier:
FD, IS analogue, classes present).  Prints a per-seed table, means, and the ratio of mean FDs.
The weights and the noise come from each framework's own generator, so a seed is not the
same initial state on both sides: the spread over seeds is the yardstick for "noise".

    .venv/bin/python scripts/dcgan_vs_torch.py --torch-python ... --same-start 50

separates numerics from recipe instead: both sides start from tinygan's initial weights
(seed 0) and take K steps on the SAME batches and the SAME latent noise (drawn here, handed
to both).  Printed: the two loss curves' largest difference at step 1 and over K steps, and
the relative difference of G's and D's weights after step 1 and after step K.  Equal recipes
and float32 numerics agree to rounding at step 1 and drift apart only slowly after.

Measured (`--same-start 100 --threads 1`, torch 2.13 CPU): the losses agree to 1.4e-6 at
step 1; G's weights differ by 2e-4 (relative) after that step — Adam's first update is
lr·sign(g) per weight, so rounding flips the sign of the near-zero gradients — and the
trajectories then diverge as GAN training does from any perturbation: the losses differ
by 2-3 % at step 26 and 2× at step 100 (a loss_G spike on one side), the weights by 4-5 %.
After 1,000 steps a run is as far from its twin as from another seed's run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- the PyTorch side (runs under the torch interpreter; imports no tinygan) ------------------
def torch_worker(args) -> int:
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, ROOT)
    from bench.torch_worker import dcgan_D, dcgan_G, dcgan_init_

    torch.set_num_threads(args.threads)
    with np.load(args.data) as z:
        x_all = torch.from_numpy(z["x"])                       # (N, 1, 28, 28) in [-1, 1]
    n, bs, seed = len(x_all), args.batch_size, args.seed
    torch.manual_seed(seed)
    G, D = dcgan_init_(dcgan_G()), dcgan_init_(dcgan_D())
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits
    z = lambda: torch.randn(bs, 100, 1, 1)

    def batches():
        # tinygan's DataLoader: epoch e serves default_rng([seed, e]).permutation(N), drop_last
        epoch = 0
        while True:
            order = np.random.default_rng([seed, epoch]).permutation(n)
            for i in range(0, n - bs + 1, bs):
                yield x_all[torch.from_numpy(order[i:i + bs])]
            epoch += 1

    t0, it = time.time(), batches()
    for _ in range(args.steps):
        xr = F.pad(next(it), (2, 2, 2, 2), value=-1.0)
        fake = G(z()).detach()
        lr_, lf = D(xr), D(fake)
        loss_D = bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        lg = D(G(z()))
        loss_G = bce(lg, torch.ones_like(lg))
        opt_G.zero_grad()
        loss_G.backward(inputs=list(G.parameters()))
        opt_G.step()
    seconds = time.time() - t0
    G.eval()
    with torch.no_grad():
        out = torch.cat([G(torch.randn(min(500, args.n - i), 100, 1, 1))
                         for i in range(0, args.n, 500)])[:, :, 2:30, 2:30]
    np.savez(args.samples, samples=out.numpy().astype(np.float32))
    print(json.dumps({"seconds": seconds, "loss_D": loss_D.item(), "loss_G": loss_G.item(),
                      "torch": torch.__version__}))
    return 0


def _torch_keys(name: str) -> str:
    """tinygan's G `main.k` / D `body.k`, `head` → the indices of bench's nn.Sequential nets."""
    if name.startswith(("main.", "body.")):
        return name.split(".", 1)[1]
    return name.replace("head.", "8.", 1)


def torch_same_start(args) -> int:
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, ROOT)
    from bench.torch_worker import dcgan_D, dcgan_G

    torch.set_num_threads(args.threads)
    with np.load(args.data) as z:
        arrays = {k: z[k] for k in z.files}
    G, D = dcgan_G(), dcgan_D()
    for net, tag in ((G, "G."), (D, "D.")):
        state = {_torch_keys(k[2:]): torch.from_numpy(v) for k, v in arrays.items() if k.startswith(tag)}
        res = net.load_state_dict(state, strict=False)
        if res.unexpected_keys or any("num_batches" not in k for k in res.missing_keys):
            raise SystemExit(f"weights do not map: {res}")
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = F.binary_cross_entropy_with_logits
    losses, snaps = [], {}
    for k in range(len(arrays["x"])):
        xr = F.pad(torch.from_numpy(arrays["x"][k]), (2, 2, 2, 2), value=-1.0)
        fake = G(torch.from_numpy(arrays["z"][2 * k]).reshape(-1, 100, 1, 1)).detach()
        lr_, lf = D(xr), D(fake)
        loss_D = bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        lg = D(G(torch.from_numpy(arrays["z"][2 * k + 1]).reshape(-1, 100, 1, 1)))
        loss_G = bce(lg, torch.ones_like(lg))
        opt_G.zero_grad()
        loss_G.backward(inputs=list(G.parameters()))
        opt_G.step()
        losses.append([loss_D.item(), loss_G.item()])
        if k == 0 or k == len(arrays["x"]) - 1:
            for net, tag in ((G, "G"), (D, "D")):
                snaps[f"{tag}{k}"] = np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])
    np.savez(args.samples, losses=np.array(losses), **snaps)
    return 0


def same_start(args) -> int:
    """Both frameworks from one initial state, on one stream of batches and noise."""
    from tinygan import backend, data, gans
    from tinygan.autograd import Tensor
    K, bs = args.same_start, args.batch_size
    backend.manual_seed(0)
    m = gans.create("dcgan", (1, 28, 28))
    rng = np.random.default_rng(0)
    x = data.load("mnist-subset").x
    xs = np.stack([x[rng.choice(len(x), bs, replace=False)] for _ in range(K)]).astype(np.float32)
    zs = rng.standard_normal((2 * K, bs, 100)).astype(np.float32)
    os.makedirs(args.out, exist_ok=True)
    init = os.path.join(args.out, "same_start.npz")
    np.savez(init, x=xs, z=zs, **{f"G.{k}": v for k, v in m.G.state_dict().items()},
             **{f"D.{k}": v for k, v in m.D.state_dict().items()})
    noise = iter(zs)
    m.sample_z = lambda n: Tensor(next(noise))          # G's two draws a step, in order
    ours, snaps = [], {}
    for k in range(K):
        logs = m.train_step(Tensor(xs[k]))
        ours.append([logs["loss_D"], logs["loss_G"]])
        if k == 0 or k == K - 1:
            for tag, net in (("G", m.G), ("D", m.D)):
                snaps[f"{tag}{k}"] = np.concatenate([np.asarray(p.data).ravel() for p in net.parameters()])
    out = os.path.join(args.out, "same_start_torch.npz")
    r = subprocess.run([args.torch_python, os.path.abspath(__file__), "--torch-same-start",
                        "--threads", str(args.threads), "--data", init, "--samples", out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"torch worker failed:\n{r.stderr}")
    ours = np.array(ours)
    with np.load(out) as t:
        theirs = t["losses"]
        print(f"same start, same batches and noise, {K} steps (loss_D, loss_G):")
        for k in sorted({0, 1, 2, K // 4, K // 2, K - 1}):
            print(f"  step {k + 1:4d}: tinygan {ours[k, 0]:.6f} {ours[k, 1]:.6f}   "
                  f"torch {theirs[k, 0]:.6f} {theirs[k, 1]:.6f}")
        d = np.abs(ours - theirs)
        print(f"  largest loss difference: step 1 {d[0].max():.2e}, over {K} steps {d.max():.2e}")
        for k in (0, K - 1):
            for tag in "GD":
                a, b = snaps[f"{tag}{k}"], t[f"{tag}{k}"]
                print(f"  {tag} weights after step {k + 1}: relative difference "
                      f"{np.linalg.norm(a - b) / np.linalg.norm(b):.2e}")
    return 0


# -- the tinygan side and the scoring ---------------------------------------------------------
def tinygan_run(seed: int, steps: int, n: int, out: str) -> tuple[np.ndarray, float]:
    from tinygan import backend
    from tinygan.train import build_from_checkpoint, train
    t0 = time.time()
    train("dcgan", data="mnist-subset", steps=steps, seed=seed, out=out, progress=False)
    seconds = time.time() - t0
    backend.manual_seed(0)
    variant, _, _ = build_from_checkpoint(out)
    return variant.sample(n), seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torch-python", default=None, help="an interpreter that has torch")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n", type=int, default=2000, help="samples scored per run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="torch's intra-op threads")
    p.add_argument("--out", default="runs/dcgan_vs_torch")
    p.add_argument("--json", default=None)
    p.add_argument("--only", choices=["tinygan", "torch"], default=None, help="run one side only")
    p.add_argument("--same-start", type=int, default=0, metavar="K",
                   help="instead: K steps of both from one initial state, batches and noise")
    # the worker's own arguments
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-same-start", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help=argparse.SUPPRESS)
    p.add_argument("--samples", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.torch_worker:
        return torch_worker(args)
    if args.torch_same_start:
        return torch_same_start(args)

    sys.path.insert(0, ROOT)
    if args.same_start:
        if not args.torch_python:
            raise SystemExit("--same-start needs --torch-python")
        return same_start(args)
    from tinygan import data
    from tinygan.metrics import image_metrics
    os.makedirs(args.out, exist_ok=True)
    digits = os.path.join(args.out, "digits.npz")
    np.savez(digits, x=data.load("mnist-subset").x.astype(np.float32))
    sides = [args.only] if args.only else ["tinygan", "torch"]
    if "torch" in sides and not args.torch_python:
        raise SystemExit("--torch-python is needed for the PyTorch side (or --only tinygan)")

    rows = []
    for seed in args.seeds:
        for side in sides:
            if side == "tinygan":
                samples, seconds = tinygan_run(seed, args.steps, args.n,
                                               os.path.join(args.out, f"tinygan_seed{seed}"))
            else:
                path = os.path.join(args.out, f"torch_seed{seed}.npz")
                r = subprocess.run([args.torch_python, os.path.abspath(__file__), "--torch-worker",
                                    "--seed", str(seed), "--steps", str(args.steps),
                                    "--n", str(args.n), "--batch-size", str(args.batch_size),
                                    "--threads", str(args.threads), "--data", digits,
                                    "--samples", path], capture_output=True, text=True)
                if r.returncode != 0:
                    raise SystemExit(f"torch worker failed:\n{r.stderr}")
                seconds = json.loads(r.stdout.strip().splitlines()[-1])["seconds"]
                with np.load(path) as z:
                    samples = z["samples"]
            m = image_metrics(samples)
            row = {"side": side, "seed": seed, "seconds": round(seconds, 1),
                   **{k: m[k] for k in ("frechet_distance", "inception_score", "classes_present",
                                        "class_histogram")}}
            rows.append(row)
            print(f"{side:8s} seed {seed}: FD {row['frechet_distance']:7.2f}  "
                  f"IS {row['inception_score']:.2f}  classes {row['classes_present']}  "
                  f"({seconds:.0f} s)", flush=True)

    print("\n| side | seed | FD | IS | classes present | train s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['side']} | {r['seed']} | {r['frechet_distance']:.2f} | "
              f"{r['inception_score']:.2f} | {r['classes_present']} | {r['seconds']:.0f} |")
    means = {}
    for side in sides:
        fd = [r["frechet_distance"] for r in rows if r["side"] == side]
        means[side] = float(np.mean(fd))
        print(f"{side}: mean FD {means[side]:.2f}, range {min(fd):.2f}..{max(fd):.2f}")
    if len(means) == 2:
        print(f"mean FD ratio tinygan / torch: {means['tinygan'] / means['torch']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
