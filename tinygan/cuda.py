"""`tinygan.cuda`: the few `torch.cuda` functions that ported scripts call.

    device = tinygan.device("cuda" if tinygan.cuda.is_available() else "cpu")
"""
from __future__ import annotations

from . import backend

__all__ = ["is_available", "device_count"]


def is_available() -> bool:
    """True when CuPy is installed and a CUDA device really works (`tinygan.cuda_available`)."""
    return backend.cuda_available()


def device_count() -> int:
    """1 with a working GPU, else 0: tinygan drives one GPU (`cuda:0`)."""
    return 1 if backend.cuda_available() else 0
