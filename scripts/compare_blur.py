"""Side by side, same data and same budget: why likelihood models blur where GANs do not.

An autoencoder (or VAE) trained with a per-pixel likelihood is paid for the *expected* pixel
given the code; where several strokes are plausible it draws their average, a grey smear.  A
GAN's generator is paid only for fooling D, and D rejects grey smears, so its digits have the
hard, saturated edges of real ones.  `compare_blur` trains `ae`, `vae` and `dcgan` for the same
number of steps on the same training digits and measures, on real held-out digits and on each
model's output:
    edge     mean image-gradient magnitude √(∂x² + ∂y²) on [0, 1] pixels (sharp = large);
    binary   share of pixels within 0.1 of black or white in [0, 1] units (MNIST is nearly
             binary; a blurred digit has a grey rim).
`heldout_reconstruction` does the same protocol for the encoding variants (bigan, aae, ...):
train on 4,500 digits, score G(E(x)) on the 500 the classifier also held out.

    python scripts/compare_blur.py [--steps 300] [--batch-size 64] [--out runs/compare_blur]
    python scripts/compare_blur.py --recon bigan aae --steps 400   # held-out G(E(x)) scores
    python scripts/compare_blur.py --sharpness a.npz b.npz         # of `tinygan sample --out X.npz`

The first form trains ae, vae and dcgan for the same steps on the same 4,500 digits and writes
OUT/compare_blur.png (rows: real, reconstructions, samples) and OUT/compare_blur.json
(sharpness numbers).  `--recon NAME...` instead trains each encoding variant and scores its
reconstructions of the 500 held-out digits (MSE, classifier accuracy), writing PNGs to OUT.
`--sharpness FILE...` trains nothing: it prints edge and binary of samples already drawn (and
of the real digits, for scale) — to compare runs, e.g. BEGAN's two γ (docs/energy_gans.md).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from PIL import Image, ImageDraw

from tinygan import backend, checkpoint, data as datasets
from tinygan.autograd import Tensor
from tinygan.gans import create
from tinygan.gans.encoders import reconstruction_quality
from tinygan.viz import _atomic_save, image_grid, save_image_grid


def heldout_split(ds) -> tuple:
    """((x, y) train, (x, y) held out): the last 50 digits of each class are held out — the
    split `scripts/train_classifier.py` uses, so the classifier never saw them either."""
    test = np.zeros(len(ds.labels), bool)
    for c in range(int(ds.labels.max()) + 1):
        test[np.flatnonzero(ds.labels == c)[-50:]] = True
    return (ds.x[~test], ds.labels[~test]), (ds.x[test], ds.labels[test])


def sharpness(images: np.ndarray) -> dict:
    """{"edge": mean gradient magnitude, "binary": share of near-black/white pixels} of images
    (N, C, H, W) in [-1, 1], both measured on [0, 1] pixels (module doc)."""
    p = (np.asarray(images, np.float64) + 1.0) / 2.0
    gy, gx = p[..., 1:, :-1] - p[..., :-1, :-1], p[..., :-1, 1:] - p[..., :-1, :-1]
    return {"edge": float(np.sqrt(gx ** 2 + gy ** 2).mean()),
            "binary": float(((p < 0.1) | (p > 0.9)).mean())}


def fit(name: str, x: np.ndarray, steps: int, batch_size: int = 64, seed: int = 0,
        config: dict | None = None, device: str = "cpu"):
    """Variant `name` trained for `steps` minibatches of x (reshuffled every epoch)."""
    backend.manual_seed(seed)
    model = create(name, x.shape[1:], config=config, device=device)
    rng, order, i = np.random.default_rng(seed), np.arange(0), 0
    for _ in range(steps):
        if i + batch_size > len(order):
            order, i = rng.permutation(len(x)), 0
        batch = x[order[i:i + batch_size]]
        i += batch_size
        model.train_step(Tensor(backend.to_device(batch, device)))
        model.steps_done += 1
    return model


def _labelled_rows(rows: list, path: str, n: int) -> str:
    """One PNG: a row of n images per (label, images), the label written in a left margin."""
    grid = image_grid(np.concatenate([imgs[:n] for _, imgs in rows]), nrow=n)
    margin, row_h = 130, grid.height / len(rows)
    canvas = Image.new("L", (grid.width + margin, grid.height), 255)
    canvas.paste(grid, (margin, 0))
    d = ImageDraw.Draw(canvas)
    for r, (label, _) in enumerate(rows):
        d.text((4, int(r * row_h + row_h / 2 - 6)), label, fill=0)
    _atomic_save(canvas, path)
    return path


def compare_blur(steps: int = 300, batch_size: int = 64, seed: int = 0,
                 out: str = "runs/compare_blur", n_eval: int = 500, n_show: int = 10,
                 device: str = "cpu") -> dict:
    """Train ae, vae, dcgan on the same 4,500 digits for `steps` steps of `batch_size`; write
    OUT/compare_blur.png (rows: real held-out digits, ae and vae reconstructions of them, ae,
    vae and dcgan samples) and OUT/compare_blur.json (sharpness of each row, seconds)."""
    (x_tr, _), (x_te, _) = heldout_split(datasets.load("mnist-subset"))
    x_te = x_te[np.random.default_rng(seed).permutation(len(x_te))][:n_eval]
    result = {"steps": steps, "batch_size": batch_size, "seed": seed, "real": sharpness(x_te)}
    rows = [("real (held out)", x_te)]
    recon, samples = [], []
    for name in ("ae", "vae", "dcgan"):
        t0 = time.time()
        model = fit(name, x_tr, steps, batch_size, seed, device=device)
        result[f"{name}_seconds"] = round(time.time() - t0, 1)
        gen = model.sample(n_eval)
        result[f"{name}_samples"] = sharpness(gen)
        samples.append((f"{name} G(z), z~N(0,I)", gen))
        if hasattr(model, "reconstruct"):
            rec = model.reconstruct(x_te)
            result[f"{name}_recon"] = dict(sharpness(rec), mse=float(np.mean((rec - x_te) ** 2)))
            recon.append((f"{name} G(E(x))", rec))
    os.makedirs(out, exist_ok=True)
    result["png"] = _labelled_rows(rows + recon + samples, os.path.join(out, "compare_blur.png"), n_show)
    with open(os.path.join(out, "compare_blur.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def heldout_reconstruction(name: str, steps: int = 1000, batch_size: int = 64, seed: int = 0,
                           config: dict | None = None, out: str | None = None,
                           device: str = "cpu") -> dict:
    """Train an encoding variant on the 4,500 training digits; score G(E(x)) on the 500 held
    out (MSE and the classifier's accuracy); with `out`, write OUT/NAME_recon.png (rows of
    real digits over their reconstructions) and OUT/NAME_samples.png."""
    (x_tr, _), (x_te, y_te) = heldout_split(datasets.load("mnist-subset"))
    t0 = time.time()
    model = fit(name, x_tr, steps, batch_size, seed, config, device)
    result = {"variant": name, "steps": steps, "batch_size": batch_size,
              "seconds": round(time.time() - t0, 1), **reconstruction_quality(model, x_te, y_te)}
    if out:
        os.makedirs(out, exist_ok=True)
        idx = np.concatenate([np.flatnonzero(y_te == c)[:2] for c in range(10)])   # 2 per class
        rec = model.reconstruct(x_te[idx])
        pairs = np.concatenate([x_te[idx[:10]], rec[:10], x_te[idx[10:]], rec[10:]])
        result["recon_png"] = save_image_grid(pairs, os.path.join(out, f"{name}_recon.png"), nrow=10)
        result["samples_png"] = save_image_grid(model.sample(100, z=model.fixed_noise(100)),
                                                os.path.join(out, f"{name}_samples.png"), nrow=10)
        if hasattr(model, "code_scatter") and model.z_dim == 2:
            result["codes_png"] = model.code_scatter(os.path.join(out, f"{name}_codes.png"), x_te, y_te)
        checkpoint.save(os.path.join(out, f"{name}.npz"), {"variant": model.state_dict()},
                  {"variant": name, "data": "mnist-subset", "data_shape": list(x_tr.shape[1:]),
                   "num_classes": None, "config": model.config, "step": steps})
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/compare_blur")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--recon", nargs="+", metavar="VARIANT", help="score held-out reconstructions instead")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config option for the --recon variants (value parsed as JSON when it can be)")
    p.add_argument("--sharpness", nargs="+", metavar="NPZ",
                   help="print the sharpness of samples from `tinygan sample --out FILE.npz`")
    a = p.parse_args()
    if a.sharpness:
        real = datasets.load("mnist").x
        print(json.dumps({"real digits": sharpness(real)}))
        for path in a.sharpness:
            with np.load(path, allow_pickle=False) as z:
                print(json.dumps({path: sharpness(z["samples"])}))
    elif a.recon:
        config = {}
        for kv in a.set:
            k, v = kv.split("=", 1)
            try:
                config[k] = json.loads(v)
            except json.JSONDecodeError:
                config[k] = v
        for name in a.recon:
            r = heldout_reconstruction(name, a.steps, a.batch_size, a.seed, config or None, a.out, a.device)
            print(json.dumps(r))
    else:
        print(json.dumps(compare_blur(a.steps, a.batch_size, a.seed, a.out, device=a.device), indent=1))


if __name__ == "__main__":
    main()
