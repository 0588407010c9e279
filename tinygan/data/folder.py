"""`folder:PATH`: every JPG/PNG (also BMP, WebP) under PATH, as size×size images in [-1, 1].

How the DCGAN anime-faces and celebrity-faces runs are fed. Each image is
  1. turned upright by its EXIF orientation tag (phone photos),
  2. converted to one colour mode for the whole folder: "L" (C=1) when every image is
     greyscale, else "RGB" (C=3); alpha is dropped and palettes are expanded,
  3. centre-cropped to the largest square and resized to size×size with a Lanczos filter
     (`ImageOps.fit`: the usual Resize + CenterCrop, so mixed sizes and aspect ratios are fine).
Files are walked recursively in sorted order, so the sample order is the same on every machine.
A file that Pillow cannot open or decode (not an image, truncated) is skipped with one warning
that counts them and names the first three; a folder with no readable image is a DataFormatError.
There are no labels (sub-folder names are not taken as classes).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .dataset import DataFormatError, DataNotFoundError, Dataset

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}


def list_images(folder: str) -> list[str]:
    """Image files under `folder`, recursively, in sorted (reproducible) order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found += [os.path.join(dirpath, f) for f in sorted(filenames)
                  if f.lower().endswith(EXTENSIONS) and not f.startswith(".")]
    return found


def load_folder(path: str, size: int = 64, mode: str = "auto", progress: bool | None = None) -> Dataset:
    """All images under `path` as uint8 (N, C, size, size), served as float32 in [-1, 1].

    mode: "auto" (greyscale "L" if all images are, else "RGB"), "RGB" or "L".
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = f"folder:{path}"
    path = os.path.expanduser(path)      # `--data folder:~/faces`: no shell expands a ~ there
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"{name}: size must be a positive int, got {size!r}")
    if mode not in ("auto", "RGB", "L"):
        raise ValueError(f"{name}: mode must be 'auto', 'RGB' or 'L', got {mode!r}")
    if not os.path.isdir(path):
        raise DataNotFoundError(f"{name}: no such folder {os.path.abspath(path)}")
    files = list_images(path)
    if not files:
        raise DataNotFoundError(f"{name}: no images ({', '.join(EXTENSIONS)}) found in "
                                f"{os.path.abspath(path)} or its sub-folders")

    skipped = {}                 # file -> why: unreadable images are left out, with one warning

    def header(f):               # Image.open reads only the header: this pass is cheap
        try:
            with Image.open(f) as img:
                return img.mode
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            skipped[f] = e
            return None

    modes = {f: header(f) for f in files}
    files = [f for f in files if modes[f] is not None]
    if mode == "auto":
        mode = "L" if set(modes.values()) - {None} <= GRAY_MODES else "RGB"

    lanczos = getattr(Image, "Resampling", Image).LANCZOS
    channels = 1 if mode == "L" else 3
    out = np.empty((len(files), channels, size, size), np.uint8)
    from tqdm import tqdm
    show = (len(files) > 2000) if progress is None else progress
    n = 0
    for f in tqdm(files, desc=f"reading {path}", unit="img", disable=not show):
        try:
            with Image.open(f) as img:
                img = ImageOps.exif_transpose(img).convert(mode)
                img = ImageOps.fit(img, (size, size), method=lanczos)
        except (OSError, ValueError, SyntaxError) as e:     # truncated or damaged pixel data
            skipped[f] = e
            continue
        a = np.asarray(img, np.uint8)
        out[n] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)     # HWC → CHW
        n += 1
    if n == 0:
        first = next(iter(skipped))
        raise DataFormatError(f"{name}: none of the {len(skipped)} image files in "
                              f"{os.path.abspath(path)} could be read (e.g. {first}: "
                              f"{skipped[first]})")
    if skipped:
        names = [os.path.relpath(f, path) for f in sorted(skipped)]
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        warnings.warn(f"{name}: skipped {len(names)} unreadable image file"
                      f"{'s' if len(names) > 1 else ''} of {len(names) + n} "
                      f"({', '.join(names[:3])}{more}); training on the other {n}",
                      stacklevel=3)
    return Dataset(name, out[:n], source=os.path.abspath(path))
