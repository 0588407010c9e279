"""Does `cgan` draw the digit it is asked for?  The default command, over seeds, scored.

    .venv/bin/python scripts/cgan_class_agreement.py --seeds 0 1 2 [--out /tmp/cgan_agree]
        [--set projection=false] [--steps N] [--json PATH]

For each seed: `tinygan train cgan --seed S --out OUT/seedS` (the default data and steps,
plus any `--steps`/`--set` given here), timed, then `tinygan eval OUT/seedS` (2,000 samples,
classes 0..9 in turn, scored by the shipped classifier).  Prints one row per seed — class
agreement, FD, IS, classes present, wall seconds — and the mean and spread (min..max).
Wall seconds include process start and dataset loading, and are inflated on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def run(cmd: list[str]) -> str:
    r = subprocess.run([sys.executable, "-m", "tinygan", *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"`tinygan {' '.join(cmd)}` failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="runs/cgan_agreement", help="one run folder per seed inside")
    p.add_argument("--steps", type=int, default=None, help="default: the variant's own")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--n", type=int, default=2000, help="samples scored per run")
    p.add_argument("--json", default=None, help="also write every run's numbers here")
    args = p.parse_args(argv)

    rows = []
    for seed in args.seeds:
        out = os.path.join(args.out, f"seed{seed}")
        cmd = ["train", "cgan", "--seed", str(seed), "--out", out, "--quiet"]
        cmd += ["--steps", str(args.steps)] if args.steps else []
        for kv in args.set:
            cmd += ["--set", kv]
        t0 = time.time()
        run(cmd)
        wall = time.time() - t0
        m = json.loads(run(["eval", out, "--n", str(args.n)]))
        rows.append({"seed": seed, "wall_s": round(wall, 1), "step": m["step"], **m})
        print(f"seed {seed}: agreement {100 * m['class_agreement']:.1f} %  FD {m['frechet_distance']:.1f}  "
              f"IS {m['inception_score']:.2f}  classes {m['classes_present']}  "
              f"{m['step']} steps in {wall:.0f} s", flush=True)

    print("\n| seed | class agreement % | FD | IS | classes present | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {100 * r['class_agreement']:.1f} | {r['frechet_distance']:.1f} | "
              f"{r['inception_score']:.2f} | {r['classes_present']} | {r['wall_s']:.0f} |")
    for key, scale in (("class_agreement", 100), ("frechet_distance", 1), ("inception_score", 1)):
        v = [scale * r[key] for r in rows]
        print(f"{key}: mean {sum(v) / len(v):.2f}, range {min(v):.2f}..{max(v):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
