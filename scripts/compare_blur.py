"""Why autoencoders blur where GANs do not — the side-by-side of tinygan.gans.compare.

    python scripts/compare_blur.py [--steps 300] [--batch-size 64] [--out runs/compare_blur]
    python scripts/compare_blur.py --recon bigan aae --steps 400   # held-out G(E(x)) scores

The first form trains ae, vae and dcgan for the same steps on the same 4,500 digits and writes
OUT/compare_blur.png (rows: real, reconstructions, samples) and OUT/compare_blur.json
(sharpness numbers).  `--recon NAME...` instead trains each encoding variant and scores its
reconstructions of the 500 held-out digits (MSE, classifier accuracy), writing PNGs to OUT.
"""
import argparse
import json

from tinygan.gans.compare import compare_blur, heldout_reconstruction


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
    a = p.parse_args()
    if a.recon:
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
