"""Walking the latent space of a trained generator: interpolation and vector arithmetic over z.

    lerp(z0, z1, t)        (1 − t) z0 + t z1
    slerp(z0, z1, t)       sin((1 − t)Ω)/sin Ω · z0 + sin(tΩ)/sin Ω · z1,  cos Ω = ẑ0·ẑ1
                           (White 2016, "Sampling Generative Networks"): for Gaussian z the
                           straight line passes near the origin, where z almost never lies
                           (‖z‖ ≈ √d), so the great-circle path keeps samples typical.
    interpolate(...)       rows of samples along such paths;  interpolation_strip(...) a PNG
    mean_latent(...)       the average z of chosen samples
    latent_arithmetic(...) G(mean(a) − mean(b) + mean(c)), Radford et al. 2015, Figure 7
                           ("smiling woman" − "neutral woman" + "neutral man" = "smiling man");
                           arithmetic_figure(...) draws the three groups and the result.
    class_mean_latents(...) for an unconditional G: the mean z of the samples of each class, as
                           judged by a classifier (or, on the 2-D toys, by the nearest mode).

For conditional variants (needs_labels) the label is held fixed along a path / in a sum (`y`).
Commands: `tinygan interpolate CKPT` and `tinygan arithmetic CKPT` (cmd_* / add_*_arguments).
"""
from __future__ import annotations

import os

import numpy as np

from . import backend, viz
from .autograd import Tensor


