"""Data-parallel communication between processes: MPI on CPUs, NCCL between GPUs.

    mpiexec -n 4 tinygan train dcgan          # 4 processes ("ranks"), one global batch of 64

Each rank holds a full copy of the nets and works on its slice of the batch; before every
optimizer step the ranks average their gradients, so that every copy takes the same step
(docs/distributed.md).  This module is the communicator those steps use:

    rank(), size()              this process's number and how many there are
    allreduce_(arrays)          sum over the ranks, in place (average=True: divided by size())
    broadcast_(arrays, root=0)  rank root's values, in place, on every rank
    barrier()                   wait for every rank

A process started without a launcher is rank 0 of 1 and every call returns at once: mpi4py
is imported only when the environment says a launcher started us (MPICH's and Intel MPI's
PMI_SIZE, Open MPI's OMPI_COMM_WORLD_SIZE, a PMIx launcher's PMIX_RANK), so a single process
needs neither mpi4py nor an MPI library.

One message per call.  The arrays of a call are copied into ONE contiguous buffer per dtype
(in practice one: every gradient is float32), reduced with ONE buffer-protocol `Allreduce`
(upper-case mpi4py: the bytes go straight to MPI, never through pickle), and copied back.  A
step that sent each of DCGAN's gradient arrays on its own would pay the network's latency 18
times (D's 8 arrays, G's 10); one buffer per optimizer step pays it twice, and lets MPI pick
its large-message algorithm.

GPUs (`device="cuda"`): one GPU per rank, the rank's number among the ranks of its node
choosing it; arrays that live on the GPU are reduced by NCCL (`cupy.cuda.nccl`), whose
communicator is set up once from a unique id that rank 0 makes and MPI broadcasts.  MPI still
starts the processes and carries everything else.  NOTE: the NCCL path is written to CuPy's
documented API but has not been run on GPUs by tinygan's tests (CI has none): see
docs/distributed.md.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np

from . import backend

# Set by the launchers that start us: MPICH/Intel MPI (hydra), Open MPI, PMIx (Slurm's srun).
LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")

_comm = None          # mpi4py's COMM_WORLD once set up; None: a single process
_checked = False
_nccl = None          # the NCCL communicator of a GPU run, made by select_device("cuda")
_buffers: dict = {}   # (array module, dtype) -> the fused buffer, grown as needed


def launched() -> bool:
    """True when a launcher (mpiexec, srun) started this process."""
    return any(v in os.environ for v in LAUNCHER_VARIABLES)


def _world():
    """COMM_WORLD, set up on first use, or None in a single process."""
    global _comm, _checked
    if not _checked:
        _checked = True
        if launched():
            try:
                from mpi4py import MPI
            except ImportError:
                n = next(os.environ[v] for v in LAUNCHER_VARIABLES if v in os.environ)
                raise RuntimeError(
                    f"started by an MPI launcher (process count {n}) but mpi4py is not "
                    f"installed: pip install -e \".[mpi]\"; without it every process would "
                    f"train the whole run alone, into the same folder") from None
            _comm = MPI.COMM_WORLD
    return _comm


def rank() -> int:
    comm = _world()
    return 0 if comm is None else comm.Get_rank()


def size() -> int:
    comm = _world()
    return 1 if comm is None else comm.Get_size()


def is_root() -> bool:
    """True on the one rank that writes files and prints (rank 0)."""
    return rank() == 0


def local_rank_and_size() -> tuple[int, int]:
    """(this rank's number among the ranks on its node, how many ranks share the node)."""
    comm = _world()
    if comm is None:
        return 0, 1
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        return node.Get_rank(), node.Get_size()
    finally:
        node.Free()


def barrier() -> None:
    comm = _world()
    if comm is not None:
        comm.Barrier()


def abort(code: int = 1) -> None:
    """Stop every rank now (MPI_Abort): what a rank that failed must do, for the others may
    be waiting in a collective call for it and would otherwise wait forever."""
    comm = _world()
    if comm is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(0.5)        # let the launcher forward what was just written before the kill
        comm.Abort(code)


def _groups(arrays) -> dict:
    """{(array module, dtype): [arrays]}: what one fused buffer can hold."""
    groups: dict = {}
    for a in arrays:
        xp = backend.get_array_module(a)
        groups.setdefault((xp, np.dtype(a.dtype)), []).append(a)
    return groups


def _buffer(xp, dtype, n: int):
    key = (xp, dtype)
    buf = _buffers.get(key)
    if buf is None or buf.size < n:
        buf = _buffers[key] = xp.empty(n, dtype=dtype)
    return buf[:n]


def _fused(arrays, reduce) -> None:
    """Copy `arrays` into one buffer per dtype, run `reduce(buffer)` on it, copy back."""
    for (xp, dtype), group in _groups(arrays).items():
        n = sum(int(a.size) for a in group)
        buf, offset = _buffer(xp, dtype, n), 0
        for a in group:
            buf[offset:offset + a.size] = a.reshape(-1)
            offset += a.size
        reduce(buf)
        offset = 0
        for a in group:
            a[...] = buf[offset:offset + a.size].reshape(a.shape)
            offset += a.size


def allreduce_(arrays, average: bool = True):
    """Replace each array (NumPy or CuPy, written in place) by its sum over the ranks, or
    with `average` by the mean.  Every rank must call it with arrays of the same shapes, in
    the same order.  Returns `arrays`."""
    arrays = list(arrays)
    if average and any(np.dtype(a.dtype).kind != "f" for a in arrays):
        raise TypeError("allreduce_(average=True) takes floating-point arrays; "
                        "pass average=False to sum integers")
    comm = _world()
    if comm is None or comm.Get_size() == 1 or not arrays:
        return arrays
    n = comm.Get_size()

    def reduce(buf):
        if backend.get_array_module(buf) is np:
            from mpi4py import MPI
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        else:
            _nccl_allreduce(buf)
        if average:
            buf /= n
    _fused(arrays, reduce)
    return arrays


def broadcast_(arrays, root: int = 0):
    """Overwrite each array, in place, with rank `root`'s.  Returns `arrays`."""
    arrays = list(arrays)
    comm = _world()
    if comm is None or comm.Get_size() == 1 or not arrays:
        return arrays

    def bcast(buf):
        if backend.get_array_module(buf) is np:
            comm.Bcast(buf, root=root)
        else:
            _nccl_broadcast(buf, root)
    _fused(arrays, bcast)
    return arrays


def allreduce_scalars(values: dict, average: bool = True) -> dict:
    """{name: float} summed (or averaged) over the ranks, in one message of float64s: the
    step's logged losses, which are means over each rank's slice of the batch."""
    if size() == 1 or not values:
        return dict(values)
    buf = np.array([float(v) for v in values.values()], dtype=np.float64)
    allreduce_([buf], average=average)
    return dict(zip(values, buf.tolist()))


# -- data parallelism -------------------------------------------------------------------------
_data_parallel = False


@contextlib.contextmanager
def data_parallel(on: bool = True):
    """Inside, with more than one rank, training runs data-parallel: every optimizer step
    first averages the gradients over the ranks (`optim.Optimizer.step`), and the per-sample
    random draws of a step (`per_sample`) are split as the batch is.  `tinygan train` wraps
    each training step in it."""
    global _data_parallel
    before, _data_parallel = _data_parallel, bool(on)
    try:
        yield
    finally:
        _data_parallel = before


def data_parallel_active() -> bool:
    return _data_parallel and size() > 1


def batch_mean(*values) -> tuple:
    """Copies of `values` (per-rank batch means, arrays), averaged over the ranks inside a
    data-parallel step (one Allreduce for all), as they are: the means over the global batch.
    For state a variant updates from its losses (BEGAN's k), which must move alike everywhere."""
    values = tuple(v.copy() for v in values)
    if data_parallel_active():
        allreduce_(values)
    return values


def shard(n_global: int) -> slice:
    """This rank's part of a global batch of `n_global` samples: contiguous, equal parts
    (rank r holds samples r*B/N .. (r+1)*B/N - 1).  ValueError unless N divides it."""
    r, n = rank(), size()
    if n_global % n:
        raise ValueError(f"the batch size {n_global} does not split evenly over {n} processes: "
                         f"give a --batch-size that is a multiple of {n}")
    b = n_global // n
    return slice(r * b, (r + 1) * b)


def per_sample(n: int, draw):
    """`draw(n)` (an array or Tensor, or a tuple of them) for this rank's n samples: in a
    data-parallel step every rank draws the numbers of the whole global batch,
    `draw(n * size())`, and keeps its own slice.

    Every rank's generator is seeded alike and makes the same draws, so the generators stay
    in step, each sample gets the number one process with the whole batch would have given
    it, and no two ranks share noise (which would shrink the batch of fakes to one rank's).
    The price is size() times the draws, tiny beside a step at tinygan's scales; a counter-
    based generator keyed by the sample's index would remove it."""
    if not data_parallel_active():
        return draw(n)
    out, part = draw(n * size()), shard(n * size())
    return tuple(a[part] for a in out) if isinstance(out, tuple) else out[part]


# -- GPUs: one per rank, NCCL between them ----------------------------------------------------
def _gpu_count() -> int:
    import cupy
    return int(cupy.cuda.runtime.getDeviceCount())


def select_device(device: str) -> None:
    """Before anything touches the GPU: give this rank its own GPU (the rank's number on its
    node) and set up NCCL.  RuntimeError when the node has fewer GPUs than ranks.  A no-op
    on the CPU and in a single process."""
    global _nccl
    if backend.check_device(device) != "cuda" or size() == 1 or _nccl is not None:
        return
    local, local_n = local_rank_and_size()
    try:
        count = _gpu_count()
    except Exception as e:                  # no CuPy, no driver
        raise RuntimeError(f"--device cuda: rank {rank()} cannot use CUDA ({e})") from None
    if count < local_n:
        raise RuntimeError(f"--device cuda: {local_n} processes on this node but only {count} "
                           f"GPU{'s' if count != 1 else ''}: start at most {count} per node "
                           f"(one GPU per process)")
    _nccl = _nccl_setup(local)


def _nccl_setup(local_rank: int):
    # Untested on GPUs by the test suite (see the module docstring).
    import cupy
    from cupy.cuda import nccl
    cupy.cuda.Device(local_rank).use()
    try:                                    # the numba.cuda kernels: the same GPU
        from numba import cuda as numba_cuda
        numba_cuda.select_device(local_rank)
    except ImportError:
        pass
    comm = _world()
    uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
    uid = comm.bcast(uid, root=0)           # once per run: a pickled id is fine here
    return nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())


def _nccl_type(dtype):
    from cupy.cuda import nccl
    types = {np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
             np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int64): nccl.NCCL_INT64,
             np.dtype(np.int32): nccl.NCCL_INT32}
    if np.dtype(dtype) not in types:
        raise TypeError(f"NCCL cannot reduce {dtype} arrays")
    return types[np.dtype(dtype)]


def _nccl_allreduce(buf) -> None:
    import cupy
    from cupy.cuda import nccl
    if _nccl is None:
        raise RuntimeError("GPU arrays in a multi-process run before select_device('cuda')")
    stream = cupy.cuda.get_current_stream()
    _nccl.allReduce(buf.data.ptr, buf.data.ptr, buf.size, _nccl_type(buf.dtype), nccl.NCCL_SUM,
                    stream.ptr)


def _nccl_broadcast(buf, root: int) -> None:
    import cupy
    if _nccl is None:
        raise RuntimeError("GPU arrays in a multi-process run before select_device('cuda')")
    stream = cupy.cuda.get_current_stream()
    _nccl.bcast(buf.data.ptr, buf.size, _nccl_type(buf.dtype), root, stream.ptr)
