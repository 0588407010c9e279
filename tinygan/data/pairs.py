"""Two-domain datasets for the image-to-image variants (pix2pix, CycleGAN, SRGAN).

A two-domain dataset is an ordinary `Dataset` whose uint8 images are (N, 2C, H, W): channels
[:C] are domain A, [C:] domain B.  So the DataLoader, its resume state and batch shuffling work
unchanged, and a variant splits a batch with `a, b = x[:, :C], x[:, C:]`.

    paired     row i is a true pair (A_i, B_i)                                  (pix2pix, SRGAN)
    unpaired   A and B each shuffled by a fixed seed and stacked row by row, the shorter domain's
               rows repeated up to the longer's length: the pairing means nothing   (CycleGAN)

A smaller than B (mnist_x4's 8×8 inputs of 32×32 digits) is stored at B's size, each pixel
repeated scale×scale times (nearest neighbour); `a[..., ::scale, ::scale]` recovers it exactly.

Attributes beside the Dataset's own: `domains` (names of A and B), `paired`, `channels` (C),
`scale`, `test` (the held-out two-domain Dataset, or None), `labels` (the digit of each A row;
None for user folders) and `labels_b` (the digit of each B row when unpaired, else None).

Offline tasks, built at load time from the 5,000 shipped digits (`digit_domains`), deterministic,
all 32×32 (digits padded from 28×28), the same 500 digits held out (held_out(5000, 500, seed=0)):

    edges2mnist   paired     A = outline(digit), B = digit
    mnist2thick   unpaired   A = digits of one half of the 4,500 training digits, B = thicken(the
                             other half) (halves(train, seed=0)); held out as pairs (digit,
                             thicken(digit)), for evaluation only
    mnist_x4      paired     A = downscale(digit, 4), 8×8 stored ×4; B = digit; scale 4

User folders (`size`: each domain's images are centre-cropped and resized to size×size, Lanczos;
greyscale kept when every image is, else RGB):

    paired:PATH     each image holds A and B side by side (A left), the public pix2pix datasets'
                    format (facades, maps, edges2shoes); PATH/train and PATH/val when present,
                    else every image under PATH trains and nothing is held out
    unpaired:PATH   CycleGAN's format: PATH/trainA and PATH/trainB, optionally testA and testB

`direction="BtoA"` swaps the domains (A becomes the target).  Unlike `folder:PATH`, which skips
unreadable files, a corrupt file here is an error: one bad half would silently unpair the rest.
"""
from __future__ import annotations

import os

import numpy as np

from . import digit_domains as dd
from .dataset import DataFormatError, DataNotFoundError, Dataset
from .folder import GRAY_MODES, list_images

TASKS = ("edges2mnist", "mnist2thick", "mnist_x4")
PREFIXES = ("paired:", "unpaired:")
DIRECTIONS = ("AtoB", "BtoA")
TASK_SIZE, N_TEST, SPLIT_SEED = 32, 500, 0
USER_SIZE = 32                   # side of paired:/unpaired: images unless size= says otherwise


def is_two_domain(name) -> bool:
    """Whether `name` is one of the tasks or a paired:/unpaired: folder."""
    return isinstance(name, str) and (name in TASKS or name.startswith(PREFIXES))


def data_options(config: dict) -> dict:
    """The keyword arguments of `tinygan.data.load` that a variant's config holds (`size`,
    `direction`): how a run's two-domain data is loaded again, the same way, on resume and
    by `tinygan eval` / `translate`."""
    return {k: config[k] for k in ("size", "direction") if k in config}


