"""Endless shuffled minibatches with a three-number state, for bit-exact resume.

Epoch e visits the N samples in the order

    order_e = numpy.random.default_rng([seed, e]).permutation(N)

and the loader's whole state is (seed, epoch, position): `position` counts the samples of
order_e already served. Because each epoch's order is a pure function of (seed, e) — no RNG
stream is carried from one epoch to the next — saving those three integers (`state_dict()`,
JSON-friendly) and restoring them (`load_state_dict()`) continues exactly where the saved
loader was, and the same seed gives the same batches on any machine (PCG64 is portable).

With drop_last=True (the default, as GAN training wants equal batch sizes for batch norm)
each epoch serves N // B full batches and skips the last N % B samples of its order, which
are different samples every epoch; with drop_last=False the last batch of an epoch is short.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset


class DataLoader:
    """`next(loader)` → (x, y): float32 samples (B, ...) and int64 labels (B,) or None.

    Iterates forever, epoch after epoch; take one epoch with
    `itertools.islice(loader, loader.steps_per_epoch)`. `loader.epoch` and `loader.position`
    say where it is.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, drop_last: bool = True,
                 shuffle: bool = True):
        n = len(dataset)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if n == 0:
            raise ValueError(f"DataLoader: dataset {dataset.name} is empty")
        if drop_last and batch_size > n:
            raise ValueError(f"DataLoader: batch_size {batch_size} > the {n} samples of "
                             f"{dataset.name}; with drop_last=True no batch could be made")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._cached = (None, None)          # ((seed, epoch), its order)

    @property
    def steps_per_epoch(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of `epoch`, in the order they are served."""
        if self._cached[0] != (self.seed, epoch):
            n = len(self.dataset)
            perm = (np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle
                    else np.arange(n))
            self._cached = ((self.seed, epoch), perm)
        return self._cached[1]

    def __iter__(self):
        return self

    def __next__(self):
        n = len(self.dataset)
        end = self.position + self.batch_size
        if self.position >= n or (self.drop_last and end > n):
            self.epoch, self.position, end = self.epoch + 1, 0, self.batch_size
        idx = self.order(self.epoch)[self.position:end]
        self.position = min(end, n)
        return self.dataset.batch(idx)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position,
                "batch_size": self.batch_size, "num_samples": len(self.dataset),
                "shuffle": self.shuffle, "drop_last": self.drop_last}

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`; the dataset must have the same number of samples.

        The batch size and drop_last stay this loader's own (a resume with another batch
        size is allowed; it just cannot reproduce the uninterrupted run)."""
        missing = {"seed", "epoch", "position"} - set(state)
        if missing:
            raise ValueError(f"DataLoader.load_state_dict: state lacks {', '.join(sorted(missing))}")
        n = state.get("num_samples", len(self.dataset))
        if int(n) != len(self.dataset):
            raise ValueError(f"DataLoader.load_state_dict: the state is for {int(n)} samples but "
                             f"{self.dataset.name} has {len(self.dataset)}")
        if bool(state.get("shuffle", self.shuffle)) != self.shuffle:
            raise ValueError("DataLoader.load_state_dict: the state was saved with shuffle="
                             f"{state['shuffle']}, this loader has shuffle={self.shuffle}")
        position = int(state["position"])
        if not 0 <= position <= len(self.dataset) or int(state["epoch"]) < 0:
            raise ValueError(f"DataLoader.load_state_dict: bad epoch/position "
                             f"{state['epoch']}/{state['position']} for {len(self.dataset)} samples")
        self.seed, self.epoch, self.position = int(state["seed"]), int(state["epoch"]), position

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset.name}, batch_size={self.batch_size}, seed={self.seed}, "
                f"epoch={self.epoch}, position={self.position})")


def batches(dataset: Dataset, batch_size: int, seed: int = 0, drop_last: bool = True) -> DataLoader:
    """Endless shuffled minibatches of `dataset` (a `DataLoader`; see its state for resume)."""
    return DataLoader(dataset, batch_size, seed=seed, drop_last=drop_last)
