"""The `Dataset` every loader returns, and the errors the loaders raise.

Notation: N samples; images are (N, C, H, W), 2-D toys are (N, 2).

Images are *stored* as uint8 (a quarter of the memory: 63k anime faces at 64×64 are 0.8 GB
as bytes, 3 GB as float32) and *served* as float32 in [-1, 1], the range of a tanh
generator: a byte v becomes v / 127.5 - 1, so 0 → -1 and 255 → 1 exactly.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np


class DataFormatError(ValueError):
    """A data file is truncated, corrupt, or not in the format its name promises."""


class ChecksumError(DataFormatError):
    """A file's checksum differs from the published one (a damaged or wrong download)."""


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for and could not be downloaded."""


def to_float(u8: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [-1, 1] (v / 127.5 - 1), computed in place on one copy."""
    x = u8.astype(np.float32)
    x /= 127.5
    x -= 1.0
    return x


class Dataset:
    """Samples (+ labels) of one dataset.

    data          uint8 (N, C, H, W) images, or float32 (N, D) points for the 2-D toys
    x / images    float32 samples: images scaled to [-1, 1] (made on first use, then kept)
    labels        int64 (N,) class of each sample, or None
    shape, kind   data shape; "image" or "toy"
    name          the string `tinygan.data.load` accepts to load this dataset again
    num_classes, classes      number and names of the classes (None without labels)
    mode_centers, mode_std    (K, 2) centres and the std of the toy Gaussian mixtures
    source        where the samples came from (a path, a URL, "shipped subset", "generated")
    """

    def __init__(self, name: str, data: np.ndarray, labels: np.ndarray | None = None,
                 classes: tuple | None = None, num_classes: int | None = None,
                 mode_centers: np.ndarray | None = None, mode_std: float | None = None,
                 source: str = ""):
        if data.ndim == 4:
            if data.dtype != np.uint8:
                raise TypeError(f"Dataset {name}: images must be stored as uint8, got {data.dtype}")
        elif data.ndim == 2:
            data = np.asarray(data, np.float32)
        else:
            raise ValueError(f"Dataset {name}: data must be (N, C, H, W) images or (N, D) points, "
                             f"got shape {data.shape}")
        if labels is not None:
            labels = np.asarray(labels, np.int64)
            if labels.shape != (len(data),):
                raise ValueError(f"Dataset {name}: labels {labels.shape} do not match "
                                 f"{len(data)} samples {data.shape}")
            if num_classes is None:
                num_classes = len(classes) if classes else int(labels.max()) + 1 if len(labels) else 0
        self.name = name
        self.data = data
        self.labels = labels
        self.classes = tuple(classes) if classes else None
        self.num_classes = num_classes if labels is not None else None
        self.mode_centers = None if mode_centers is None else np.asarray(mode_centers, np.float32)
        self.mode_std = mode_std
        self.source = source

    @property
    def kind(self) -> str:
        return "image" if self.data.ndim == 4 else "toy"

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def __len__(self) -> int:
        return len(self.data)

    @cached_property
    def x(self) -> np.ndarray:
        """All samples as float32 (images in [-1, 1]); N·C·H·W·4 bytes, made once on first use."""
        return to_float(self.data) if self.kind == "image" else self.data

    @property
    def images(self) -> np.ndarray:
        return self.x

    def batch(self, idx) -> tuple[np.ndarray, np.ndarray | None]:
        """(x, y) for the sample indices `idx`: float32 samples and int64 labels (or None)."""
        x = to_float(self.data[idx]) if self.kind == "image" else self.data[idx]
        return x, None if self.labels is None else self.labels[idx]

    def __repr__(self) -> str:
        extra = f", {self.num_classes} classes" if self.labels is not None else ""
        return f"Dataset({self.name!r}, shape={self.shape}{extra}, source={self.source!r})"