def two_domain(name: str, a: np.ndarray, b: np.ndarray, *, paired: bool, domains: tuple,
               labels=None, labels_b=None, scale: int = 1, test: Dataset | None = None,
               source: str = "") -> Dataset:
    """A two-domain Dataset from A's and B's uint8 images (N, C, H, W), the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name}: domains A {a.shape} and B {b.shape} differ in shape")
    ds = Dataset(name, np.concatenate([a, b], axis=1), labels=labels, source=source)
    ds.domains, ds.paired, ds.channels, ds.scale = tuple(domains), paired, a.shape[1], scale
    ds.test, ds.labels_b = test, None if labels_b is None else np.asarray(labels_b, np.int64)
    return ds


def swap(ds: Dataset) -> Dataset:
    """The same data with A and B exchanged (direction BtoA)."""
    if ds.scale != 1:
        raise ValueError(f"{ds.name}: direction=BtoA is not defined: its A images are "
                         f"{ds.scale}× smaller than B's (only AtoB)")
    c = ds.channels
    # Paired rows share one digit; unpaired rows carry each domain's own labels.
    labels_a, labels_b = (ds.labels, None) if ds.paired else (ds.labels_b, ds.labels)
    return two_domain(ds.name, ds.data[:, c:], ds.data[:, :c], paired=ds.paired,
                      domains=ds.domains[::-1], labels=labels_a, labels_b=labels_b,
                      source=ds.source, test=None if ds.test is None else swap(ds.test))


def unpaired_rows(a: np.ndarray, b: np.ndarray, seed: int = SPLIT_SEED):
    """Row orders of A and B, each shuffled by `seed`, the shorter one repeated (cycled) up to
    the longer's length: (indices into a, indices into b)."""
    rng = np.random.default_rng(seed)
    ia, ib = rng.permutation(len(a)), rng.permutation(len(b))
    n = max(len(ia), len(ib))
    return np.resize(ia, n), np.resize(ib, n)


# -- the offline tasks -------------------------------------------------------------------------
def _digits():
    from .mnist import load_subset
    ds = load_subset()
    return dd.pad_to(ds.data, TASK_SIZE), ds.labels


def load_task(name: str) -> Dataset:
    digits, labels = _digits()
    train, test = dd.held_out(len(digits), N_TEST, seed=SPLIT_SEED)
    src = "shipped subset (5,000 digits)"
    if name == "edges2mnist":
        def make(i):
            return two_domain(name, dd.outline(digits[i]), digits[i], paired=True,
                              domains=("edges", "digits"), labels=labels[i], source=src)
    elif name == "mnist_x4":
        def make(i):
            small = dd.downscale(digits[i], 4)
            big = small.repeat(4, axis=2).repeat(4, axis=3)
            return two_domain(name, big, digits[i], paired=True, domains=("8x8 digits", "digits"),
                              labels=labels[i], scale=4, source=src)
    elif name == "mnist2thick":
        ds_test = two_domain(name, digits[test], dd.thicken(digits[test]), paired=True,
                             domains=("digits", "thick digits"), labels=labels[test], source=src)
        half_a, half_b = dd.halves(train, seed=SPLIT_SEED)
        ra, rb = unpaired_rows(half_a, half_b)
        ia, ib = half_a[ra], half_b[rb]
        return two_domain(name, digits[ia], dd.thicken(digits[ib]), paired=False,
                          domains=("digits", "thick digits"), labels=labels[ia],
                          labels_b=labels[ib], test=ds_test, source=src)
    else:
        raise ValueError(f"unknown two-domain task {name!r}; known: {', '.join(TASKS)}")
    ds = make(train)
    ds.test = make(test)
    return ds


