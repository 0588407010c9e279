"""Conditional variants: the projection discriminator of `cgan`, and the asked-for classes in
`tinygan sample --out FILE.npz` and `tinygan eval`."""
import json

import numpy as np
import pytest

from tinygan import gans
from tinygan.autograd import Tensor
from tinygan.cli import main


pytestmark = pytest.mark.usefixtures("offline_empty_cache")    # conftest.py


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_projection_logit_is_head_plus_class_embedding_dot_features(arch):
    cg = gans.create("cgan", (1, 28, 28), num_classes=10,
                     config=dict(arch=arch, ngf=4, ndf=4, z_dim=8))
    D = cg.D
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (5, 1, 32 if arch == "dcgan" else 28,
                                                         32 if arch == "dcgan" else 28)).astype(np.float32))
    y = Tensor(np.array([0, 3, 3, 7, 9]))
    h = D.features(x, y).data
    phi = h.sum(axis=(2, 3)) if arch == "dcgan" else h           # conv: summed over space
    head = D.net.head(Tensor(h)).data.reshape(5)
    want = head + (D.embed.weight.data[y.data] * phi).sum(1)
    np.testing.assert_allclose(D(x, y).data, want, rtol=1e-5, atol=1e-6)
    # The label moves the logit through the projection as well as through the input.
    other = Tensor(np.array([1, 1, 1, 1, 1]))
    assert not np.allclose(D(x, y).data, D(x, other).data)


def test_projection_off_is_the_papers_input_concatenation():
    cg = gans.create("cgan", (2,), num_classes=8, config=dict(projection=False, toy_hidden=8, z_dim=3))
    assert cg.D.embed is None and "embed" not in " ".join(cg.D.state_dict())
    x, y = Tensor(np.zeros((4, 2), np.float32)), Tensor(np.arange(4))
    np.testing.assert_allclose(cg.D(x, y).data, cg.D.net(cg.D.joint_input(x, y)).data, rtol=1e-6)


def test_projection_trains_with_the_tricks():
    cg = gans.create("cgan", (1, 28, 28), num_classes=10,
                     config=dict(minibatch_disc=True, mbd_kernels=4, mbd_dim=2,
                                 feature_matching=True, z_dim=8))
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (6, 1, 28, 28)).astype(np.float32))
    before = cg.D.embed.weight.data.copy()
    logs = cg.train_step(x, Tensor(np.arange(6) % 10))
    assert np.isfinite(list(logs.values())).all()
    assert not np.array_equal(before, cg.D.embed.weight.data)    # the class vectors learn


@pytest.fixture(scope="module")
def cgan_runs(tmp_path_factory):
    import os
    old = {k: os.environ.get(k) for k in ("TINYGAN_OFFLINE", "TINYGAN_DATA")}
    os.environ["TINYGAN_OFFLINE"] = "1"
    os.environ["TINYGAN_DATA"] = str(tmp_path_factory.mktemp("cache"))
    try:
        root = tmp_path_factory.mktemp("runs")
        toy, img = str(root / "toy"), str(root / "img")
        assert main(["train", "cgan", "--data", "ring8", "--steps", "3", "--batch-size", "16",
                     "--set", "toy_hidden=8", "--out", toy, "--quiet"]) == 0
        assert main(["train", "cgan", "--data", "mnist-subset", "--steps", "2", "--batch-size", "8",
                     "--set", "z_dim=8", "--out", img, "--quiet"]) == 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return toy, img


def test_sample_npz_of_a_conditional_run_carries_the_asked_for_labels(cgan_runs, tmp_path, capsys):
    toy, img = cgan_runs
    for run, k in ((toy, 8), (img, 10)):
        out = str(tmp_path / f"s{k}.npz")
        assert main(["sample", run, "--n", "23", "--out", out]) == 0
        assert "'labels'" in capsys.readouterr().out
        with np.load(out) as z:
            assert sorted(z.files) == ["labels", "samples"]
            assert len(z["samples"]) == 23
            np.testing.assert_array_equal(z["labels"], np.arange(23) % k)
    # The labels are the ones the samples were drawn for: redrawing with them gives the same.
    from tinygan import backend
    from tinygan.train import build_from_checkpoint
    backend.manual_seed(0)                   # as `tinygan sample --seed 0`: then the build
    variant, _, _ = build_from_checkpoint(img)
    with np.load(str(tmp_path / "s10.npz")) as z:
        again = variant.sample(23, y=Tensor(z["labels"]))
        np.testing.assert_allclose(again, z["samples"], rtol=1e-5, atol=1e-6)


def test_sample_npz_of_an_unconditional_run_has_no_labels(tmp_path):
    out = str(tmp_path / "gan")
    assert main(["train", "gan", "--data", "ring8", "--steps", "2", "--batch-size", "8",
                 "--out", out, "--quiet"]) == 0
    assert main(["sample", out, "--n", "5", "--out", str(tmp_path / "g.npz")]) == 0
    with np.load(str(tmp_path / "g.npz")) as z:
        assert z.files == ["samples"]


def test_eval_of_a_conditional_run_reports_class_agreement(cgan_runs, capsys):
    toy, img = cgan_runs
    assert main(["eval", toy, "--n", "80"]) == 0
    t = json.loads(capsys.readouterr().out)
    assert 0 <= t["class_agreement"] <= 1 and len(t["class_agreement_per_class"]) == 8
    assert main(["eval", img, "--n", "40"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert 0 <= m["class_agreement"] <= 1 and len(m["class_agreement_per_class"]) == 10
    assert {"frechet_distance", "inception_score", "class_histogram"} <= set(m)


def test_sample_in_chunks_keeps_each_label_with_its_z():
    # `sample` runs the generator on a few samples at a time (memory); the chunks must change
    # no sample and keep y[i] with z[i].
    cg = gans.create("cgan", (1, 28, 28), num_classes=10, config=dict(arch="dcgan", ngf=4, z_dim=8))
    z = Tensor(np.random.default_rng(1).standard_normal((11, 8)).astype(np.float32))
    y = Tensor(np.random.default_rng(2).integers(0, 10, 11))
    whole = cg.sample(11, z=z, y=y)
    calls, generate = [], cg.generate
    cg.generate = lambda zz, yy: calls.append((zz.shape[0], yy.shape[0])) or generate(zz, yy)
    cg.sample_chunk = 4
    chunked = cg.sample(11, z=z, y=y)
    assert calls == [(4, 4), (4, 4), (3, 3)]
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
    one = cg.sample(1, z=z[5:6], y=y[5:6])                      # sample 5 alone: same picture
    np.testing.assert_allclose(one[0], whole[5], rtol=1e-5, atol=1e-6)
