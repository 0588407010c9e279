"""No device->host synchronisation in a training step; one fetch of its losses per step.

On a GPU every `.item()`, `float(a)`, `bool(a.any())` of a device array makes the host wait
for the device, so the next step cannot be queued while this one runs.  These tests run the
steps on the fake GPU of fake_device.py, whose arrays raise `HostSync` at any such read and
count the explicit copies (`.get()`, what `backend.as_numpy` calls); the last one repeats the
check on a real GPU when there is one.
"""
import json
import math
import os

import numpy as np
import pytest

import tinygan.functional as F
from tinygan import Tensor, backend
from tinygan.gans import create
from tinygan.gans.gan import GAN
from tinygan.train import train

from fake_device import DeviceArray, HostSync, install

SMALL_CONV = dict(z_dim=4, ngf=4, ndf=4)
TRICKS = dict(historical_avg=0.5, minibatch_disc=True, mbd_kernels=4, mbd_dim=3,
              label_smoothing=0.9)

# (variant, data shape, config): every variant, tricks on where it takes them
STEPS = [
    ("gan", (2,), dict(z_dim=4, toy_hidden=8)),
    ("gan", (1, 8, 8), dict(z_dim=4, **TRICKS)),
    ("gan", (1, 8, 8), dict(z_dim=4, feature_matching=True, virtual_bn=True, vbn_ref_size=4)),
    ("dcgan", (1, 8, 8), dict(SMALL_CONV)),
    ("dcgan", (1, 8, 8), dict(SMALL_CONV, **TRICKS, virtual_bn=True, vbn_ref_size=4,
                              feature_matching=True)),
    ("wgan_gp", (1, 8, 8), dict(SMALL_CONV, n_critic=2)),
    ("wgan_gp", (2,), dict(z_dim=4, toy_hidden=8, n_critic=2)),
    ("wgan", (1, 8, 8), dict(SMALL_CONV, n_critic=2)),
    ("lsgan", (1, 8, 8), dict(SMALL_CONV, **TRICKS)),
    ("cgan", (1, 8, 8), dict(SMALL_CONV, arch="dcgan", **TRICKS)),
    ("infogan", (1, 28, 28), {}),
    ("lapgan", (1, 28, 28), {}),
    ("pggan", (1, 28, 28), dict(steps_per_phase=1)),
    ("bigan", (1, 8, 8), dict(hidden=(8, 8))),
    ("aae", (1, 8, 8), {}),
    ("vae", (1, 8, 8), {}),
    ("ae", (1, 8, 8), {}),
    ("cyclegan", (2, 16, 16), dict(ngf=4, ndf=4, n_blocks=1, pool_size=3)),   # pool full in step 1
    ("srgan", (2, 32, 32), dict(nf=4, n_blocks=1, ndf=4, d_convs=2, pretrain_steps=1)),
]


@pytest.fixture
def fake_gpu(monkeypatch):
    install(monkeypatch)


def _batches(shape, labels, n=3, batch=4):
    rng = np.random.default_rng(0)
    for _ in range(n):
        x = np.tanh(rng.standard_normal((batch,) + shape)).astype(np.float32)
        y = rng.integers(0, 3, batch) if labels else None
        yield (Tensor(backend.to_device(x, "cuda")),
               None if y is None else Tensor(backend.to_device(y, "cuda")))


def test_the_fake_gpu_traps_every_implicit_read_and_counts_copies(fake_gpu):
    a = Tensor(backend.to_device(np.arange(4, dtype=np.float32), "cuda"))
    assert a.device == "cuda" and isinstance(a.data, DeviceArray)
    s = (a * 2.0).sum()
    assert isinstance(s.data, DeviceArray)                  # results stay on the device
    for read in (s.item, lambda: float(s.data), lambda: bool(s.data > 0), lambda: int(s.data),
                 lambda: f"{s.data:.3f}", a.data.tolist, lambda: bool((a.data > 1).any())):
        with pytest.raises(HostSync):
            read()
    assert DeviceArray.transfers == 0
    assert backend.as_numpy(s.data) == 12.0 and DeviceArray.transfers == 1


