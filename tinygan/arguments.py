"""Command-line arguments that more than one `tinygan` command takes.

Here, below both `cli.py` and `latent.py` (whose interpolate and arithmetic commands take them
too), so that neither has to import the other's upper layer to share them.
"""
from __future__ import annotations

import os


def path(text: str) -> str:
    """A path argument with `~` and $VARIABLES expanded: a shell leaves them alone inside
    `folder:~/faces`, `--out=~/runs` or quotes."""
    return os.path.expandvars(os.path.expanduser(text))


def add_checkpoint_argument(p) -> None:
    """The run a sampling command reads (sample, eval, interpolate, arithmetic)."""
    p.add_argument("checkpoint", type=path, help="a run directory or its checkpoints/last.npz")


def add_device_argument(p, what: str = "the generator") -> None:
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help=f"where to run {what} (default cpu)")
