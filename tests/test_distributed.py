"""Data-parallel training (tinygan/distributed.py, docs/distributed.md).

In one process: the communicator is size 1 and free, synchronised batch norm is plain batch
norm and passes the finite-difference checks (first and second order), a node with fewer
GPUs than ranks is refused.  With `mpiexec -n 2` (the `mpi` extra; skipped without it): the
collectives and sync BN against one process (tests/mpi_worker.py), and `tinygan train` on 2
ranks with global batch B ends with the parameters of 1 process with batch B, for wgan_gp on
ring8 (gradient penalty: double backward) and dcgan with sync_bn=true; only rank 0 writes;
an error or Ctrl-C on rank 1 stops both ranks.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygan
from tinygan import checkpoint, distributed, nn
from tinygan import functional as F
from tinygan.gradcheck import gradcheck, gradgradcheck
from tinygan.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "mpi_worker.py")
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")


# -- one process --------------------------------------------------------------------------------
def test_a_single_process_is_rank_0_of_1_without_mpi4py():
    if distributed.launched():
        pytest.skip("the test suite itself runs under an MPI launcher")
    assert (distributed.rank(), distributed.size(), distributed.is_root()) == (0, 1, True)
    assert "mpi4py" not in sys.modules or distributed._comm is None
    a = np.arange(3.0)
    assert distributed.allreduce_([a])[0] is a and a.tolist() == [0, 1, 2]
    assert distributed.broadcast_([a])[0] is a and a.tolist() == [0, 1, 2]
    distributed.barrier()
    with distributed.data_parallel():
        assert not distributed.data_parallel_active()
        assert distributed.per_sample(4, lambda m: np.arange(m)).tolist() == [0, 1, 2, 3]
    assert distributed.allreduce_scalars({"loss": 1.5}) == {"loss": 1.5}
    with pytest.raises(TypeError, match="average=False to sum integers"):
        distributed.allreduce_([np.arange(3)])


def test_a_launcher_without_mpi4py_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)       # `import mpi4py` fails
    monkeypatch.setattr(distributed, "_checked", False)
    monkeypatch.setattr(distributed, "_comm", None)
    with pytest.raises(RuntimeError, match=r"process count 2.*pip install -e \"\.\[mpi\]\""):
        distributed.size()


def test_ranks_split_the_batch_and_the_draws_of_one_process(monkeypatch):
    """Rank r of N gets the r-th contiguous N-th of the batch and of each per-sample draw."""
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "size", lambda: 4)
    assert distributed.shard(8) == slice(2, 4)
    with pytest.raises(ValueError, match="batch size 6 does not split evenly over 4 processes"):
        distributed.shard(6)
    draw = lambda m: (np.arange(m), np.arange(m) * 10)     # noqa: E731
    assert distributed.per_sample(2, draw)[0].tolist() == [0, 1]       # outside a step: all
    with distributed.data_parallel():
        a, b = distributed.per_sample(2, draw)
    assert a.tolist() == [2, 3] and b.tolist() == [20, 30]


def test_cuda_with_fewer_gpus_than_ranks_on_the_node_is_refused(monkeypatch):
    monkeypatch.setattr(distributed, "size", lambda: 4)
    monkeypatch.setattr(distributed, "local_rank_and_size", lambda: (1, 4))
    monkeypatch.setattr(distributed, "_gpu_count", lambda: 2)
    with pytest.raises(RuntimeError, match="4 processes on this node but only 2 GPUs"):
        distributed.select_device("cuda")
    distributed.select_device("cpu")                       # nothing to choose on the CPU


# Every variant's per-sample draws (noise, labels, codes, penalty weights, augmentations,
# dropout) go through `per_sample`: the steps of test_host_syncs, one configuration a variant,
# plus DiffAugment and the variants it lacks; all 18 variants as of this writing.  A new
# variant belongs here too: a draw of its own n would give every rank the same noise.
from test_host_syncs import SMALL_CONV, STEPS  # noqa: E402

SMALLER = {"lapgan": dict(z_dim=4, g0_hidden=8, d0_hidden=8, ngf=4, ndf=4),   # dropout too
           "infogan": dict(ngf=4, ndf=4, fc=8, q_hidden=4)}
DRAWS = [(n, s, {**c, **SMALLER.get(n, {})}) for i, (n, s, c) in enumerate(STEPS)
         if n not in [m for m, _, _ in STEPS[:i]]]                 # one configuration each
DRAWS += [("dcgan", (1, 8, 8), dict(SMALL_CONV, diffaugment="color,translation,cutout")),
          ("began", (1, 8, 8), dict(z_dim=4, ngf=4, ndf=4, code_dim=4)),
          ("acgan", (1, 8, 8), dict(SMALL_CONV)), ("ebgan", (1, 8, 8), dict(SMALL_CONV)),
          ("sngan", (1, 8, 8), dict(SMALL_CONV)),
          ("unrolled", (2,), dict(z_dim=4, toy_hidden=8, unroll=2)),
          ("pix2pix", (2, 32, 32), dict(ngf=2, ndf=2))]


@pytest.mark.parametrize("name, shape, config", DRAWS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(DRAWS)])
def test_a_rank_draws_what_one_process_draws_for_the_whole_batch(monkeypatch, name, shape, config):
    """Rank 1 of 2 with half the batch leaves the generator where one process with the whole
    batch does: it drew the global batch's numbers (a draw of its own n would leave it short,
    and give both ranks the same noise)."""
    from tinygan.gans import create
    from tinygan.gans.registry import get
    labels = get(name).needs_labels
    rng = np.random.default_rng(0)
    x = np.tanh(rng.standard_normal((8,) + shape)).astype(np.float32)
    y = rng.integers(0, 3, 8)

    def generator_after_two_steps(part, ranks):
        tinygan.manual_seed(0)
        model = create(name, shape, num_classes=3 if labels else None, config=config)
        with monkeypatch.context() as m:
            m.setattr(distributed, "rank", lambda: ranks[0])
            m.setattr(distributed, "size", lambda: ranks[1])
            for _ in range(2):
                with distributed.data_parallel():
                    model.train_step(tinygan.tensor(x[part]),
                                     tinygan.tensor(y[part]) if labels else None)
                model.steps_done += 1
        return tinygan.backend.get_rng("cpu").bit_generator.state

    assert generator_after_two_steps(slice(4, 8), (1, 2)) == \
        generator_after_two_steps(slice(0, 8), (0, 1))


def _bn_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    return (tinygan.tensor(rng.standard_normal(shape) * 2 + 3, dtype="float64", requires_grad=True),
            tinygan.tensor(rng.standard_normal(C) + 1, dtype="float64", requires_grad=True),
            tinygan.tensor(rng.standard_normal(C), dtype="float64", requires_grad=True))


@pytest.mark.parametrize("shape, slope", [((5, 3, 2, 2), None), ((6, 4), 0.2)])
def test_sync_batch_norm_in_one_process_is_batch_norm_and_passes_gradcheck(shape, slope):
    x, w, b = _bn_inputs(shape)
    rm, rv, rm2, rv2 = np.zeros(shape[1]), np.ones(shape[1]), np.zeros(shape[1]), np.ones(shape[1])
    y = F.sync_batch_norm(x, rm, rv, w, b, 0.1, 1e-5, slope)
    ref = F.batch_norm(x, rm2, rv2, w, b, True, 0.1, 1e-5)
    ref = ref if slope is None else F.leaky_relu(ref, slope)
    np.testing.assert_allclose(y.data, ref.data, atol=1e-12)
    np.testing.assert_allclose(rm, rm2, atol=1e-12)
    np.testing.assert_allclose(rv, rv2, atol=1e-12)
    # the statistics' shift K (the running mean) is nonzero here, as after a few steps
    K = np.linspace(2.0, 3.5, shape[1])

    def fn(x, w, b):
        return F.sync_batch_norm(x, K.copy(), np.ones(shape[1]), w, b, 0.1, 1e-5, slope)
    assert gradcheck(fn, [x, w, b])
    assert gradgradcheck(fn, [x, w, b])


def test_all_reduce_sum_in_one_process_is_the_identity_to_every_order():
    x = tinygan.tensor(np.random.default_rng(0).standard_normal((2, 3)), dtype="float64",
                       requires_grad=True)
    assert gradcheck(lambda t: F.all_reduce_sum(t * t), [x])
    assert gradgradcheck(lambda t: F.all_reduce_sum(t * t), [x])
    np.testing.assert_array_equal(F.all_reduce_sum(x).data, x.data)


def test_convert_sync_batchnorm_keeps_the_parameters_keys_and_numbers():
    def make():
        tinygan.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNormAct2d(4, "leaky_relu", 0.2),
                             nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8))
    net, ref = make(), make()
    params, keys = list(net.parameters()), list(net.state_dict())
    assert nn.SyncBatchNorm.convert_sync_batchnorm(net) is net
    assert [type(m).__name__ for m in net] == ["Conv2d", "SyncBatchNorm", "Flatten", "Linear",
                                               "SyncBatchNorm"]
    assert all(a is b for a, b in zip(net.parameters(), params)) and list(net.state_dict()) == keys
    x = tinygan.randn(5, 1, 6, 6)
    for training in (True, True, False):            # one process: plain batch norm (+ act)
        net.train(training), ref.train(training)
        np.testing.assert_array_equal(net(x).data, ref(x).data)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(net.state_dict()[k], v, err_msg=k)


def test_sync_bn_is_an_option_of_every_variant_and_changes_nothing_in_one_process(tmp_path):
    from tinygan.gans import VARIANTS
    assert all(cls.defaults["sync_bn"] is False for cls in VARIANTS.values())
    common = dict(data="mnist", steps=2, batch_size=8, progress=False)
    opts = {"ngf": 8, "ndf": 8}
    train("dcgan", out=str(tmp_path / "a"), options=opts, **common)
    train("dcgan", out=str(tmp_path / "b"), options={**opts, "sync_bn": True}, **common)
    a, b = (_arrays(tmp_path / r) for r in "ab")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# -- two processes ------------------------------------------------------------------------------
def _mpi_missing() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install -e \".[mpi]\")"
    if not os.path.exists(MPIEXEC):
        return f"no mpiexec beside {sys.executable} (pip install -e \".[mpi]\")"
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=_mpi_missing() or "")


def mpiexec(*args, timeout=120) -> subprocess.CompletedProcess:
    """`mpiexec -n 2 python tests/mpi_worker.py ARGS` with this checkout's tinygan, one thread
    per rank (two ranks on two cores), the offline MNIST subset, a hard timeout (no hang)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
               TINYGAN_OFFLINE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    for launcher_variable in distributed.LAUNCHER_VARIABLES:
        env.pop(launcher_variable, None)
    return subprocess.run([MPIEXEC, "-n", "2", sys.executable, WORKER, *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def _arrays(run) -> dict:
    """The run's checkpoint as {path: array}."""
    state, _ = checkpoint.load(str(run))
    out = {}

    def walk(tree, prefix):
        if isinstance(tree, dict):
            for k, v in tree.items():
                walk(v, f"{prefix}/{k}")
        elif isinstance(tree, np.ndarray):
            out[prefix] = tree
    walk(state, "")
    return out


def _assert_same_run(one, two, what: str):
    a, b = _arrays(one), _arrays(two)
    assert a.keys() == b.keys(), what
    for k in a:
        if a[k].dtype.kind == "f":
            np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=f"{what}: {k}")
        else:
            np.testing.assert_array_equal(b[k], a[k], err_msg=f"{what}: {k}")


@needs_mpi
def test_collectives_and_sync_batch_norm_on_two_ranks():
    r = mpiexec("collectives", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rank 0: collectives ok" in r.stdout and "rank 1: collectives ok" in r.stdout


WGAN_GP = ["wgan_gp", "--data", "ring8", "--steps", "5", "--batch-size", "64",
           "--set", "toy_hidden=32"]
DCGAN = ["dcgan", "--steps", "5", "--batch-size", "16", "--set", "ngf=8", "--set", "ndf=8"]
# BEGAN's k moves with the batch's losses: a fast-moving k shows whether it follows the
# global batch's (the same k on every rank) or each rank's own
# (the BN-free DCGAN nets: with batch norm each rank's statistics differ, which is not what
# this checks)
BEGAN = ["began", "--steps", "5", "--batch-size", "16", "--set", "ngf=8", "--set", "ndf=8",
         "--set", "arch=dcgan", "--set", "batch_norm=false",
         "--set", "code_dim=8", "--set", "k0=0.2", "--set", "lambda_k=0.05"]


@needs_mpi
def test_two_ranks_train_as_one_process_with_the_whole_batch(tmp_path):
    """5 steps on 2 ranks (global batch B) = 5 steps in 1 process (batch B), to float32
    rounding: wgan_gp on ring8 (5 critic steps and a G step, the penalty's double backward),
    dcgan with sync_bn=true, and began (its k); dcgan without sync_bn differs (per-rank BN
    statistics)."""
    quiet = ["--quiet", "--sample-every", "5"]
    r = mpiexec("train", "train", *WGAN_GP, *quiet, "--out", tmp_path / "wgan_gp2", "--then",
                "train", *DCGAN, "--set", "sync_bn=true", *quiet, "--out", tmp_path / "dcgan2",
                "--then", "train", *DCGAN, *quiet, "--out", tmp_path / "dcgan2_local_bn",
                "--then", "train", *BEGAN, *quiet, "--out", tmp_path / "began2")
    assert r.returncode == 0, r.stdout + r.stderr

    def one_process(words, out, **options):
        data = words[words.index("--data") + 1] if "--data" in words else "mnist"
        return train(words[0], data=data, steps=5, batch_size=int(words[words.index("--batch-size") + 1]),
                     out=str(tmp_path / out), progress=False, sample_every=5,
                     options=dict(w.split("=") for w in words if "=" in w) | options)
    one_process(WGAN_GP, "wgan_gp1")
    one_process(DCGAN, "dcgan1", sync_bn="true")
    one_process(BEGAN, "began1")
    _assert_same_run(tmp_path / "wgan_gp1", tmp_path / "wgan_gp2", "wgan_gp")
    _assert_same_run(tmp_path / "dcgan1", tmp_path / "dcgan2", "dcgan sync_bn=true")
    _assert_same_run(tmp_path / "began1", tmp_path / "began2", "began")
    with pytest.raises(AssertionError):
        _assert_same_run(tmp_path / "dcgan1", tmp_path / "dcgan2_local_bn", "dcgan, local BN")

    for run in ("wgan_gp2", "dcgan2", "dcgan2_local_bn", "began2"):
        folder = tmp_path / run
        assert sorted(p.name for p in folder.glob("writer_rank*")) == ["writer_rank0"], run
        log = (folder / "log.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in log] == [1, 2, 3, 4, 5], run   # one writer
        assert not list(folder.rglob("*.tmp*")), run
    # a 2-rank checkpoint resumes in one process, as if the run had been one process all along
    train("wgan_gp", out=str(tmp_path / "wgan_gp2"), resume=True, steps=7, progress=False)
    train("wgan_gp", out=str(tmp_path / "wgan_gp1"), resume=True, steps=7, progress=False)
    _assert_same_run(tmp_path / "wgan_gp1", tmp_path / "wgan_gp2", "wgan_gp resumed")


@needs_mpi
def test_an_error_on_rank_1_stops_both_ranks_and_names_the_rank(tmp_path):
    out = tmp_path / "run"
    r = mpiexec("fail", "train", *WGAN_GP, "--quiet", "--checkpoint-every", "1", "--out", out,
                timeout=60)
    assert r.returncode != 0
    assert "tinygan train: rank 1 of 2: ArithmeticError: planted failure" in r.stderr, r.stderr
    # rank 0 was stopped before or while it saved step 2: its last whole checkpoint loads
    _, meta = checkpoint.load(str(out))
    assert meta["step"] in (1, 2)


@needs_mpi
def test_ctrl_c_on_rank_1_stops_both_ranks_at_the_same_step_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    r = mpiexec("sigint", "train", *WGAN_GP, "--quiet", "--out", out, timeout=60)
    assert r.returncode == 130, r.stdout + r.stderr
    assert "interrupted: checkpoint saved at step 3 of 5" in r.stderr
    _, meta = checkpoint.load(str(out))
    assert meta["step"] == 3 and len((out / "log.jsonl").read_text().splitlines()) == 3


def test_the_scaling_model_of_the_timing_script():
    """scripts/mpi_step_timing.py's model, checked by hand for one cell: 8 ranks, 10 Gb/s,
    6.91 MB of dcgan gradients in 3 calls: 2·7/8 · 6.91 MB / 1.25 GB/s = 9.68 ms, plus
    3 calls · 2·7 hops · 10 µs = 0.42 ms; compute 64 · 1.4 = 89.6 ms, so 90 % efficiency."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "mpi_step_timing.py"),
                        "--model-only", "--ms-per-sample", "1.4"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "| 8 | 64 | 89.6 | 10.1 ms, 90 % |" in r.stdout
    assert "| 64 | 1 | 1.4 | 14.7 ms, 9 % |" in r.stdout          # the batch split 64 ways
    assert "| 512 | < 1 |" in r.stdout
