"""Write a folder of synthetic images for trying `folder:PATH` runs: coloured discs and squares.

    python scripts/make_shapes_folder.py /tmp/shapes            # 300 images, 64×64, seed 0
    python scripts/make_shapes_folder.py /tmp/shapes -n 500 --size 64 --seed 1

Each image is one plain background colour with one to three shapes (a disc or a square) of
random colour, position and size, drawn with Pillow: real structure a GAN can learn, made in a
second, the same bytes on every machine for a given seed. The README's small-folder recipe was
measured on the default folder.
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw


def draw(rng: np.random.Generator, size: int) -> Image.Image:
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        r = int(rng.integers(size // 8, size // 3))                  # half-width
        cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = (cx - r, cy - r, cx + r, cy + r)
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=colour)
    return img


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", help="folder to write (created; existing files with the same names are replaced)")
    p.add_argument("-n", type=int, default=300, help="number of images (default 300)")
    p.add_argument("--size", type=int, default=64, help="side in pixels (default 64)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    for i in range(a.n):
        draw(rng, a.size).save(os.path.join(a.out, f"shape_{i:04d}.png"))
    print(f"wrote {a.n} {a.size}×{a.size} images to {a.out}")


if __name__ == "__main__":
    main()
