"""The checks that need two processes, run by tests/test_distributed.py as

    mpiexec -n 2 python tests/mpi_worker.py MODE [ARGS...]

MODE collectives   allreduce_/broadcast_ (one fused message per call) and synchronised batch
                   norm on 2 ranks against plain batch norm on the whole batch in one process:
                   values, first and second derivatives, running statistics
MODE train ...     `tinygan train` once per argument list (lists separated by `--then`), with
                   every checkpoint write recorded in the run folder as writer_rank<R>
MODE fail ...      `tinygan train ...` with rank 1's third step raising an unexpected error
MODE sigint ...    `tinygan train ...` with rank 1 sent SIGINT (Ctrl-C) during its third step

A failed check raises AssertionError naming the rank; the exit status is the CLI's.
"""
from __future__ import annotations

import os
import signal
import sys

import numpy as np

import tinygan
from tinygan import checkpoint, cli, distributed
from tinygan import functional as F
from tinygan import nn
from tinygan.autograd import grad

RANK, SIZE = distributed.rank(), distributed.size()


def check(ok, what: str) -> None:
    if not ok:
        raise AssertionError(f"rank {RANK}: {what}")


def close(a, b, what: str, tol: float = 1e-9) -> None:
    a, b = (np.asarray(getattr(v, "data", v), dtype=np.float64) for v in (a, b))
    err = float(np.abs(a - b).max()) if a.size else 0.0
    check(a.shape == b.shape and err <= tol * (1 + float(np.abs(b).max())),
          f"{what}: shapes {a.shape}/{b.shape}, max difference {err:.3g}")


class CountingComm:
    """COMM_WORLD, counting the Allreduce calls made through it."""

    def __init__(self, comm):
        self.comm, self.allreduces = comm, 0

    def Allreduce(self, *args, **kwargs):
        self.allreduces += 1
        return self.comm.Allreduce(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.comm, name)


def collectives() -> int:
    check(SIZE == 2, f"expected 2 ranks, got {SIZE}")
    counting = CountingComm(distributed._world())
    distributed._comm = counting
    a = np.full((2, 3), RANK + 1.0, np.float32)
    c = np.full(5, 10.0 * (RANK + 1), np.float32)
    distributed.allreduce_([a, c])
    check(counting.allreduces == 1, f"{counting.allreduces} Allreduce calls for 2 float32 arrays")
    close(a, np.full((2, 3), 1.5), "averaged a")
    close(c, np.full(5, 15.0), "averaged c")
    b = np.arange(4.0).reshape(2, 2) * (RANK + 1)
    distributed.allreduce_([b], average=False)
    close(b, np.arange(4.0).reshape(2, 2) * 3, "summed b")
    d = np.full(4, float(RANK))
    distributed.broadcast_([d], root=1)
    close(d, np.ones(4), "broadcast from rank 1")
    distributed._comm = counting.comm

    sync_batch_norm_against_one_process()
    sync_batch_norm_module_against_one_process()
    print(f"rank {RANK}: collectives ok")
    return 0


def sync_batch_norm_against_one_process() -> None:
    """Each rank holds half the batch; y, the gradients and a second-order gradient must be
    those of batch norm on the whole batch (computed here too, on every rank)."""
    rng = np.random.default_rng(0)                      # the same numbers on both ranks
    X = rng.standard_normal((8, 3, 2, 2)) * 2 + 3
    W, B, GY = rng.standard_normal(3) + 1, rng.standard_normal(3), rng.standard_normal(X.shape)
    part = distributed.shard(len(X))

    def leaves(x):
        return (tinygan.tensor(x, requires_grad=True),
                tinygan.tensor(W, requires_grad=True), tinygan.tensor(B, requires_grad=True))

    # one process, the whole batch: H = ‖∂L/∂x‖² + ‖∂L/∂w‖², L = <gy, y>
    x, w, b = leaves(X)
    rm, rv = np.zeros(3), np.ones(3)
    y = F.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)
    gx, gw, gb = grad((y * tinygan.tensor(GY)).sum(), [x, w, b], create_graph=True)
    hx, hw = grad((gx * gx).sum() + (gw * gw).sum(), [x, w])

    # two ranks: rank r's share of L and H, the shares adding up to the totals above
    x2, w2, b2 = leaves(X[part])
    rm2, rv2 = np.zeros(3), np.ones(3)
    y2 = F.sync_batch_norm(x2, rm2, rv2, w2, b2, 0.1, 1e-5)
    gx2, gw2, gb2 = grad((y2 * tinygan.tensor(GY[part])).sum(), [x2, w2, b2], create_graph=True)
    gw_total = F.all_reduce_sum(gw2)
    hx2, hw2 = grad((gx2 * gx2).sum() + (gw_total * gw_total).sum() * (1.0 / SIZE), [x2, w2])

    close(y2, y.data[part], "sync_batch_norm output")
    close(rm2, rm, "running mean")
    close(rv2, rv, "running var")
    close(gx2, gx.data[part], "d/dx")
    close(gw_total, gw, "d/dw (summed over the ranks)")
    close(F.all_reduce_sum(gb2), gb, "d/db (summed over the ranks)")
    close(hx2, hx.data[part], "second order d/dx")
    close(F.all_reduce_sum(hw2), hw, "second order d/dw (summed over the ranks)")


def sync_batch_norm_module_against_one_process() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    part = distributed.shard(len(X))
    ref = nn.BatchNormAct2d(4, "leaky_relu", 0.2)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNormAct2d(4, "leaky_relu", 0.2))
    check(isinstance(sync, nn.SyncBatchNorm), "convert_sync_batchnorm kept a BatchNormAct2d")
    for _ in range(2):
        y_ref, y = ref(tinygan.tensor(X)), sync(tinygan.tensor(X[part]))
    close(y, y_ref.data[part], "SyncBatchNorm(leaky_relu) output", 1e-5)
    for k, v in ref.state_dict().items():
        close(sync.state_dict()[k], v, f"SyncBatchNorm {k}", 1e-5)


def record_checkpoint_writers() -> None:
    """Every checkpoint.save call leaves writer_rank<R> in the run folder."""
    save = checkpoint.save

    def recording_save(path, *args, **kwargs):
        run = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        with open(os.path.join(run, f"writer_rank{RANK}"), "a") as f:
            f.write(path + "\n")
        return save(path, *args, **kwargs)
    checkpoint.save = recording_save


def on_rank1_third_step(variant: str, action) -> None:
    from tinygan.gans import get
    cls = get(variant)
    step = cls._device_step

    def planted(self, x, y=None):
        if RANK == 1 and self.steps_done == 2:
            action()
        return step(self, x, y)
    cls._device_step = planted


def main(argv) -> int:
    mode, rest = argv[0], argv[1:]
    if mode == "collectives":
        return collectives()
    if mode == "train":
        record_checkpoint_writers()
        runs, current = [], []
        for word in rest:
            if word == "--then":
                runs.append(current)
                current = []
            else:
                current.append(word)
        codes = [cli.main(run) for run in runs + [current]]
        return max(codes)
    if mode == "fail":
        def fail():
            raise ArithmeticError("planted failure")
        on_rank1_third_step(rest[1], fail)
        return cli.main(rest)
    if mode == "sigint":
        on_rank1_third_step(rest[1], lambda: os.kill(os.getpid(), signal.SIGINT))
        return cli.main(rest)
    raise SystemExit(f"mpi_worker: unknown mode {mode!r}")


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except Exception as e:           # a failed check must not leave the other rank waiting
        print(f"mpi_worker: {type(e).__name__}: {e}", file=sys.stderr)
        distributed.abort(1)
    sys.exit(code)
