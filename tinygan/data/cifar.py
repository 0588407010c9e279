"""CIFAR-10 (Krizhevsky 2009) from its *binary* distribution — no pickle is ever loaded.

`cifar-10-binary.tar.gz` holds `cifar-10-batches-bin/data_batch_{1..5}.bin` (train, 10,000
images each) and `test_batch.bin`. Each file is a run of 3,073-byte records:

    byte 0          the label, 0..9
    bytes 1..1024   the red plane, 32×32, row-major
    then            the green plane, then the blue one

so a file reshapes straight to (n, 3073) and its pixel part to (n, 3, 32, 32), NCHW already.
The loader takes the `.bin` files from a folder, or reads them out of the archive without
extracting it; with no root it downloads the archive (162 MB, MD5-checked) into the cache.
"""
from __future__ import annotations

import os
import tarfile
import zlib

import numpy as np

from . import download as dl
from .dataset import DataFormatError, DataNotFoundError, Dataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE = "cifar-10-binary.tar.gz"
CHECKSUM = "md5:c32a1d4ab5d03f1284b67883e8d87530"
RECORD = 1 + 3 * 32 * 32
SPLITS = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def parse_records(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images (n, 3, 32, 32), int64 labels (n,)) from the bytes of one batch file."""
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataFormatError(f"{where}: {len(raw)} bytes is not a whole number of "
                              f"{RECORD}-byte CIFAR-10 records (truncated or not a CIFAR-10 .bin file)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        bad = int(np.argmax(labels >= len(CLASSES)))
        raise DataFormatError(f"{where}: record {bad} has label {labels[bad]}, not in 0..9 "
                              f"(corrupt, or not a CIFAR-10 .bin file)")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _from_folder(folder: str, names: list[str]) -> list[tuple[str, bytes]] | None:
    paths = [os.path.join(folder, n) for n in names]
    if not all(os.path.isfile(p) for p in paths):
        return None
    out = []
    for p in paths:
        with open(p, "rb") as f:
            out.append((p, f.read()))
    return out


def _from_archive(path: str, names: list[str]) -> list[tuple[str, bytes]]:
    """The named members' bytes, found by base name anywhere in the tar (nothing is extracted)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
            missing = [n for n in names if n not in members]
            if missing:
                raise DataFormatError(f"{path}: the archive lacks {', '.join(missing)}")
            return [(f"{path}:{members[n].name}", tar.extractfile(members[n]).read()) for n in names]
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise DataFormatError(f"{path}: corrupt or truncated archive ({e})") from None


def _candidates(root: str) -> list[str]:
    return [root, os.path.join(root, "cifar-10-batches-bin"), os.path.join(root, "cifar10"),
            os.path.join(root, "cifar10", "cifar-10-batches-bin")]


def _find(root: str, names: list[str]):
    for folder in _candidates(root):
        found = _from_folder(folder, names)
        if found:
            return found
    for folder in _candidates(root)[::2]:
        if os.path.isfile(os.path.join(folder, ARCHIVE)):
            return _from_archive(os.path.join(folder, ARCHIVE), names)
    return None


def load_cifar10(root: str | None = None, split: str = "train", download: bool = True) -> Dataset:
    """CIFAR-10, (N, 3, 32, 32) in [-1, 1] with int64 labels."""
    if split not in SPLITS:
        raise ValueError(f"cifar10: unknown split {split!r}; known: {', '.join(SPLITS)}")
    names = SPLITS[split]
    where = root if root is not None else os.path.join(dl.cache_dir(), "cifar10")
    found = _find(where, names)
    if found is None and root is None:
        try:
            if not download:
                raise dl.DownloadError("downloads are turned off (download=False)", "download=False")
            archive = dl.fetch({ARCHIVE: CHECKSUM}, [URL.rsplit("/", 1)[0]], where)[ARCHIVE]
        except dl.DownloadError as e:
            raise DataNotFoundError(
                f"cifar10: not in the cache and not downloadable ({e.reason}); put {ARCHIVE} (from "
                f"{URL}) or its extracted {', '.join(names)} in {where}, or point --data-dir at a "
                f"folder that holds them") from None
        found = _from_archive(archive, names)
    if found is None:
        present = [n for n in names if any(os.path.isfile(os.path.join(f, n)) for f in _candidates(root))]
        detail = f" (found only {', '.join(present)})" if present else ""
        raise DataNotFoundError(f"cifar10: neither {ARCHIVE} nor all of {', '.join(names)} found in "
                                f"{root}{detail}; put the archive (from {URL}) or its extracted "
                                f".bin files there")
    parts = [parse_records(raw, where=p) for p, raw in found]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Dataset("cifar10", images, labels, classes=CLASSES, source=os.path.abspath(where))
