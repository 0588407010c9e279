"""Train the metrics classifier with tinygan on the shipped MNIST subset; write its weights.

    python scripts/train_classifier.py [--epochs 12] [--out tinygan/data/mnist_classifier.npz]

4,500 digits train (with random shifts of up to 2 pixels), the last 50 of each class (500)
are held out; prints the held-out accuracy, which the README quotes.
"""
import argparse
import os
import time

import numpy as np
from tqdm import tqdm

import tinygan
import tinygan.functional as F
from tinygan import data, optim
from tinygan.autograd import Tensor
from tinygan.classifier import WEIGHTS, MnistClassifier, classify


def split(ds):
    test = np.zeros(len(ds.labels), bool)
    for c in range(10):
        test[np.flatnonzero(ds.labels == c)[-50:]] = True
    return (ds.x[~test], ds.labels[~test]), (ds.x[test], ds.labels[test])


def shift(batch, rng, max_shift=2):
    """Random translations: cheap augmentation that matters with only 4,500 digits."""
    out = np.full_like(batch, -1.0)
    for i, img in enumerate(batch):
        dy, dx = rng.integers(-max_shift, max_shift + 1, 2)
        src = img[:, max(0, -dy):28 - max(0, dy), max(0, -dx):28 - max(0, dx)]
        out[i, :, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=WEIGHTS)
    args = ap.parse_args()

    tinygan.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    (xtr, ytr), (xte, yte) = split(data.load("mnist-subset"))
    net = MnistClassifier()
    opt = optim.Adam(net.parameters(), lr=1e-3)
    t0 = time.time()
    steps_per_epoch = len(xtr) // args.batch_size
    for epoch in range(args.epochs):
        if epoch == int(args.epochs * 0.7):
            for group in opt.param_groups:
                group["lr"] *= 0.3
        order = rng.permutation(len(xtr))
        net.train()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}")
        for b in bar:
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            x = Tensor(shift(xtr[idx], rng))
            loss = F.cross_entropy(net(x), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        net.eval()
        probs, _ = classify(net, xte)
        print(f"epoch {epoch + 1}: held-out accuracy {(probs.argmax(1) == yte).mean():.4f}")
    probs, _ = classify(net, xte)
    acc = float((probs.argmax(1) == yte).mean())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **net.state_dict())
    print(f"held-out accuracy {acc:.4f} on {len(yte)} digits; {time.time() - t0:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
