"""Datasets and the minibatch iterator.

    ds = tinygan.data.load("mnist")                  # Dataset: ds.x (N, 1, 28, 28) in [-1, 1], ds.labels
    for x, y in tinygan.data.DataLoader(ds, 64, seed=0): ...     # endless, shuffled by seed

Names `load` knows:
    mnist           IDX files from root, else the cache (downloaded when online), else offline
                    the 5,000 real digits shipped with tinygan (with a one-line notice)
    mnist-subset    those shipped digits, never the network
    fashion-mnist   IDX files from root or the cache (downloaded when online)
    cifar10         the binary archive cifar-10-binary.tar.gz or its data_batch_*.bin files
    folder:PATH     every JPG/PNG under PATH, centre-cropped and resized to size×size (default 64;
                    `folder:PATH?size=32` asks for 32×32, the form `tinygan train --data` takes)
    ring8, grid25, swissroll     2-D toy distributions (n points, generated from seed)
    edges2mnist, mnist2thick, mnist_x4     two-domain tasks made from the shipped digits
    paired:PATH     A|B side-by-side images (pix2pix's format), PATH/train and PATH/val
    unpaired:PATH   PATH/trainA and PATH/trainB (CycleGAN's format), testA/testB optional
                    (two-domain datasets: see pairs.py; `size`, `direction` apply to them)
    digits-negative, digits-edges    two domains side by side from disjoint halves of the
                    shipped digits (CoGAN's data, two_domains.py)
Downloads go to $TINYGAN_DATA (default ~/.cache/tinygan); TINYGAN_OFFLINE=1 forbids them.
"""
from __future__ import annotations

import difflib
import os
import re

from .cifar import load_cifar10
from .dataset import ChecksumError, DataFormatError, DataNotFoundError, Dataset, to_float
from .download import DownloadError, cache_dir
from .folder import load_folder
from .idx import read_idx, write_idx
from .loader import DataLoader, batches
from .mnist import load_idx_dataset, load_subset
from .pairs import TASKS, data_options, is_two_domain, load_two_domain
from .toys import DEFAULT_N, TOYS
from .two_domains import TRANSFORMS as TWO_DOMAINS, load_two_domains

NAMES = ("mnist", "mnist-subset", "fashion-mnist", "cifar10", "folder:PATH", "ring8", "grid25", "swissroll",
         "edges2mnist", "mnist2thick", "mnist_x4", "paired:PATH", "unpaired:PATH",
         *TWO_DOMAINS)
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
            "cifar-10": "cifar10", "cifar_10": "cifar10", "mnist_subset": "mnist-subset"}


FOLDER_SIZE = 64                               # folder:PATH images are 64×64 unless asked
_SIZE_SUFFIX = re.compile(r"\?size=([^/?]*)$")


def split_folder(name: str, size: int = FOLDER_SIZE) -> tuple[str, int]:
    """`folder:PATH?size=N` as (PATH with `~` and $VARIABLES expanded, N); without the suffix,
    N is `size`.  The suffix is how the command line picks the image size (`--data` takes one
    name), and being part of the name, a resume checks it with the folder."""
    rest = name[len("folder:"):]
    m = _SIZE_SUFFIX.search(rest)
    if m:
        if not m.group(1).isdigit() or int(m.group(1)) < 1:
            raise ValueError(f"{name}: size must be a positive whole number of pixels, "
                             f"e.g. folder:PATH?size=32")
        rest, size = rest[:m.start()], int(m.group(1))
    return os.path.expandvars(os.path.expanduser(rest)), size


def canonical_name(name: str) -> str:
    """The dataset name as a run records it: `folder:PATH` with `~` and $VARIABLES expanded
    (no shell expands them after `folder:`) and `?size=N` kept unless N is the default 64;
    every other name as given."""
    if isinstance(name, str) and name.startswith("folder:"):
        path, size = split_folder(name)
        return f"folder:{path}" + (f"?size={size}" if size != FOLDER_SIZE else "")
    if isinstance(name, str) and name.startswith(("paired:", "unpaired:")):
        prefix, path = name.split(":", 1)
        return f"{prefix}:{os.path.expandvars(os.path.expanduser(path))}"
    return name


def load(name: str, root: str | None = None, *, split: str = "train", size: int | None = None,
         n: int = DEFAULT_N, seed: int = 0, download: bool = True,
         direction: str = "AtoB") -> Dataset:
    """The dataset called `name` (see the module docstring for the names).

    root      folder holding the dataset's files (`--data-dir`); None: the cache / download
              (`~` and $VARIABLES are expanded here and in folder:PATH)
    split     "train" or "test" (mnist, fashion-mnist, cifar10)
    size      output side for folder:PATH images (default 64; a `?size=N` at the end of the
              name wins) and for paired:/unpaired: images (default 32)
    direction "BtoA" swaps the domains of a two-domain dataset
    n, seed   number of points and generator seed for the 2-D toys
    download  False: never touch the network
    """
    if not isinstance(name, str):
        raise TypeError(f"a dataset name must be a str, got {type(name).__name__}")
    if name.startswith("folder:"):
        path, size = split_folder(name, FOLDER_SIZE if size is None else size)
        if not path:
            raise ValueError("folder:PATH needs a path, e.g. folder:data/anime-faces")
        ds = load_folder(path, size=size)
        ds.name = canonical_name(name)             # the name as given: with its ?size=N
        return ds
    if is_two_domain(name):
        return load_two_domain(canonical_name(name), size=size, direction=direction)
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if root is not None:
        root = os.path.expandvars(os.path.expanduser(root))
    if key in ("mnist", "fashion-mnist"):
        return load_idx_dataset(key, root, split=split, download=download)
    if key == "mnist-subset":
        return load_subset()
    if key == "cifar10":
        return load_cifar10(root, split=split, download=download)
    if key in TOYS:
        return TOYS[key](n=n, seed=seed)
    if key in TWO_DOMAINS:
        return load_two_domains(key)
    close = difflib.get_close_matches(key, [k for k in NAMES if not k.endswith(":PATH")], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ValueError(f"unknown dataset {name!r}{hint}; known: {', '.join(NAMES)}")


__all__ = ["load", "Dataset", "DataLoader", "batches", "NAMES", "DataFormatError", "ChecksumError",
           "DataNotFoundError", "DownloadError", "cache_dir", "read_idx", "write_idx", "to_float",
           "load_idx_dataset", "load_subset", "load_cifar10", "load_folder", "load_two_domain", "TASKS",
           "data_options", "is_two_domain"]