@pytest.mark.parametrize("name, shape, config", STEPS,
                         ids=[f"{n}-{'toy' if len(s) == 1 else 'image'}-{i}"
                              for i, (n, s, _) in enumerate(STEPS)])
def test_train_step_never_reads_the_device(fake_gpu, name, shape, config):
    backend.manual_seed(0)
    labels = name == "cgan"
    model = create(name, shape, num_classes=3 if labels else None, config=config, device="cuda")
    batches = list(_batches(shape, labels, n=4))
    for x, y in batches[:3]:                       # 3 steps: n_critic, averages, G's turns
        logs = model.train_step_on_device(x, y)      # a HostSync here names the line
        model.steps_done += 1
    assert DeviceArray.transfers == 0
    device_values = {k for k, v in logs.items() if isinstance(v, DeviceArray)}
    assert device_values and all(isinstance(v, (DeviceArray, float)) for v in logs.values())
    floats = backend.fetch_scalars(logs)
    assert DeviceArray.transfers == 1                # all of them in one copy
    assert set(floats) == set(logs)
    assert all(type(v) is float and math.isfinite(v) for v in floats.values()), floats
    # the public train_step (its contract: dict[str, float]) is the same step plus that one copy
    public = model.train_step(*batches[3])
    assert DeviceArray.transfers == 2
    assert public and all(type(v) is float and math.isfinite(v) for v in public.values())


def test_the_training_loop_fetches_the_losses_once_per_step(fake_gpu, tmp_path, monkeypatch):
    marks = []                                       # transfers counted at each step's start/end
    real_step = GAN._device_step                     # the variant's step, before the fetch

    def counted_step(self, x, y=None):
        marks.append(DeviceArray.transfers)
        out = real_step(self, x, y)
        marks.append(DeviceArray.transfers)
        return out

    monkeypatch.setattr(GAN, "_device_step", counted_step)
    out = str(tmp_path / "run")
    steps = 5                                        # samples and checkpoint after the last only
    train("gan", data="ring8", steps=steps, batch_size=8, device="cuda", out=out,
          options={"z_dim": 4, "toy_hidden": 8, "historical_avg": 0.5}, progress=True,
          sample_every=steps, checkpoint_every=steps)
    starts, ends = marks[0::2], marks[1::2]
    assert len(starts) == steps
    assert all(e == s for s, e in zip(starts, ends))              # none inside a step
    assert [s - e for e, s in zip(ends, starts[1:])] == [1] * (steps - 1)   # one between
    rows = [json.loads(line) for line in open(os.path.join(out, "log.jsonl"))]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    assert all(type(r[k]) is float for r in rows for k in ("loss_D", "loss_G", "hist_D", "hist_G"))


def test_fetch_scalars_on_numpy_gives_what_item_gives():
    a32, a64 = np.float32(1) / np.float32(3), np.array(2.0) / 3
    out = backend.fetch_scalars({"a": np.asarray(a32), "b": a64, "c": -np.asarray(a32),
                                 "res": 8.0, "n": 3})
    assert out == {"a": np.asarray(a32).item(), "b": a64.item(), "c": -np.asarray(a32).item(),
                   "res": 8.0, "n": 3}
    assert all(type(out[k]) is float for k in "abc") and type(out["n"]) is int
    assert backend.fetch_scalars({}) == {}
    with pytest.raises(ValueError):
        backend.fetch_scalars({"v": np.zeros(2)})      # one-element arrays only, like .item()


# -- the ops whose checks used to read values back ------------------------------------------
def _dev(a):
    return Tensor(backend.to_device(np.asarray(a), "cuda"))


def test_softplus_backward_decides_its_branch_without_the_data(fake_gpu):
    for threshold in (float("inf"), 20.0, 0.5):
        x = Tensor(backend.to_device(np.linspace(-3, 3, 7), "cuda"), requires_grad=True)
        F.softplus(x, threshold=threshold).sum().backward()
        want = 1 / (1 + np.exp(-np.linspace(-3, 3, 7)))
        if threshold == 0.5:
            want = np.where(np.linspace(-3, 3, 7) > 0.5, 1.0, want)
        np.testing.assert_allclose(backend.as_numpy(x.grad.data), want, rtol=1e-12)
    assert DeviceArray.transfers == 3


