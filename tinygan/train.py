"""One generic training loop for every variant.

    run = train("dcgan", data="mnist", steps=2000, out="runs/dcgan")

writes into `out`:
    checkpoints/last.npz + last.json   the whole state (nets, optimizers, RNG, data order, step)
    samples/step_NNNNNN.png           a grid from a fixed noise batch (a scatter for 2-D toys)
    log.jsonl                         one JSON line of losses per step
    loss.png                          the loss curves

Nothing is lost when a run stops early: Ctrl-C finishes the current step, saves a checkpoint
and exits; a NaN/inf loss stops the run with a clear message and leaves the last good
checkpoint in place; `resume=True` continues bit-for-bit where the checkpoint left off, to the
step count the run was started with (kept in the checkpoint's metadata) unless `steps` is given.

A second `train(..., out=DIR)` into a folder that already holds a run raises `RunExists`
rather than overwrite it: pass `resume=True` to continue that run, or another `out=`.

Under `mpiexec -n N` the same call trains data-parallel (docs/distributed.md): `batch_size`
is the global batch, and each rank takes its N-th of every batch of the one seeded order;
rank 0's weights and optimizer state are broadcast at the start (and after a resume); every
optimizer step averages the gradients over the ranks first; the logged losses are averaged
over the ranks too, and a stop (Ctrl-C on any rank, a NaN anywhere) is agreed on in that same
message, so every rank leaves at the same step.  Rank 0 alone writes the folder: the
checkpoint has the single-process format, and a run resumes with any N.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time

import numpy as np

from . import backend, checkpoint, data as datasets, distributed, viz
from .autograd import Tensor
from .checkpoint import build_from_checkpoint  # noqa: F401  (tinygan.train.build_from_checkpoint)
from .gans import get as get_variant

DEFAULT_STEPS = {"toy": 3000, "image": 2000}
DEFAULT_BATCH_SIZE = 64


def default_steps(cls, kind: str) -> int:
    return cls.default_steps.get(kind, DEFAULT_STEPS[kind])


def default_batch_size(cls, kind: str) -> int:
    return cls.default_batch_size.get(kind, DEFAULT_BATCH_SIZE)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


class RunExists(RuntimeError):
    """The output directory already holds a run and resume was not asked for (`.out`: the folder)."""

    def __init__(self, out: str, message: str | None = None):
        super().__init__(message or f"{out} already holds a run (checkpoints/last.npz): pass "
                         f"resume=True to continue it, or another out= to start a new run elsewhere")
        self.out = out


def _paths(out: str) -> dict:
    return {"ckpt": os.path.join(out, "checkpoints", "last.npz"),
            "samples": os.path.join(out, "samples"),
            "log": os.path.join(out, "log.jsonl"),
            "plot": os.path.join(out, "loss.png")}


def _read_log(path: str, upto: int | None = None) -> list[dict]:
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    row = json.loads(line)
                    if upto is None or row["step"] <= upto:
                        rows.append(row)
    return rows


PLOTTED = ("wasserstein", "gp", "drift", "k", "M")   # besides loss*, hist_*, energy_*; not res, alpha


def plot_log(log_path: str, plot_path: str, title: str = "") -> str:
    """loss.png from log.jsonl: every loss*, hist_* (historical averaging), energy_* (EBGAN),
    wasserstein, gp, drift, k and M (BEGAN) series, from step 1, raw and smoothed, one panel
    per scale (`viz.plot_curves`)."""
    rows = _read_log(log_path)
    series: dict[str, list] = {}
    for r in rows:
        for k, v in r.items():
            if k.startswith(("loss", "hist_", "energy_")) or k in PLOTTED:
                y = float(v) if isinstance(v, (int, float)) else float("nan")
                series.setdefault(k, []).append((r["step"], y))
    return viz.plot_curves(series, plot_path, title=title)


def save_samples(variant, path: str, dataset=None, n: int = 64, write: bool = True) -> str:
    """The grid (or 2-D scatter) of `variant`'s samples from its fixed noise, at `path`.
    `write=False` draws the samples and writes nothing: what the ranks other than 0 do in a
    multi-process run, for a toy's scatter draws fresh noise, and every rank's generator must
    make the same draws to stay in step with the others.  A variant with its own grid
    (`sample_grid`, e.g. input | output | target of a translator) draws that instead."""
    own = None if dataset is None else variant.sample_grid(dataset)
    if own is not None:
        images, nrow = own
        return viz.save_image_grid(images, path, nrow=nrow) if write else path
    z = variant.fixed_noise(n)
    samples = variant.sample(n, z=z, y=variant.fixed_labels(n))
    if variant.is_toy:
        samples = samples if n >= 500 else variant.sample(1000)
        if not write:
            return path
        return viz.scatter_2d(samples, path,
                              reference=None if dataset is None else dataset.x[:2000],
                              centers=getattr(dataset, "mode_centers", None))
    if not write:
        return path
    return viz.save_image_grid(samples, path, nrow=10 if variant.num_classes else None)


def replicated_arrays(model) -> list:
    """Every array that must be equal on all ranks of a data-parallel run: the nets'
    parameters and buffers and the optimizers' per-parameter state (moments)."""
    arrays = [t.data for m in model.nets().values()
              for t in (*m.parameters(), *m.buffers()) if t is not None]
    for opt in model.optimizers().values():
        for i in sorted(opt.state):
            arrays += [v for k, v in sorted(opt.state[i].items()) if hasattr(v, "shape")]
    return arrays


