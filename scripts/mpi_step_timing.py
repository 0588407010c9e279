"""A `dcgan` training step on 2 MPI ranks × 1 thread against 1 process × 2 threads.

    python scripts/mpi_step_timing.py                      # 3 rounds of 10 steps, batch 64
    python scripts/mpi_step_timing.py --rounds 5 --sync-bn

Each round runs the two set-ups one after the other (so a machine's drift hits both), each in
fresh processes with its thread counts fixed before NumPy/Numba/MKL load: one process with 2
threads and the whole batch; `mpiexec -n 2` (the venv's, beside this Python) with 1 thread a
rank and half the batch each.  A step is what `tinygan train` does: the variant's
`train_step` inside `distributed.data_parallel()` (the gradient Allreduce of every optimizer
step), then the one small Allreduce of the logged losses; synthetic images, 3 warm-up steps.

Printed, medians over the steps of each round: ms per step, and on the ranks the ms per step
spent inside MPI's Allreduce (which includes waiting for the slower rank: on one machine the
transfer itself is a shared-memory copy), the calls and the bytes per step.  Needs the `mpi`
extra.  The figures in docs/performance.md came from this script.

Then the scaling model of docs/performance.md for 8, 64 and 512 ranks on 10, 25 and 100 Gb/s,
from the measured bytes and calls per step and the measured compute time per sample (the
1-process step over its batch).  `--model-only --ms-per-sample X` prints the model alone, for
a compute time measured elsewhere (a quiet machine, a GPU).  The model: a ring Allreduce of S
bytes over N ranks takes 2(N-1)/N · S / bandwidth + 2(N-1) · α (α: one message's latency,
10 µs by default, `--latency-us`), once per call; the step does not overlap the reduction
with the backward, so its time is compute + reduction.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


class TimedComm:
    """COMM_WORLD, with its Allreduce calls timed and their bytes counted."""

    def __init__(self, comm):
        self.comm, self.seconds, self.calls, self.bytes = comm, 0.0, 0, 0

    def Allreduce(self, send, recv=None, *args, **kwargs):
        buf = recv if recv is not None else send
        t0 = time.perf_counter()
        out = self.comm.Allreduce(send, recv, *args, **kwargs)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.bytes += getattr(buf, "nbytes", 0)
        return out

    def __getattr__(self, name):
        return getattr(self.comm, name)


def worker(args) -> None:
    import numpy as np

    from tinygan import backend, distributed
    from tinygan.autograd import Tensor
    from tinygan.gans import get
    from tinygan.train import replicated_arrays

    world, rank = distributed.size(), distributed.rank()
    timed = TimedComm(distributed._world()) if world > 1 else None
    if timed is not None:
        distributed._comm = timed
    backend.manual_seed(0)
    model = get("dcgan")((1, 28, 28), config={"sync_bn": args.sync_bn})
    distributed.broadcast_(replicated_arrays(model))
    x = np.random.default_rng(rank).uniform(-1, 1, (args.batch_size // world, 1, 28, 28))
    x = Tensor(x.astype(np.float32))
    steps, comm_s, calls, nbytes = [], [], [], []
    for i in range(args.warmup + args.steps):
        before = (timed.seconds, timed.calls, timed.bytes) if timed else (0.0, 0, 0)
        t0 = time.perf_counter()
        with distributed.data_parallel():
            losses = model.train_step(x)
        distributed.allreduce_scalars(losses)
        t1 = time.perf_counter()
        if i >= args.warmup:
            steps.append(t1 - t0)
            if timed:
                comm_s.append(timed.seconds - before[0])
                calls.append(timed.calls - before[1])
                nbytes.append(timed.bytes - before[2])
    params = {k: v for k, v in model.parameter_counts().items()}
    alone = {}
    if timed:
        # The same Allreduce with the ranks lined up by a barrier first: the transfer itself,
        # without the wait for a slower rank that the in-step figure includes.
        for name, n in (("grads", sum(params.values())), ("small", 256)):
            buf, times = np.zeros(n, np.float32), []
            for _ in range(10):
                distributed.barrier()
                t0 = time.perf_counter()
                distributed.allreduce_([buf])
                times.append(time.perf_counter() - t0)
            alone[name] = 1e3 * statistics.median(times)
    print("RESULT " + json.dumps({
        "rank": rank, "world": world, "step_ms": 1e3 * statistics.median(steps),
        "allreduce_ms": 1e3 * statistics.median(comm_s) if comm_s else 0.0,
        "allreduce_calls": statistics.median(calls) if calls else 0,
        "allreduce_bytes": statistics.median(nbytes) if nbytes else 0,
        "alone_ms": alone, "params": params}), flush=True)


def run(ranks: int, threads: int, args) -> list[dict]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, **{v: str(threads) for v in THREAD_VARIABLES})
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps), "--warmup",
           str(args.warmup), "--batch-size", str(args.batch_size)]
    cmd += ["--sync-bn"] if args.sync_bn else []
    if ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        if not mpiexec.exists():
            raise SystemExit(f"mpi_step_timing: no {mpiexec}: pip install -e \".[mpi]\"")
        cmd = [str(mpiexec), "-n", str(ranks)] + cmd
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise SystemExit(f"mpi_step_timing: {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return sorted((json.loads(line[len("RESULT "):]) for line in r.stdout.splitlines()
                   if line.startswith("RESULT ")), key=lambda d: d["rank"])


def scaling_model(nbytes: float, calls: float, ms_per_sample: float, latency_us: float) -> str:
    """The model's tables (markdown): per-rank batch 64 (the global batch grows with N), and a
    fixed global batch of 64 split N ways (while N <= 64)."""
    out = []
    for title, per_rank in (("each rank a batch of 64 (global batch 64·N)", lambda n: 64),
                            ("one global batch of 64, split over the ranks", lambda n: 64 / n)):
        out += [f"\n{title}: ms per step = compute + Allreduce (efficiency = compute / step)\n",
                "| ranks | per-rank batch | compute ms | 10 Gb/s | 25 Gb/s | 100 Gb/s |",
                "| --- | --- | --- | --- | --- | --- |"]
        for n in (8, 64, 512):
            b = per_rank(n)
            if b < 1:
                out.append(f"| {n} | < 1 | — | — | — | — |")
                continue
            compute = b * ms_per_sample
            cells = []
            for gbit in (10, 25, 100):
                reduce_ms = (2 * (n - 1) / n * nbytes / (gbit * 1e9 / 8) * 1e3
                             + calls * 2 * (n - 1) * latency_us * 1e-3)
                cells.append(f"{reduce_ms:.1f} ms, {100 * compute / (compute + reduce_ms):.0f} %")
            out.append(f"| {n} | {b:g} | {compute:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch (default 64)")
    p.add_argument("--sync-bn", action="store_true", help="dcgan with sync_bn=true")
    p.add_argument("--latency-us", type=float, default=10.0,
                   help="the model's latency of one message, µs (default 10)")
    p.add_argument("--model-only", action="store_true",
                   help="print the scaling model alone, for --ms-per-sample (no measurement)")
    p.add_argument("--ms-per-sample", type=float, default=None,
                   help="compute time per sample for the model (default: the measured one)")
    p.add_argument("--param-floats", type=float, default=1_728_128,
                   help="with --model-only: floats reduced per step (default: dcgan on MNIST)")
    p.add_argument("--calls", type=float, default=3,
                   help="with --model-only: Allreduce calls per step (default 3: D, G, losses)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.model_only:
        if args.ms_per_sample is None:
            p.error("--model-only needs --ms-per-sample")
        print(scaling_model(4 * args.param_floats, args.calls, args.ms_per_sample,
                            args.latency_us))
        return 0
    single, multi = [], []
    for k in range(args.rounds):
        single.append(run(1, 2, args)[0])
        multi.append(run(2, 1, args))
        print(f"round {k + 1}: 1 process × 2 threads {single[-1]['step_ms']:.0f} ms/step; "
              f"2 ranks × 1 thread {multi[-1][0]['step_ms']:.0f} ms/step, in Allreduce "
              + " / ".join(f"{m['allreduce_ms']:.1f}" for m in multi[-1]) + " ms (rank 0 / 1)",
              flush=True)
    params = single[0]["params"]
    m0 = multi[0][0]
    print(f"\ndcgan on 1×28×28 (32×32 nets), global batch {args.batch_size}"
          f"{', sync_bn' if args.sync_bn else ''}; parameters "
          + ", ".join(f"{k} {v:,}" for k, v in params.items())
          + f" ({sum(params.values()):,} floats, {4 * sum(params.values()) / 1e6:.1f} MB)")
    print(f"Allreduce per step: {m0['allreduce_calls']:.0f} calls, "
          f"{m0['allreduce_bytes'] / 1e6:.2f} MB summed over the calls\n")

    def spread(values, digits=1):
        m, lo, hi = statistics.median(values), min(values), max(values)
        return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"
    print("| set-up | ms per step, median of rounds (range) | ms per step in Allreduce |")
    print("| --- | --- | --- |")
    print(f"| 1 process × 2 threads, batch {args.batch_size} | "
          f"{spread([s['step_ms'] for s in single])} | — |")
    print(f"| 2 ranks × 1 thread, {args.batch_size // 2} each | "
          f"{spread([m[0]['step_ms'] for m in multi])} | rank 0: "
          f"{spread([m[0]['allreduce_ms'] for m in multi])}; rank 1: "
          f"{spread([m[1]['allreduce_ms'] for m in multi])} |")
    print(f"\nthe Allreduce alone, ranks lined up by a barrier (rank 0, median of 10, rounds' "
          f"range): all gradients ({4 * sum(params.values()) / 1e6:.1f} MB) "
          f"{spread([m[0]['alone_ms']['grads'] for m in multi])} ms; 1 KB "
          f"{spread([m[0]['alone_ms']['small'] for m in multi], 3)} ms")
    per_sample = (args.ms_per_sample if args.ms_per_sample is not None else
                  statistics.median(s["step_ms"] for s in single) / args.batch_size)
    print(f"\nscaling model, compute {per_sample:.2f} ms per sample, latency {args.latency_us:g} µs:")
    print(scaling_model(m0["allreduce_bytes"], m0["allreduce_calls"], per_sample, args.latency_us))
    return 0


if __name__ == "__main__":
    sys.exit(main())
