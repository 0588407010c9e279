"""The replay pool of Shrivastava et al. 2017, as CycleGAN uses it (Zhu et al. 2017, §4).

D is updated on a history of generated images rather than only the latest G's, which damps
the oscillation of the two players: each fake of a batch is stored, and with probability ½
D sees, in its place, one stored earlier (that slot then holds the new fake).  Until the pool
is full every fake is stored and passed through unchanged.

The random draws (a coin and a slot per fake) come from the library's seeded CPU generator,
whose state every checkpoint saves; the pool's images are saved with the variant (`state_dict`), so a resumed run makes
the same choices as one that never stopped.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from ..backend import get_array_module, get_rng
from ..distributed import per_sample


class ImagePool:
    def __init__(self, size: int = 50):
        if size < 0:
            raise ValueError(f"ImagePool: size must be >= 0, got {size}")
        self.size = int(size)
        self.images = None          # (count, C, H, W) array on the fakes' device

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    def query(self, fakes: Tensor) -> Tensor:
        """The batch D trains on in place of `fakes` (detached: D's update never reaches G)."""
        data = fakes.data
        if self.size == 0:
            return Tensor(data)
        xp = get_array_module(data)
        rng = get_rng("cpu")
        # A coin and a slot for every fake, drawn for the batch at once through per_sample:
        # under data parallelism each rank then takes its slice of the global batch's draws.
        coins, slots = per_sample(len(data), lambda m: (rng.random(m),
                                                        rng.integers(0, self.size, m)))
        out = []
        for img, coin, slot in zip(data, coins, slots):
            if len(self) < self.size:
                stored = img[None].copy()
                self.images = stored if self.images is None else xp.concatenate([self.images, stored])
                out.append(img)
            elif coin < 0.5:
                out.append(self.images[int(slot)].copy())
                self.images[int(slot)] = img
            else:
                out.append(img)
        return Tensor(xp.stack(out))

    def state_dict(self) -> dict:
        from ..backend import as_numpy
        return {"size": self.size,
                "images": np.zeros((0,), np.float32) if self.images is None else as_numpy(self.images)}

    def load_state_dict(self, state: dict, device: str = "cpu") -> None:
        from ..backend import to_device
        if int(state["size"]) != self.size:
            raise ValueError(f"ImagePool: checkpoint holds a pool of {state['size']} images, "
                             f"this one takes {self.size}")
        images = np.asarray(state["images"])
        self.images = None if images.size == 0 else to_device(images, device)