def latest_grid(out: str) -> str | None:
    """The newest samples/step_NNNNNN.png of the run in `out`, or None."""
    folder = _paths(out)["samples"]
    names = sorted(f for f in os.listdir(folder) if f.startswith("step_") and f.endswith(".png")) \
        if os.path.isdir(folder) else []
    return os.path.join(folder, names[-1]) if names else None


def train(variant: str = "dcgan", data: str | None = None, steps: int | None = None,
          batch_size: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
          resume: bool = False, sample_every: int | None = None,
          checkpoint_every: int | None = None, data_dir: str | None = None,
          options: dict | None = None, progress: bool = True) -> dict:
    """Train `variant` on `data`; returns a summary dict: `steps` (done), `target_steps`,
    `start` (the step it resumed from; 0 for a new run), `seconds`, `last` losses, `interrupted`,
    and the paths `out`, `checkpoint`, `samples` (the newest grid) and `plot`.

    `resume=True` continues the run in `out` to `steps`, by default the run's own step count;
    a run that already got there returns at once, with `steps == start` and nothing changed.
    An `out` that holds a run raises `RunExists` unless `resume=True`."""
    cls = get_variant(variant)
    cls.check_config(options)        # a bad option fails here, before any data or folder
    backend.check_device(device)
    world, root = distributed.size(), distributed.is_root()
    distributed.select_device(device)        # one GPU per rank, before anything touches one
    if device == "cuda" and not backend.cuda_available():
        raise RuntimeError("--device cuda: no working CUDA device (CuPy missing, or no GPU/driver)")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    out = out or os.path.join("runs", variant)
    paths = _paths(out)
    if os.path.exists(paths["ckpt"]) and not resume:
        raise RunExists(out)
    if resume and not os.path.exists(paths["ckpt"]):
        raise FileNotFoundError(f"resume: no checkpoint at {paths['ckpt']}")

    if resume:
        _, meta = checkpoint.load(paths["ckpt"])
        data = meta["data"] if data is None else datasets.canonical_name(data)
        if data != meta["data"] or variant != meta["variant"]:
            raise ValueError(f"resume: {out} holds a {meta['variant']} run on {meta['data']}, "
                             f"not {variant} on {data}")
        seed, batch_size = meta["seed"], meta["batch_size"]
        options = cls.saved_config(meta.get("config"))
        steps = meta.get("steps") if steps is None else steps    # the run's own length
        done = int(meta["step"])
        if steps is not None and steps < done:
            raise ValueError(f"resume: {out} is already at step {done}, past the {steps} steps "
                             f"asked for; to train it further, ask for more than {done}")
        if steps == done:                    # finished: nothing to train, nothing to rewrite
            rows = _read_log(paths["log"], upto=done)
            last = {k: v for k, v in rows[-1].items() if k != "step"} if rows else {}
            return _summary(variant, meta["data"], out, done, steps, done, 0.0, last, False)
    # Two-domain data is read at the size and direction the variant's config names.
    data_opts = datasets.data_options(cls.check_config(options)) if datasets.is_two_domain(
        data or cls.default_data) else {}
    if not root:                   # rank 0 first: one download, then the others read it
        distributed.barrier()
    dataset = datasets.load(data or cls.default_data or "mnist", root=data_dir, **data_opts)
    if root and world > 1:
        distributed.barrier()
    kind = dataset.kind
    steps = default_steps(cls, kind) if steps is None else steps
    batch_size = default_batch_size(cls, kind) if batch_size is None else batch_size
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    if world > 1:
        distributed.shard(batch_size)        # ValueError unless the ranks split it evenly
    sample_every = sample_every or max(1, steps // 10)
    checkpoint_every = checkpoint_every or max(1, min(steps // 4, 1000))

    backend.manual_seed(seed)
    model = cls(dataset.shape[1:], num_classes=dataset.num_classes if cls.needs_labels else None,
                config=options, device=device)
    model.total_steps = steps                # for a learning-rate schedule over the run
    loader = datasets.DataLoader(dataset, batch_size=batch_size, seed=seed)
    start = 0
    if resume:
        state, meta = checkpoint.load(paths["ckpt"])
        model.load_state_dict(state["variant"])
        backend.set_rng_state(state["rng"])
        loader.load_state_dict(state["loader"])
        start = int(state["step"])
        if root:
            rows = _read_log(paths["log"], upto=start)    # drop lines logged after the checkpoint
            with open(paths["log"], "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
    elif root and os.path.exists(paths["log"]):
        os.remove(paths["log"])
    # Every rank starts from rank 0's state (the same seed builds the same nets, the same
    # checkpoint loads alike; this makes it so whatever a rank's libraries did differently).
    distributed.broadcast_(replicated_arrays(model))

    meta = {"variant": variant, "data": dataset.name, "data_shape": list(dataset.shape[1:]),
            "num_classes": dataset.num_classes if cls.needs_labels else None,
            "config": model.config, "seed": seed, "batch_size": batch_size, "steps": steps}
    if hasattr(dataset, "domains"):          # what `tinygan translate` must feed the generator
        meta.update(domains=list(dataset.domains), scale=dataset.scale, channels=dataset.channels)

    def save_checkpoint(step):
        if not root:                        # one writer: never two ranks on one file
            return
        checkpoint.save(paths["ckpt"], {"variant": model.state_dict(), "rng": backend.rng_state(),
                                        "loader": loader.state_dict(), "step": step},
                        dict(meta, step=step, saved=time.strftime("%Y-%m-%d %H:%M:%S")))

    stop = {"flag": False}

    def on_sigint(signum, frame):           # finish the step in flight, then save and leave
        stop["flag"] = True

    old_handler = None
    try:
        old_handler = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:                       # not the main thread: no Ctrl-C handling
        pass

    from tqdm import tqdm
    # With n_critic > 1 a step is one critic update and G moves every n_critic-th step: the
    # bar counts critic steps and shows the generator steps (the papers' "iterations") too.
    n_critic = int(model.config.get("n_critic", 1))
    bar = tqdm(range(start, steps), initial=start, total=steps, disable=not (progress and root),
               desc=variant if n_critic <= 1 else f"{variant} critic steps", dynamic_ncols=True)
    last, t0, interrupted = {}, time.time(), False
    if root:
        os.makedirs(paths["samples"], exist_ok=True)
    try:
        with open(paths["log"] if root else os.devnull, "a") as log:
            for step in bar:
                x, y = next(loader)
                if world > 1:                 # this rank's part of the global batch
                    part = distributed.shard(len(x))
                    x, y = x[part], None if y is None else y[part]
                xt = Tensor(backend.to_device(x, device))
                yt = None if y is None else Tensor(backend.to_device(y, device))
                # The step's losses come back as device scalars; the NaN check, the log line
                # and the bar need floats: one transfer for all of them, once per step.
                with distributed.data_parallel():
                    losses = model.train_step(xt, yt)   # floats: one transfer per step
                if world > 1:
                    # Means over the global batch, and whether any rank was asked to stop,
                    # in one small message: every rank then leaves at the same step.
                    agreed = distributed.allreduce_scalars({**losses, "_stop": float(stop["flag"])})
                    stop["flag"] = agreed.pop("_stop") > 0
                    losses = agreed
                bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
                if bad:
                    raise TrainingDiverged(
                        f"{variant} diverged at step {step + 1} "
                        f"({', '.join(f'{k}={v}' for k, v in bad.items())}); the last good "
                        f"checkpoint is kept in {paths['ckpt']}")
                model.steps_done += 1
                last.update(losses)
                log.write(json.dumps({"step": step + 1, **losses}) + "\n")
                done = step + 1
                bar.set_postfix(progress_fields(last, done, n_critic), refresh=False)
                if done % sample_every == 0 or done == steps:
                    log.flush()
                    save_samples(model, os.path.join(paths["samples"], f"step_{done:06d}.png"),
                                 dataset, write=root)
                    if root:
                        plot_log(paths["log"], paths["plot"], title=f"{variant} on {dataset.name}")
                if done % checkpoint_every == 0 or done == steps:
                    save_checkpoint(done)
                if stop["flag"]:
                    save_checkpoint(done)
                    interrupted = True
                    break
    finally:
        bar.close()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    return _summary(variant, dataset.name, out, model.steps_done, steps, start,
                    time.time() - t0, last, interrupted)


def progress_fields(losses: dict, done: int, n_critic: int = 1) -> dict:
    """The progress bar's fields after `done` steps: the generator steps when they differ from
    the steps (n_critic > 1), then the latest losses."""
    fields = {"generator_steps": done // n_critic} if n_critic > 1 else {}
    return {**fields, **{k: f"{v:.3f}" for k, v in losses.items()}}


def _summary(variant, data, out, done, target, start, seconds, last, interrupted) -> dict:
    paths = _paths(out)
    return {"variant": variant, "data": data, "out": out, "steps": done, "target_steps": target,
            "start": start, "seconds": round(seconds, 2), "last": last,
            "interrupted": interrupted, "checkpoint": paths["ckpt"], "samples": latest_grid(out),
            "plot": paths["plot"] if os.path.exists(paths["plot"]) else None}