# -- user folders ------------------------------------------------------------------------------
def _read(files: list, size: int, halves: bool, where: str):
    """uint8 images (N, C, size, size) of `files` — or, with `halves`, (A, B) from the left and
    right halves of each — in one colour mode for all.  Any unreadable file is an error."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    bad = (UnidentifiedImageError, OSError, ValueError, SyntaxError)

    def header(f):               # Image.open reads only the header: this pass is cheap
        try:
            with Image.open(f) as img:
                return img.mode
        except bad as e:
            raise DataFormatError(f"{where}: cannot read image {f} ({e})") from None

    mode = "L" if all(header(f) in GRAY_MODES for f in files) else "RGB"
    lanczos = getattr(Image, "Resampling", Image).LANCZOS

    def fit(img):
        a = np.asarray(ImageOps.fit(img, (size, size), method=lanczos), np.uint8)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)

    out_a, out_b = [], []
    for f in files:
        try:
            with Image.open(f) as img:
                img = ImageOps.exif_transpose(img).convert(mode)
        except bad as e:         # truncated or damaged pixel data
            raise DataFormatError(f"{where}: cannot read image {f} ({e})") from None
        if not halves:
            out_a.append(fit(img))
            continue
        w, h = img.size
        if w < 2:
            raise DataFormatError(f"{where}: {f} is {w} pixel wide: a paired image holds A and B "
                                  f"side by side")
        out_a.append(fit(img.crop((0, 0, w // 2, h))))
        out_b.append(fit(img.crop((w - w // 2, 0, w, h))))
    a = np.stack(out_a)
    return (a, np.stack(out_b)) if halves else a


def _images_in(folder: str, where: str) -> list:
    files = list_images(folder)
    if not files:
        raise DataNotFoundError(f"{where}: no images (.jpg, .png, .bmp, .webp) in {folder}")
    return files


def _same_channels(a: np.ndarray, b: np.ndarray) -> tuple:
    """Greyscale and colour domains: the greyscale one repeated to 3 channels."""
    if a.shape[1] != b.shape[1]:
        a, b = (np.repeat(a, 3, axis=1) if a.shape[1] == 1 else a,
                np.repeat(b, 3, axis=1) if b.shape[1] == 1 else b)
    return a, b


def load_paired(path: str, size: int = USER_SIZE, name: str | None = None) -> Dataset:
    name = name or f"paired:{path}"
    if not os.path.isdir(path):
        raise DataNotFoundError(f"{name}: no such folder {os.path.abspath(path)}")
    train_dir, val_dir = os.path.join(path, "train"), os.path.join(path, "val")
    has_train = os.path.isdir(train_dir)
    src = os.path.abspath(path)

    def make(folder):
        a, b = _read(_images_in(folder, name), size, True, name)
        return two_domain(name, a, b, paired=True, domains=("A", "B"), source=src)

    ds = make(train_dir if has_train else path)
    if has_train and os.path.isdir(val_dir):
        ds.test = make(val_dir)
        if ds.test.channels != ds.channels:
            raise DataFormatError(f"{name}: train/ and val/ images differ in colour "
                                  f"(grey and RGB); convert one of them")
    return ds


def load_unpaired(path: str, size: int = USER_SIZE, name: str | None = None) -> Dataset:
    name = name or f"unpaired:{path}"
    if not os.path.isdir(path):
        raise DataNotFoundError(f"{name}: no such folder {os.path.abspath(path)}")
    src = os.path.abspath(path)

    def folders(split):
        dirs = [os.path.join(path, split + d) for d in "AB"]
        present = [os.path.isdir(d) for d in dirs]
        if present[0] != present[1]:
            have, lack = (split + "A", split + "B") if present[0] else (split + "B", split + "A")
            raise DataNotFoundError(f"{name}: found {have}/ but no {lack}/ in {src}: "
                                    f"unpaired data needs both domains")
        return dirs if present[0] else None

    train = folders("train")
    if train is None:
        raise DataNotFoundError(f"{name}: expected folders trainA/ and trainB/ in {src}")
    a, b = _same_channels(*(_read(_images_in(d, name), size, False, name) for d in train))
    ra, rb = unpaired_rows(a, b)
    ds = two_domain(name, a[ra], b[rb], paired=False, domains=("A", "B"), source=src)
    test = folders("test")
    if test is not None:
        ta, tb = _same_channels(*(_read(_images_in(d, name), size, False, name) for d in test))
        ra, rb = unpaired_rows(ta, tb)
        if ta.shape[1] != a.shape[1]:
            raise DataFormatError(f"{name}: train and test images differ in colour (grey and RGB)")
        ds.test = two_domain(name, ta[ra], tb[rb], paired=False, domains=("A", "B"), source=src)
    return ds


def load_two_domain(name: str, size: int | None = None, direction: str = "AtoB") -> Dataset:
    """The task or folder `name` (see the module docstring); `size` applies to folders only
    (the tasks are 32×32), `direction` "BtoA" swaps the domains."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be AtoB or BtoA, got {direction!r}")
    if name in TASKS:
        if size not in (None, TASK_SIZE):
            raise ValueError(f"{name} is {TASK_SIZE}×{TASK_SIZE}: size={size} applies only to "
                             f"paired:PATH and unpaired:PATH folders")
        ds = load_task(name)
    else:
        prefix, path = name.split(":", 1)
        path = os.path.expandvars(os.path.expanduser(path))
        if not path:
            raise ValueError(f"{prefix}:PATH needs a path, e.g. {prefix}:data/facades")
        size = USER_SIZE if size is None else size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"{name}: size must be a positive int, got {size!r}")
        loader = load_paired if prefix == "paired" else load_unpaired
        ds = loader(path, size, name=f"{prefix}:{path}")
    return swap(ds) if direction == "BtoA" else ds


__all__ = ["TASKS", "load_two_domain", "load_task", "load_paired", "load_unpaired", "two_domain",
           "is_two_domain", "data_options", "unpaired_rows"]
