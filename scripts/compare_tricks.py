"""Measured comparison: the MLP `gan` on a 2-D toy with vs without Salimans et al.'s tricks.

    .venv/bin/python scripts/compare_tricks.py --data ring8 --steps 2000 --seeds 0 1 2

Each run trains from the same seed for the same number of steps (batch 64), then draws
2,000 samples and measures, with `tinygan.metrics.toy_mode_metrics`: the modes covered (>= 20 %
of a mode's fair share of samples within 3 std of its centre), the modes reached (the same
count without the 3-std cut: which modes G aims at at all), the share of high-quality samples
(within 3 std of a mode centre) and the median distance to the nearest centre in std.  Prints a
table (mean over seeds and the per-seed values); `--json PATH` also writes every run's numbers.
Extra settings: `--configs name:key=value,key=value ...`.

On digits (`--data mnist`) the same protocol scores the samples with the MNIST classifier
(`tinygan.metrics.image_metrics`): classes present (>= 1 % of the samples), the largest class's
share, FD and IS — e.g. virtual batch norm, which needs a generator with batch norms:

    .venv/bin/python scripts/compare_tricks.py --data mnist --steps 1000 \
        --configs plain: vbn:virtual_bn=true
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tinygan import backend, data as datasets
from tinygan.autograd import Tensor
from tinygan.gans import create
from tinygan.metrics import image_metrics, toy_mode_metrics

CONFIGS = {
    "plain": {},
    "minibatch_disc": {"minibatch_disc": True},
    "feature_matching": {"feature_matching": True},
}


TOY_KEYS = ("modes_covered", "modes_reached", "high_quality_pct", "median_distance_in_std")
IMAGE_KEYS = ("classes_present", "largest_class_pct", "frechet_distance", "inception_score")


def run(variant, data, config, steps, batch_size, seed, n_eval=2000):
    ds = datasets.load(data)
    backend.manual_seed(seed)
    model = create(variant, ds.shape[1:], num_classes=ds.num_classes if variant == "cgan" else None,
                   config=config)
    loader = datasets.DataLoader(ds, batch_size=batch_size, seed=seed)
    t0 = time.time()
    for _ in range(steps):
        x, y = next(loader)
        model.train_step(Tensor(x), None if variant != "cgan" else Tensor(y))
    seconds = time.time() - t0
    samples = model.sample(n_eval)
    if ds.kind == "toy":
        m = toy_mode_metrics(samples, ds.mode_centers, ds.mode_std)
        out = {k: m[k] for k in TOY_KEYS + ("modes_total",)}
    else:
        m = image_metrics(samples)
        m["largest_class_pct"] = round(100.0 * max(m["class_histogram"]) / n_eval, 1)
        out = {k: m[k] for k in IMAGE_KEYS}
    return out | {"seed": seed, "seconds": round(seconds, 1)}


def describe(name, r) -> str:
    if "modes_covered" in r:
        return (f"  {name} seed {r['seed']}: {r['modes_covered']}/{r['modes_total']} modes covered, "
                f"{r['modes_reached']} reached, {r['high_quality_pct']:.1f}% high quality, "
                f"median distance {r['median_distance_in_std']:.1f} std, {r['seconds']:.0f} s")
    return (f"  {name} seed {r['seed']}: {r['classes_present']}/10 classes, largest "
            f"{r['largest_class_pct']:.1f}%, FD {r['frechet_distance']:.1f}, "
            f"IS {r['inception_score']:.2f}, {r['seconds']:.0f} s")


def per_seed(r) -> str:
    if "modes_covered" in r:
        return f"({r['modes_covered']}/{r['modes_reached']}/{r['modes_total']}, {r['high_quality_pct']:.1f})"
    return f"({r['classes_present']}, {r['largest_class_pct']:.0f}%, {r['frechet_distance']:.0f})"


def parse_configs(items):
    out = {}
    for item in items:
        name, _, kv = item.partition(":")
        out[name] = {k: json.loads(v) for k, v in (p.split("=", 1) for p in kv.split(",") if p)}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="gan")
    p.add_argument("--data", default="ring8")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--configs", nargs="*", default=None, help="NAME:key=value,... (default: %s)"
                   % ", ".join(CONFIGS))
    p.add_argument("--json", default=None, help="also write the numbers of every run here")
    args = p.parse_args(argv)
    configs = parse_configs(args.configs) if args.configs else CONFIGS
    print(f"{args.variant} on {args.data}, {args.steps} steps, batch {args.batch_size}, "
          f"seeds {args.seeds}; 2,000 samples each")
    toy = datasets.load(args.data).kind == "toy"
    keys = TOY_KEYS if toy else IMAGE_KEYS
    titles = (("covered", "reached", "HQ %", "med.d") if toy else ("classes", "largest%", "FD", "IS"))
    print(f"{'config':<18} " + " ".join(f"{t:>8}" for t in titles) + f" {'s/run':>6}   per seed "
          + ("(covered/reached/total, HQ%)" if toy else "(classes, largest class, FD)"))
    t0, results = time.time(), {}
    for name, cfg in configs.items():
        rows = []
        for s in args.seeds:
            rows.append(run(args.variant, args.data, cfg, args.steps, args.batch_size, s))
            print(describe(name, rows[-1]), flush=True)
        mean = {k: float(np.mean([r[k] for r in rows])) for k in keys + ("seconds",)}
        results[name] = {"config": cfg, "mean": mean, "runs": rows}
        print(f"{name:<18} " + " ".join(f"{mean[k]:>8.2f}" for k in keys)
              + f" {mean['seconds']:>6.1f}   " + "  ".join(per_seed(r) for r in rows), flush=True)
    print(f"total wall time {time.time() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"variant": args.variant, "data": args.data, "steps": args.steps,
                       "batch_size": args.batch_size, "seeds": args.seeds, "results": results},
                      f, indent=1)


if __name__ == "__main__":
    main()