# -- paths between two latent vectors ------------------------------------------------------------
def lerp(z0, z1, t):
    """(1 − t) z0 + t z1, for scalar t or an array of t (→ one row per t)."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.asarray(t, np.float64)
    if t.ndim:
        return np.stack([lerp(z0, z1, s) for s in t])
    return (1.0 - t) * z0 + t * z1


def slerp(z0, z1, t, eps: float = 1e-7):
    """Spherical interpolation along the great circle from z0 to z1 (White's formula; for
    equal norms every point keeps that norm).  Where sin Ω → 0 the formula divides by zero:
    nearly parallel vectors fall back to lerp (the two agree in that limit), and so do exactly
    opposite ones, for which no single great circle exists."""
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.asarray(t, np.float64)
    if t.ndim:
        return np.stack([slerp(z0, z1, s, eps) for s in t])
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 < eps or n1 < eps:
        return lerp(z0, z1, t)
    cos = np.clip(np.dot(z0, z1) / (n0 * n1), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < 1e-6:                # parallel: the circle degenerates to the line
        return lerp(z0, z1, t)
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def _generate(variant, z: np.ndarray, y=None) -> np.ndarray:
    z = Tensor(backend.to_device(np.asarray(z, np.float32), variant.device))
    if y is not None:
        y = Tensor(backend.to_device(np.asarray(y).astype(np.int64), variant.device))
    return variant.sample(len(z.data), z=z, y=y)


def _labels(variant, n: int, y):
    """Labels for a conditional variant: `y` (an int or n ints) or class i % K for row i."""
    if not variant.needs_labels:
        return None
    if y is None:
        return np.arange(n) % variant.num_classes
    y = np.broadcast_to(np.asarray(y, np.int64), (n,))
    if y.min() < 0 or y.max() >= variant.num_classes:
        raise ValueError(f"label {y.tolist()} out of range for {variant.num_classes} classes")
    return y


def interpolate(variant, n_steps: int = 10, mode: str = "slerp", rows: int = 8, seed: int = 0,
                y=None, z0=None, z1=None) -> np.ndarray:
    """Samples along `rows` paths from random z0 to z1 (or the given ones), `n_steps` points
    each: shape (rows, n_steps, *data_shape).  Row r keeps label y[r] (conditional variants)."""
    if mode not in ("slerp", "linear"):
        raise ValueError(f"the interpolation mode must be 'slerp' or 'linear', got {mode!r}")
    if n_steps < 2 or rows < 1:
        raise ValueError(f"an interpolation needs at least 2 steps and 1 row, got {n_steps} "
                         f"steps and {rows} rows")
    rng = np.random.default_rng(seed)
    d = variant.z_dim
    z0 = rng.standard_normal((rows, d)) if z0 is None else np.asarray(z0).reshape(rows, d)
    z1 = rng.standard_normal((rows, d)) if z1 is None else np.asarray(z1).reshape(rows, d)
    path = slerp if mode == "slerp" else lerp
    t = np.linspace(0.0, 1.0, n_steps)
    zs = np.concatenate([path(z0[r], z1[r], t) for r in range(rows)])       # (rows·n_steps, d)
    labels = _labels(variant, rows, y)
    ys = None if labels is None else np.repeat(labels, n_steps)
    out = _generate(variant, zs, ys)
    return out.reshape((rows, n_steps) + out.shape[1:])


def _load(ckpt_or_variant, device="cpu"):
    if isinstance(ckpt_or_variant, str):
        from .checkpoint import build_from_checkpoint
        return build_from_checkpoint(ckpt_or_variant, device=device)[0]
    return ckpt_or_variant


def interpolation_strip(ckpt_or_variant, out_png: str, n_steps: int = 10, mode: str = "slerp",
                        rows: int = 8, seed: int = 0, y=None, device: str = "cpu") -> str:
    """A PNG with one interpolation path per row (images), or the paths as dots (2-D toys)."""
    variant = _load(ckpt_or_variant, device)
    samples = interpolate(variant, n_steps, mode, rows, seed, y)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    if variant.is_toy:
        return viz.scatter_2d(samples.reshape(-1, samples.shape[-1]), out_png)
    return viz.save_image_grid(samples.reshape((-1,) + samples.shape[2:]), out_png, nrow=n_steps)


# -- vector arithmetic -------------------------------------------------------------------------
def mean_latent(variant, zs, indices=None) -> np.ndarray:
    """The mean of zs[indices] (all of zs when indices is None), a (z_dim,) vector."""
    zs = np.asarray(zs, np.float64)
    if zs.ndim == 1:
        zs = zs[None]
    if zs.shape[1] != variant.z_dim:
        raise ValueError(f"mean_latent: z vectors {zs.shape} do not have z_dim={variant.z_dim}")
    chosen = zs if indices is None else zs[np.asarray(indices, np.int64)]
    if len(chosen) == 0:
        raise ValueError("mean_latent: no z chosen")
    return chosen.mean(0)


def latent_arithmetic(variant, a, b, c, y=None, n_noise: int = 0, noise: float = 0.25,
                      seed: int = 0) -> np.ndarray:
    """G(mean(a) − mean(b) + mean(c)) and, with n_noise > 0, as in Radford et al.'s Figure 7,
    n_noise more samples of that vector plus uniform noise in ±`noise`.  a, b, c: z vectors
    (k, z_dim) or one (z_dim,).  Returns (1 + n_noise, *data_shape)."""
    r = mean_latent(variant, a) - mean_latent(variant, b) + mean_latent(variant, c)
    jitter = np.random.default_rng(seed).uniform(-noise, noise, (n_noise, r.size))
    zs = np.concatenate([r[None], r[None] + jitter])
    return _generate(variant, zs, _labels(variant, len(zs), y))


def arithmetic_figure(ckpt_or_variant, a, b, c, out_png: str, y=None, n_noise: int = 5,
                      seed: int = 0, device: str = "cpu", indices=None,
                      labels: bool = True) -> str:
    """The three groups' samples, each followed by the sample of its mean z (rows a, b, c),
    then the result G(ā − b̄ + c̄) and its noisy neighbours (last row).  Images only.
    With `labels` each row is named in a left margin ("a", "− b", "+ c", "= result") and
    each tile captioned (its sample number from `indices`, three lists of ints, else z1,
    z2, ...; "mean" for the group's mean, "result" / "+noise").  labels=False: the bare grid."""
    variant = _load(ckpt_or_variant, device)
    if variant.is_toy:
        raise ValueError("arithmetic works on image variants; this one makes 2-D points")
    groups = [np.atleast_2d(np.asarray(g, np.float64)) for g in (a, b, c)]
    result = latent_arithmetic(variant, *groups, y=y, n_noise=n_noise, seed=seed)
    width = max(max(len(g) for g in groups) + 1, len(result))
    blank = np.ones((1,) + result.shape[1:], np.float32)           # white tiles pad the rows
    tiles = []
    for g in groups:
        z = np.concatenate([g, mean_latent(variant, g)[None]])
        imgs = _generate(variant, z, _labels(variant, len(z), y))
        tiles += [imgs, np.repeat(blank, width - len(imgs), 0)]
    tiles += [result, np.repeat(blank, width - len(result), 0)]
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    if not labels:
        return viz.save_image_grid(np.concatenate(tiles), out_png, nrow=width)
    rows, captions = _arithmetic_labels(groups, indices, n_noise, y)
    img = viz.labelled_grid(np.concatenate(tiles), width, rows, captions)
    viz._atomic_save(img, out_png)
    return out_png


def _arithmetic_labels(groups, indices, n_noise: int, y=None):
    """Row labels and tile captions for `arithmetic_figure` (ASCII: Pillow's bitmap font has
    no minus sign or macron)."""
    rows, captions = [], []
    for k, (sign, name, g) in enumerate(zip(("", "- ", "+ "), "abc", groups)):
        idx = None if indices is None else [int(i) for i in indices[k]]
        caps = [f"#{i}" for i in idx] if idx else [f"z{i + 1}" for i in range(len(g))]
        what = (f"sample{'s' * (len(idx) > 1)} {','.join(map(str, idx))}" if idx
                else f"{len(g)} z vector{'s' * (len(g) > 1)}")
        rows.append(f"{sign}{name}\n{_shorten(what)}")
        captions.append(caps + [f"mean {name}"])
    cls = "" if y is None else f"\nclass {y}"
    rows.append(f"= result\nG(mean a - mean b\n   + mean c){cls}")
    captions.append(["result"] + ["+noise"] * n_noise)
    return rows, captions


def _shorten(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def class_mean_latents(variant, classify, n: int = 1000, seed: int = 0, num_classes=None):
    """(K, z_dim) mean z of the samples of each class, for an unconditional G: draw n z,
    generate, label each sample with `classify(samples) -> int labels`, average z per label.
    A class no sample fell into gets NaNs.  With the mean of, e.g., all the 7s and all the 1s,
    `latent_arithmetic(v, means[7], means[1], z)` moves a sample from "1" towards "7"."""
    z = np.random.default_rng(seed).standard_normal((n, variant.z_dim))
    labels = np.asarray(classify(_generate(variant, z)), np.int64)
    K = num_classes or int(labels.max()) + 1
    means = np.full((K, variant.z_dim), np.nan)
    for k in range(K):
        if (labels == k).any():
            means[k] = z[labels == k].mean(0)
    return means


def nearest_mode_classifier(centers):
    """For the 2-D toys: the label of a point is the index of its nearest mode centre."""
    centers = np.asarray(centers, np.float64)
    return lambda x: np.linalg.norm(np.asarray(x)[:, None] - centers[None], axis=-1).argmin(1)


# -- commands --------------------------------------------------------------------------------
def add_interpolate_arguments(p) -> None:
    from .arguments import add_checkpoint_argument, add_device_argument, path   # path expands ~, $VARS
    add_checkpoint_argument(p)
    p.add_argument("--out", type=path, required=True, help="FILE.png: one path per row")
    p.add_argument("--steps", type=int, default=10, help="points per path (default 10)")
    p.add_argument("--mode", choices=["slerp", "linear"], default="slerp",
                   help="slerp: along the sphere where Gaussian z live (default); linear: straight")
    p.add_argument("--rows", type=int, default=8, help="number of paths (default 8)")
    p.add_argument("--label", type=int, default=None,
                   help="conditional variants: the class of every row (default: row i → class i)")
    p.add_argument("--seed", type=int, default=0, help="picks the end points")
    add_device_argument(p)


def cmd_interpolate(args) -> int:
    if not args.out.endswith(".png"):
        raise ValueError(f"--out must end with .png, got {args.out!r}")
    if args.steps < 2 or args.rows < 1:
        raise ValueError(f"--steps must be >= 2 and --rows >= 1, got --steps {args.steps} "
                         f"--rows {args.rows}")
    path = interpolation_strip(args.checkpoint, args.out, n_steps=args.steps, mode=args.mode,
                               rows=args.rows, seed=args.seed, y=args.label, device=args.device)
    print(f"wrote {args.rows} {args.mode} paths of {args.steps} steps to {path}")
    return 0


def _indices(text):
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated sample numbers like 3,17,42, got {text!r}") from None


def add_arithmetic_arguments(p) -> None:
    from .arguments import add_checkpoint_argument, add_device_argument, path
    add_checkpoint_argument(p)
    p.add_argument("--out", type=path, required=True, help="FILE.png")
    p.add_argument("--bank", type=int, default=64,
                   help="how many numbered samples (z drawn from --seed) to choose groups from")
    p.add_argument("-a", default=None, help="sample numbers of group a, e.g. 3,17,42")
    p.add_argument("-b", default=None, help="group b (subtracted)")
    p.add_argument("-c", default=None, help="group c (added)")
    p.add_argument("--label", type=int, default=None, help="conditional variants: the class")
    p.add_argument("--noise", type=int, default=5, help="noisy neighbours of the result")
    p.add_argument("--seed", type=int, default=0, help="draws the numbered bank of z (default 0)")
    add_device_argument(p)


def cmd_arithmetic(args) -> int:
    """Without -a/-b/-c: write the numbered bank of samples (row-major) to choose from.
    With them: the figure  a, b, c (each with its mean) and G(ā − b̄ + c̄)."""
    if not args.out.endswith(".png"):
        raise ValueError(f"--out must end with .png, got {args.out!r}")
    if args.bank < 1 or args.noise < 0:
        raise ValueError(f"--bank must be >= 1 and --noise >= 0, got --bank {args.bank} "
                         f"--noise {args.noise}")
    variant = _load(args.checkpoint, args.device)
    bank = np.random.default_rng(args.seed).standard_normal((args.bank, variant.z_dim))
    if args.a is None and args.b is None and args.c is None:
        if variant.is_toy:
            raise ValueError("arithmetic works on image variants; this one makes 2-D points")
        samples = _generate(variant, bank, _labels(variant, args.bank, args.label))
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        starts = range(0, args.bank, 8)
        img = viz.labelled_grid(samples, 8, [f"{i}-{min(i + 7, args.bank - 1)}" for i in starts],
                                [[f"#{k}" for k in range(i, min(i + 8, args.bank))]
                                 for i in starts])
        viz._atomic_save(img, args.out)
        print(f"wrote samples 0..{args.bank - 1} (numbered, 8 per row) to {args.out}; pick "
              f"groups and run again with -a I,J,K -b ... -c ... (same --seed, --bank)")
        return 0
    if None in (args.a, args.b, args.c):
        raise ValueError("give all three groups -a, -b and -c (or none, to see the bank)")
    groups = []
    for name, text in (("a", args.a), ("b", args.b), ("c", args.c)):
        idx = _indices(text)
        if not idx or min(idx) < 0 or max(idx) >= args.bank:
            raise ValueError(f"-{name}: sample numbers must lie in 0..{args.bank - 1}, got {text!r}")
        groups.append(bank[idx])
    path = arithmetic_figure(variant, *groups, args.out, y=args.label, n_noise=args.noise,
                             seed=args.seed,
                             indices=[_indices(t) for t in (args.a, args.b, args.c)])
    print(f"wrote a, b, c and G(mean a - mean b + mean c) to {path}")
    return 0
