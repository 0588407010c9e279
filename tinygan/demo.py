"""`python -m tinygan.demo`: the whole engine at work on one screen of code.

A small MLP learns to separate two interleaved spirals, a 2-D problem no linear model can
solve.  Everything below the model is tinygan: `nn.Linear`/`nn.Tanh`/`nn.ReLU` layers, the
cross-entropy loss, `loss.backward()` through the autograd engine and an `optim.Adam` step.
The result is a picture of the learned decision boundary (PNG, written with Pillow) and the
accuracy on the training points and on a fresh sample of the same spirals.

    python -m tinygan.demo                      # -> runs/demo/decision_boundary.png
    python -m tinygan.demo --steps 200 --out /tmp/spirals.png
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

DEFAULT_OUT = os.path.join("runs", "demo", "decision_boundary.png")
EXTENT = 1.3                       # the picture shows [-EXTENT, EXTENT]^2
CLASS_COLORS = np.array([[31, 119, 180], [255, 127, 14]], dtype=np.float64)   # blue, orange


def two_spirals(n_per_class: int, seed: int, noise: float = 0.04):
    """Points on two spiral arms (1.25 turns each, the second is the first rotated by 180°).

    Returns x (2n, 2) float32 in about [-1, 1]^2 and labels y (2n,) int64 in {0, 1}.
    """
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n_per_class)) * 2.5 * np.pi      # sqrt: as many points near the centre
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (2.5 * np.pi)
    x = np.concatenate([arm, -arm]) + noise * rng.standard_normal((2 * n_per_class, 2))
    y = np.repeat(np.arange(2), n_per_class)
    return x.astype(np.float32), y.astype(np.int64)


def build_model(hidden: int):
    from . import nn
    return nn.Sequential(nn.Linear(2, hidden), nn.Tanh(),
                         nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 2))


def predict_proba(model, x: np.ndarray) -> np.ndarray:
    """P(class 1 | x) for a batch of points, without recording a graph."""
    import tinygan as tg
    with tg.no_grad():
        logits = model(tg.tensor(x)).numpy().astype(np.float64)
    d = np.clip(logits[:, 1] - logits[:, 0], -50, 50)
    return 1.0 / (1.0 + np.exp(-d))                        # softmax over two classes


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(((predict_proba(model, x) > 0.5) == (y == 1)).mean())


def render(model, x: np.ndarray, y: np.ndarray, path: str, size: int = 400) -> str:
    """Paint P(class 1) over the plane, the 0.5 contour in dark grey, and the training points."""
    from PIL import Image, ImageDraw

    coords = np.linspace(-EXTENT, EXTENT, size)
    gx, gy = np.meshgrid(coords, coords[::-1])              # image rows go top to bottom
    p = predict_proba(model, np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))
    p = p.reshape(size, size, 1)
    rgb = (1 - p) * CLASS_COLORS[0] + p * CLASS_COLORS[1]
    rgb = 0.35 * rgb + 0.65 * 255.0                          # pale background, points stand out
    boundary = np.zeros((size, size), bool)                  # where the predicted class flips
    cls = p[..., 0] > 0.5
    boundary[:, 1:] |= cls[:, 1:] != cls[:, :-1]
    boundary[1:, :] |= cls[1:, :] != cls[:-1, :]
    rgb[boundary] = 60.0
    image = Image.fromarray(rgb.round().astype(np.uint8), "RGB")

    draw = ImageDraw.Draw(image)
    scale = (size - 1) / (2 * EXTENT)
    for (px, py), label in zip(x, y):
        cx, cy = (px + EXTENT) * scale, (EXTENT - py) * scale
        color = tuple(int(c * 0.8) for c in CLASS_COLORS[label])
        draw.ellipse([cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5], fill=color, outline=(255, 255, 255))

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    image.save(path, format="PNG")
    return path


def train(steps: int = 500, out: str = DEFAULT_OUT, seed: int = 0, hidden: int = 64,
          lr: float = 1e-2, n_per_class: int = 200, progress: bool = True) -> dict:
    """Train on the spirals (full batch), write the picture, return the numbers."""
    from tqdm import tqdm

    import tinygan as tg
    import tinygan.functional as F
    from . import optim

    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    tg.manual_seed(seed)                                      # the weights' initial values
    x, y = two_spirals(n_per_class, seed=seed)
    x_test, y_test = two_spirals(n_per_class, seed=seed + 1)
    model = build_model(hidden)
    opt = optim.Adam(model.parameters(), lr=lr)
    inputs, targets = tg.tensor(x), tg.tensor(y)

    loss_value = float("nan")
    bar = tqdm(range(steps), desc="two spirals", unit="step", disable=not progress,
               dynamic_ncols=True)
    for step in bar:
        loss = F.cross_entropy(model(inputs), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_value = loss.item()
        if step % 20 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss_value:.4f}")
    bar.close()

    result = {"steps": steps, "loss": loss_value,
              "train_accuracy": accuracy(model, x, y),
              "test_accuracy": accuracy(model, x_test, y_test),
              "out": render(model, x, y, out)}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinygan.demo",
        description="Train a small MLP on two spirals with tinygan and draw its decision boundary.")
    parser.add_argument("--steps", type=int, default=500, help="Adam steps, full batch (default 500)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="data and initialisation seed")
    parser.add_argument("--hidden", type=int, default=64, help="hidden units per layer")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.steps < 0:
        parser.error(f"--steps must be >= 0, got {args.steps}")
    if args.hidden < 1:
        parser.error(f"--hidden must be >= 1, got {args.hidden}")

    r = train(steps=args.steps, out=args.out, seed=args.seed, hidden=args.hidden, lr=args.lr,
              progress=not args.quiet)
    print(f"steps {r['steps']}  loss {r['loss']:.4f}  "
          f"train accuracy {r['train_accuracy']:.3f}  test accuracy {r['test_accuracy']:.3f}")
    print(f"decision boundary written to {r['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
