"""Measured comparison: the MLP `gan` on a 2-D toy with vs without Salimans et al.'s tricks.

    .venv/bin/python scripts/compare_tricks.py --data ring8 --steps 2000 --seeds 0 1 2

Each run trains from the same seed for the same number of steps (batch 64), then draws
2,000 samples and counts, with `tinygan.metrics.toy_mode_metrics`, the modes covered and the
share of high-quality samples (within 3 std of a mode centre).  Prints a table (mean over seeds
and the per-seed values).  Extra settings: `--configs name:key=value,key=value ...`.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tinygan import backend, data as datasets
from tinygan.autograd import Tensor
from tinygan.gans import create
from tinygan.metrics import toy_mode_metrics

CONFIGS = {
    "plain": {},
    "minibatch_disc": {"minibatch_disc": True},
    "feature_matching": {"feature_matching": True},
}


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
    m = toy_mode_metrics(model.sample(n_eval), ds.mode_centers, ds.mode_std)
    return m["modes_covered"], m["modes_total"], m["high_quality_pct"], seconds


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
    args = p.parse_args(argv)
    configs = parse_configs(args.configs) if args.configs else CONFIGS
    print(f"{args.variant} on {args.data}, {args.steps} steps, batch {args.batch_size}, "
          f"seeds {args.seeds}; 2,000 samples each")
    print(f"{'config':<18} {'modes (mean)':>12} {'HQ % (mean)':>12} {'s/run':>7}   per seed (modes, HQ%)")
    t0 = time.time()
    for name, cfg in configs.items():
        rows = []
        for s in args.seeds:
            rows.append(run(args.variant, args.data, cfg, args.steps, args.batch_size, s))
            r = rows[-1]
            print(f"  {name} seed {s}: {r[0]}/{r[1]} modes, {r[2]:.1f}% high quality, {r[3]:.0f} s",
                  flush=True)
        modes = np.mean([r[0] for r in rows])
        hq = np.mean([r[2] for r in rows])
        secs = np.mean([r[3] for r in rows])
        per = "  ".join(f"({r[0]}/{r[1]}, {r[2]:.1f})" for r in rows)
        print(f"{name:<18} {modes:>12.2f} {hq:>12.1f} {secs:>7.1f}   {per}", flush=True)
    print(f"total wall time {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
