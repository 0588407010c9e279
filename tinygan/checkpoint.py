"""Checkpoints: one `.npz` of arrays (loaded with allow_pickle=False) + one JSON of metadata.

A training state is a nested dict (nets' state dicts, optimizer states, RNG states, step…).
`save` splits it: every ndarray leaf goes into the npz under its slash-joined path, every
other leaf (numbers, strings, lists) into the JSON "tree", with the array leaves replaced by
a marker.  Both files are written to a temporary name and renamed, so a crash mid-write
never leaves a half checkpoint where the last good one was.

`build_from_checkpoint` turns a training checkpoint back into its variant (`gans.get` by the
saved name, then the saved weights): the one function here that knows the GANs, so this
module sits above `gans/`, and metrics, latent, train and cli use it from there.
"""
from __future__ import annotations

import json
import os

import numpy as np

FORMAT_VERSION = 1
_ARRAY = "__array__"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt, or from another model."""


def _flatten(tree, prefix, arrays):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            k = str(k)
            if "/" in k:
                raise ValueError(f"checkpoint keys may not contain '/': {k!r}")
            out[k] = _flatten(v, f"{prefix}{k}/", arrays)
        return out
    if isinstance(tree, (list, tuple)) and any(isinstance(v, (dict, np.ndarray)) for v in tree):
        return {"__list__": [_flatten(v, f"{prefix}{i}/", arrays) for i, v in enumerate(tree)]}
    if isinstance(tree, np.ndarray):
        key = prefix.rstrip("/")
        arrays[key] = tree
        return {_ARRAY: key}
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _unflatten(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY}:
            return arrays[tree[_ARRAY]]
        if set(tree) == {"__list__"}:
            return [_unflatten(v, arrays) for v in tree["__list__"]]
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    return tree


def meta_path(npz_path: str) -> str:
    return npz_path[:-4] + ".json" if npz_path.endswith(".npz") else npz_path + ".json"


def save(path: str, state: dict, meta: dict | None = None) -> str:
    """Write `state` (nested dict with ndarray leaves) and `meta` atomically to path(.npz/.json)."""
    if not path.endswith(".npz"):
        raise ValueError(f"checkpoint path must end with .npz, got {path!r}")
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(state, "", arrays)
    doc = {"format": FORMAT_VERSION, "meta": meta or {}, "tree": tree}
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp_npz, tmp_json = f"{path}.tmp{os.getpid()}.npz", f"{meta_path(path)}.tmp{os.getpid()}"
    np.savez(tmp_npz, **arrays)
    with open(tmp_json, "w") as f:
        json.dump(doc, f, indent=1)
    # The npz is renamed first, the JSON (which names the arrays) last: a crash in between
    # leaves the previous JSON, whose keys the new npz still satisfies for the same model.
    os.replace(tmp_npz, path)
    os.replace(tmp_json, meta_path(path))
    return path


def load(path: str) -> tuple[dict, dict]:
    """Read a checkpoint: returns (state, meta).  Raises CheckpointError with the reason."""
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoints", "last.npz")
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with open(meta_path(path)) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint metadata {meta_path(path)} is missing") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint metadata {meta_path(path)} is corrupt: {e}") from None
    if doc.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unknown checkpoint format {doc.get('format')!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:      # zipfile.BadZipFile, ValueError, EOFError, OSError…
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {e}") from None
    try:
        state = _unflatten(doc["tree"], arrays)
    except KeyError as e:
        raise CheckpointError(f"checkpoint {path} lacks array {e} named by its metadata") from None
    return state, doc.get("meta", {})


def build_from_checkpoint(path: str, device: str = "cpu"):
    """(variant, meta, state): the variant a training checkpoint (a file or a run directory)
    was saved from, rebuilt with its weights; the state is the whole saved training state."""
    from .gans import get     # here, not at the top: save and load need no variant
    state, meta = load(path)
    if "variant" not in meta:
        raise CheckpointError(f"{path} is not a tinygan training checkpoint")
    try:
        cls = get(meta["variant"])
        variant = cls(tuple(meta["data_shape"]), num_classes=meta.get("num_classes"),
                      config=cls.saved_config(meta.get("config")), device=device,
                      data=meta.get("data"))
        variant.load_state_dict(state["variant"])
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path} does not fit variant {meta['variant']}: {e}") from None
    return variant, meta, state
