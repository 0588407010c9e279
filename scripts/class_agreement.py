"""How often the shipped MNIST classifier agrees with the class a conditional G was asked for.

    python scripts/class_agreement.py RUN_DIR [--n-per-class 200] [--seed 0]

For each class c: n samples G(z, c), classified; prints one JSON line with the agreement per
class and overall (the ACGAN target: >= 0.9 for all 10 classes).  A stand-in until
`tinygan eval` reports it for conditional variants.
"""
import argparse
import json

import numpy as np

import tinygan
from tinygan import backend
from tinygan.autograd import Tensor
from tinygan.classifier import classify, load_classifier
from tinygan.train import build_from_checkpoint


def agreement(run: str, n_per_class: int = 200, seed: int = 0) -> dict:
    variant, meta, _ = build_from_checkpoint(run)
    if not variant.needs_labels:
        raise SystemExit(f"class_agreement: {meta['variant']} is not class-conditional")
    net = load_classifier()
    tinygan.manual_seed(seed)
    per_class = []
    for c in range(variant.num_classes):
        y = Tensor(backend.to_device(np.full(n_per_class, c), variant.device))
        probs, _ = classify(net, variant.sample(n_per_class, y=y))
        per_class.append(float((probs.argmax(1) == c).mean()))
    return {"variant": meta["variant"], "step": meta.get("step"), "n_per_class": n_per_class,
            "agreement": round(float(np.mean(per_class)), 4),
            "worst_class": int(np.argmin(per_class)), "worst": round(min(per_class), 4),
            "per_class": [round(a, 3) for a in per_class]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--n-per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(json.dumps(agreement(a.run, a.n_per_class, a.seed)))