def test_loss_checks_turn_into_nan_on_the_device(fake_gpu):
    """Out-of-range inputs raise on NumPy (tests/test_activation_loss.py); on the device the
    check would be a sync, so the result is NaN instead, and the training loop stops on it."""
    t = _dev(np.array([1.0, 0.0, 1.0]))
    good = F.binary_cross_entropy(_dev(np.array([0.9, 0.2, 0.5])), t)
    with np.errstate(invalid="ignore"):
        bad = F.binary_cross_entropy(_dev(np.array([0.9, 1.5, 0.5])), t)
    logits = _dev(np.zeros((3, 4)))
    ce_good = F.cross_entropy(logits, _dev(np.array([0, 3, -100])))
    ce_bad = F.cross_entropy(logits, _dev(np.array([0, 4, 1])), reduction="none")
    smooth = F.cross_entropy(logits, _dev(np.array([0, 3, -100])), label_smoothing=0.1)
    table = Tensor(backend.to_device(np.ones((3, 2)), "cuda"))
    rows = F.embedding(_dev(np.array([[0, 2], [3, -1]])), table)
    assert DeviceArray.transfers == 0
    got = backend.fetch_scalars({"good": good.data, "bad": bad.data, "ce_good": ce_good.data,
                                 "smooth": smooth.data})
    assert math.isfinite(got["good"]) and math.isnan(got["bad"])
    assert got["ce_good"] == pytest.approx(math.log(4)) and got["smooth"] == pytest.approx(math.log(4))
    ce_bad = backend.as_numpy(ce_bad.data)
    assert ce_bad[0] == pytest.approx(math.log(4)) and np.isnan(ce_bad[1]) and ce_bad[2] > 0
    rows = backend.as_numpy(rows.data)
    np.testing.assert_array_equal(rows[0], np.ones((2, 2)))
    assert np.isnan(rows[1]).all()


def test_cumulative_batch_norm_and_historical_average_keep_their_counts_on_the_device(fake_gpu):
    from tinygan import nn
    from tinygan.gans.tricks import HistoricalAverage
    bn = nn.BatchNorm1d(2, momentum=None).to("cuda")
    xs = [np.random.default_rng(k).standard_normal((4, 2)) for k in range(3)]
    for x in xs:
        bn(_dev(x.astype(np.float32)))
    p = nn.Parameter(backend.to_device(np.zeros(2, np.float32), "cuda"))
    hist = HistoricalAverage([p]).to("cuda")
    for v in (1.0, 2.0, 6.0):
        p.data[...] = v
        hist.update()
    assert DeviceArray.transfers == 0
    mean = np.mean([x.mean(0) for x in xs], axis=0)
    np.testing.assert_allclose(backend.as_numpy(bn.running_mean.data), mean, rtol=1e-5)
    np.testing.assert_allclose(backend.as_numpy(hist.mean0.data), [3.0, 3.0])


# -- the same on a real GPU ---------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("name, shape, config", STEPS,
                         ids=[f"{n}-{'toy' if len(s) == 1 else 'image'}-{i}"
                              for i, (n, s, _) in enumerate(STEPS)])
def test_train_step_never_synchronises_on_a_real_gpu(name, shape, config):
    """Every variant trains on the GPU, and CuPy raises DeviceSynchronized at any
    synchronisation it makes (`.item()`, `.get()`, `bool()`, ...) inside
    `allow_synchronize(False)`."""
    import cupyx
    if not backend.cuda_available():
        pytest.skip("no working CUDA device")
    backend.manual_seed(0)
    labels = name == "cgan"
    model = create(name, shape, num_classes=3 if labels else None, config=config, device="cuda")
    batches = list(_batches(shape, labels))
    model.train_step(*batches[0])                    # first call: kernels compiled, state made
    model.steps_done += 1
    with cupyx.allow_synchronize(False):
        for x, y in batches[1:]:
            logs = model.train_step_on_device(x, y)
            model.steps_done += 1
    assert all(math.isfinite(v) for v in backend.fetch_scalars(logs).values())
