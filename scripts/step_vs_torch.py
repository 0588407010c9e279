"""One training step (or one DCGAN conv layer's fwd+bwd), tinygan against PyTorch, in many
short alternating rounds.

    .venv/bin/python scripts/step_vs_torch.py dcgan --rounds 15
    .venv/bin/python scripts/step_vs_torch.py G3 --rounds 30      # conv layer G3, fwd+bwd

`python -m bench` times each workload in a few rounds; on a machine whose speed drifts by
±20-50 % within minutes, a step ratio from one bench run still moves by ±0.05-0.1.  This
script times only one workload, alternating ours and PyTorch's (in its bench worker process,
never imported here) every `--per-round` samples, and prints both medians, the ratio of the
medians, and the median and range of the per-round ratios: a round's two sides ran within a
second of each other, so drift cancels in its ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import ours, run, shapes  # noqa: E402  (imports tinygan before numpy)


LAYERS = [name for name, *_ in shapes.CONV_LAYERS]


def workload(name: str, batch: int) -> dict:
    """The bench's spec for a step variant, or for conv layer `name`'s fwd+bwd."""
    if name in shapes.STEPS:
        return next(w for w in shapes.workloads(batch, "steps")
                    if w["kind"] == "step" and w["variant"] == name and not w.get("torch_g_inputs"))
    return next(w for w in shapes.workloads(batch, "layers")
                if w.get("layer") == name and w["pass_"] == "fwd+bwd" and w["kind"] != "gemms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", choices=list(shapes.STEPS) + LAYERS,
                    help="a training step, or a DCGAN conv layer (forward+backward)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--per-round", type=int, default=2, help="samples per side per round")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="PyTorch's thread count")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.per_round < 1:
        ap.error("--rounds and --per-round must be >= 1")
    if a.batch < 1 or a.threads < 1:
        ap.error("--batch and --threads must be >= 1")
    if not run.torch_available():
        print("step_vs_torch: PyTorch is not installed", file=sys.stderr)
        return 2
    from tinygan import kernels
    kernels.set_mode("fast")
    spec = workload(a.workload, a.batch)
    # A layer call lasts milliseconds: average a few back-to-back calls per sample, as the
    # bench does (a step is one call per sample).
    min_sample_s = run.FULL["min_sample_s"][spec["group"]]
    fn, sync = ours.make(spec, "cpu")
    inner, _ = shapes.calibrate(fn, sync, min_sample_s)     # compile / warm up, untimed
    worker = run.TorchWorker("cpu", a.threads)
    try:
        worker.ask(op="calibrate", spec=spec, min_sample_s=min_sample_s)
        mine, theirs, ratios = [], [], []
        for _ in range(a.rounds):
            m = shapes.sample(fn, sync, a.per_round, inner)
            time.sleep(run.SWITCH_PAUSE_S)
            t = worker.ask(op="sample", n=a.per_round)["times"]
            time.sleep(run.SWITCH_PAUSE_S)
            mine += m
            theirs += t
            ratios.append(statistics.median(m) / statistics.median(t))
    finally:
        worker.close()
    om, tm = statistics.median(mine), statistics.median(theirs)
    what = f"{a.workload} step," if a.workload in shapes.STEPS else f"{spec['name']},"
    print(f"{what} batch {a.batch}, {a.rounds} rounds x {a.per_round} samples a side: "
          f"tinygan {om * 1e3:.1f} ms, PyTorch {tm * 1e3:.1f} ms; ratio of medians {om / tm:.3f}; "
          f"per-round ratio median {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
