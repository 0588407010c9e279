"""MNIST and Fashion-MNIST: IDX files from a folder, a verified download, or the shipped subset.

Where `load("mnist")` looks, in order:
  1. root given (`--data-dir`): the IDX files in root (or root/mnist); missing files are an
     error that says which files to put there — an explicit folder is never second-guessed.
  2. the cache, $TINYGAN_DATA/mnist (default ~/.cache/tinygan/mnist), downloading the two
     files of the split there (MD5-checked) when they are missing;
  3. offline, for `mnist` only: the 5,000 real digits shipped in the package
     (`mnist_subset.npz`, 500 per class), with a one-line notice on stderr that says how
     to skip the download (TINYGAN_OFFLINE=1); none with download=False (nothing was tried).
Fashion-MNIST has no shipped subset: offline, it is an error saying where to put the files.
`load("mnist-subset")` asks for the shipped digits directly and never touches the network.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from . import download as dl
from .dataset import DataFormatError, DataNotFoundError, Dataset
from .idx import read_idx

SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

SOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/"],
        "files": {"train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
                  "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
                  "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
                  "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c"},
        "classes": tuple(str(d) for d in range(10)),
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"],
        "files": {"train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                  "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
                  "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
                  "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310"},
        "classes": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                    "Sneaker", "Bag", "Ankle boot"),
    },
}

SUBSET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_subset.npz")


def find_file(folder: str, stem: str) -> str | None:
    """`stem`, `stem.gz`, or the `train-images.idx3-ubyte` spelling some copies use, in folder."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def read_pair(images_path: str, labels_path: str, num_classes: int = 10):
    """(uint8 images (N, 28, 28), int64 labels (N,)) from an IDX image file and its label file."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFormatError(f"{images_path}: expected uint8 images (N, H, W), got "
                              f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataFormatError(f"{labels_path}: expected uint8 labels (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataFormatError(f"size mismatch: {images_path} holds {len(images)} images but "
                              f"{labels_path} {len(labels)} labels")
    if len(labels) and labels.max() >= num_classes:
        raise DataFormatError(f"{labels_path}: label {labels.max()} is not in 0..{num_classes - 1}")
    return images, labels.astype(np.int64)


def _dataset(name: str, images: np.ndarray, labels: np.ndarray, source: str) -> Dataset:
    return Dataset(name, images[:, None], labels, classes=SOURCES[name]["classes"], source=source)


def load_subset() -> Dataset:
    """The 5,000 real MNIST digits (500 per class) shipped inside the package."""
    if not os.path.exists(SUBSET):
        raise DataNotFoundError(f"the shipped MNIST subset {SUBSET} is missing from this install; "
                                f"rebuild it with `python scripts/make_mnist_subset.py`")
    with np.load(SUBSET, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28) or labels.shape != (len(images),):
        raise DataFormatError(f"{SUBSET}: expected uint8 images (N, 28, 28) and N labels, got "
                              f"{images.dtype} {images.shape} and {labels.shape}")
    ds = _dataset("mnist", images, labels, source="shipped subset (5,000 digits)")
    ds.name = "mnist-subset"
    return ds


def _where_to_put(name: str, folder: str, stems, or_data_dir: bool = True) -> str:
    wanted = " and ".join(f"{s}.gz" for s in stems)
    tip = ", or point --data-dir at a folder that holds them" if or_data_dir else ""
    return f"put {wanted} (from {SOURCES[name]['mirrors'][0]}) in {folder}{tip}"


def load_idx_dataset(name: str = "mnist", root: str | None = None, split: str = "train",
                     download: bool = True) -> Dataset:
    """MNIST or Fashion-MNIST, (N, 1, 28, 28) in [-1, 1] with int64 labels (see the module doc)."""
    if name not in SOURCES:
        raise ValueError(f"load_idx_dataset: unknown dataset {name!r}; known: {', '.join(SOURCES)}")
    if split not in SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; known: {', '.join(SPLITS)}")
    stems = SPLITS[split]

    if root is not None:
        for folder in (root, os.path.join(root, name)):
            paths = [find_file(folder, s) for s in stems]
            if all(paths):
                return _dataset(name, *read_pair(*paths), source=os.path.abspath(folder))
        missing = [s for s in stems if not find_file(root, s)]
        raise DataNotFoundError(f"{name}: {', '.join(missing)}(.gz) not found in {root}; "
                                + _where_to_put(name, root, stems, or_data_dir=False))

    folder = os.path.join(dl.cache_dir(), name)
    paths = [find_file(folder, s) for s in stems]
    if all(paths):
        return _dataset(name, *read_pair(*paths), source=folder)
    wanted = {f"{s}.gz": SOURCES[name]["files"][f"{s}.gz"] for s in stems}
    try:
        if not download:
            raise dl.DownloadError("downloads are turned off (download=False)", "download=False")
        got = dl.fetch(wanted, SOURCES[name]["mirrors"], folder)
    except dl.DownloadError as e:
        if name == "mnist":
            # (download=False: nothing was tried, so there is nothing to report)
            if download and dl.offline():
                print("tinygan: TINYGAN_OFFLINE is set: using the 5,000 real MNIST digits shipped "
                      "with tinygan", file=sys.stderr)
            elif download:
                print(f"tinygan: MNIST could not be downloaded ({e.reason}); using the 5,000 real "
                      f"digits shipped with tinygan (TINYGAN_OFFLINE=1 skips the download)",
                      file=sys.stderr)
            ds = load_subset()
            ds.name = "mnist"
            return ds
        raise DataNotFoundError(f"{name}: not in the cache and not downloadable ({e.reason}); "
                                + _where_to_put(name, folder, stems)) from None
    return _dataset(name, *read_pair(*(got[f"{s}.gz"] for s in stems)), source=folder)
