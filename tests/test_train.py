"""The training loop: outputs, exact resume, Ctrl-C, divergence, refusing to overwrite, checkpoints."""
import json
import os
import signal

import numpy as np
import pytest

from tinygan import checkpoint
from tinygan.checkpoint import CheckpointError, build_from_checkpoint
from tinygan.gans.gan import GAN
from tinygan.train import RunExists, TrainingDiverged, train

TOY = dict(variant="gan", data="ring8", batch_size=32, progress=False)
IMAGE = dict(variant="dcgan", data="mnist-subset", batch_size=4, progress=False,
             options=dict(ngf=4, ndf=4))


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


def arrays(ckpt_path):
    with np.load(ckpt_path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_outputs_of_a_run(tmp_path):
    out = str(tmp_path / "run")
    summary = train(**TOY, steps=20, sample_every=10, out=out)
    assert summary["steps"] == 20 and not summary["interrupted"]
    rows = [json.loads(line) for line in open(os.path.join(out, "log.jsonl"))]
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert all(np.isfinite(r["loss_D"]) and np.isfinite(r["loss_G"]) for r in rows)
    assert sorted(os.listdir(os.path.join(out, "samples"))) == ["step_000010.png", "step_000020.png"]
    assert os.path.getsize(os.path.join(out, "loss.png")) > 0
    meta = json.load(open(os.path.join(out, "checkpoints", "last.json")))["meta"]
    assert meta["variant"] == "gan" and meta["data"] == "ring8" and meta["step"] == 20
    # atomic writes leave no temporary files behind
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["last.json", "last.npz"]


@pytest.mark.parametrize("cfg", [TOY, IMAGE], ids=["gan-ring8", "dcgan-mnist"])
def test_resume_is_bit_for_bit(tmp_path, cfg):
    """2N steps in one go == N steps, stop, resume for N more: identical parameters, optimizer
    moments, BN running stats and loss log."""
    n = 6 if cfg is TOY else 3
    train(**cfg, steps=2 * n, out=str(tmp_path / "straight"))
    train(**cfg, steps=n, out=str(tmp_path / "split"))
    train(**cfg, steps=2 * n, out=str(tmp_path / "split"), resume=True)
    a = arrays(tmp_path / "straight" / "checkpoints" / "last.npz")
    b = arrays(tmp_path / "split" / "checkpoints" / "last.npz")
    assert a.keys() == b.keys() and any("running_mean" in k for k in a) == (cfg is IMAGE)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    log = lambda d: open(tmp_path / d / "log.jsonl").read()   # noqa: E731
    assert log("straight") == log("split")


def test_resume_drops_log_lines_after_the_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    train(**TOY, steps=10, checkpoint_every=4, out=out)
    # Pretend the run died at step 10 before its final checkpoint: the checkpoint says 8.
    ckpt = os.path.join(out, "checkpoints", "last.npz")
    train(**TOY, steps=8, out=str(tmp_path / "eight"))
    for suffix in (".npz", ".json"):
        os.replace(str(tmp_path / "eight" / "checkpoints" / "last") + suffix, ckpt[:-4] + suffix)
    train(**TOY, steps=10, out=out, resume=True)
    steps = [json.loads(line)["step"] for line in open(os.path.join(out, "log.jsonl"))]
    assert steps == list(range(1, 11))


def test_ctrl_c_saves_a_checkpoint_and_stops(tmp_path, monkeypatch):
    real_step = GAN.train_step

    def step_then_interrupt(self, x, y=None):
        out = real_step(self, x, y)
        if self.steps_done == 2:             # the user presses Ctrl-C during step 3
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(GAN, "train_step", step_then_interrupt)
    out = str(tmp_path / "run")
    handler_before = signal.getsignal(signal.SIGINT)
    summary = train(**TOY, steps=100, checkpoint_every=50, out=out)
    assert summary["interrupted"] and summary["steps"] == 3
    state, meta = checkpoint.load(os.path.join(out, "checkpoints", "last.npz"))
    assert meta["step"] == 3 and state["step"] == 3
    assert signal.getsignal(signal.SIGINT) == handler_before   # the caller's handler is back
    monkeypatch.setattr(GAN, "train_step", real_step)
    assert train(**TOY, steps=5, out=out, resume=True)["steps"] == 5


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_step = GAN.train_step

    def step_that_diverges(self, x, y=None):
        out = real_step(self, x, y)
        if self.steps_done == 4:
            out["loss_G"] = float("nan")
        return out

    monkeypatch.setattr(GAN, "train_step", step_that_diverges)
    out = str(tmp_path / "run")
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5 \(loss_G=nan\).*last good checkpoint"):
        train(**TOY, steps=20, checkpoint_every=2, out=out)
    _, meta = checkpoint.load(os.path.join(out, "checkpoints", "last.npz"))
    assert meta["step"] == 4


def test_a_diverged_run_is_one_plain_line_from_the_cli(tmp_path, monkeypatch, capsys):
    from tinygan.cli import main
    real_step = GAN.train_step

    def step_that_diverges(self, x, y=None):
        out = real_step(self, x, y)
        out["loss_D"] = float("inf")
        return out

    monkeypatch.setattr(GAN, "train_step", step_that_diverges)
    code = main(["train", "gan", "--data", "ring8", "--steps", "3", "--quiet",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1
    assert err[0].startswith("tinygan train: gan diverged at step 1 (loss_D=inf)"), err


def test_refuses_to_overwrite_a_run(tmp_path):
    out = str(tmp_path / "run")
    train(**TOY, steps=3, out=out)
    before = arrays(os.path.join(out, "checkpoints", "last.npz"))
    with pytest.raises(RunExists, match=r"resume=True.*out=") as e:   # Python's words, not flags
        train(**TOY, steps=3, out=out)
    assert e.value.out == out and "--" not in str(e.value)
    after = arrays(os.path.join(out, "checkpoints", "last.npz"))
    assert all(np.array_equal(before[k], after[k]) for k in before)


def _interrupt_after(monkeypatch, n):
    """The user presses Ctrl-C during step n + 1."""
    real_step = GAN.train_step

    def step(self, x, y=None):
        out = real_step(self, x, y)
        if self.steps_done == n:
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(GAN, "train_step", step)
    return lambda: monkeypatch.setattr(GAN, "train_step", real_step)


def test_resume_keeps_the_runs_step_count(tmp_path, monkeypatch):
    """Resume without `steps` continues to the count the run was started with (not the
    variant's default), bit-for-bit; a finished run returns at once and changes nothing."""
    straight = str(tmp_path / "straight")
    train(**TOY, steps=12, out=straight)
    out = str(tmp_path / "run")
    restore = _interrupt_after(monkeypatch, 4)
    assert train(**TOY, steps=12, out=out)["steps"] == 5
    restore()
    s = train(**TOY, out=out, resume=True)
    assert (s["start"], s["steps"], s["target_steps"], s["interrupted"]) == (5, 12, 12, False)
    assert s["samples"].endswith("step_000012.png") and os.path.isfile(s["plot"])
    log = lambda d: open(os.path.join(d, "log.jsonl")).read()   # noqa: E731
    assert log(out) == log(straight)
    _, meta = checkpoint.load(os.path.join(out, "checkpoints", "last.npz"))
    assert meta["steps"] == 12 and meta["step"] == 12

    before = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in ("log.jsonl", "loss.png")}
    again = train(**TOY, out=out, resume=True)
    assert (again["start"], again["steps"], again["target_steps"]) == (12, 12, 12)
    assert again["last"] == s["last"]                   # the log's last losses
    assert before == {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in before}
    with pytest.raises(ValueError, match="already at step 12, past the 8 steps"):
        train(**TOY, steps=8, out=out, resume=True)
    further = train(**TOY, steps=15, out=out, resume=True)
    assert (further["start"], further["steps"]) == (12, 15)
    _, meta = checkpoint.load(os.path.join(out, "checkpoints", "last.npz"))
    assert meta["steps"] == 15                          # the new length is the run's now


def test_resume_mismatches_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(**TOY, steps=3, out=str(tmp_path / "none"), resume=True)
    out = str(tmp_path / "run")
    train(**TOY, steps=3, out=out)
    with pytest.raises(ValueError, match="holds a gan run on ring8"):
        train(**dict(TOY, data="grid25"), steps=6, out=out, resume=True)
    with pytest.raises(ValueError, match="holds a gan run"):
        train(**dict(TOY, variant="lsgan"), steps=6, out=out, resume=True)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown variant 'nope'"):
        train("nope", data="ring8", steps=1, out=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="unknown dataset 'rign8'.*did you mean ring8"):
        train("gan", data="rign8", steps=1, out=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="unknown option 'lr_g'"):
        train(**TOY, steps=1, out=str(tmp_path / "c"), options={"lr_g": 1})
    with pytest.raises(ValueError, match="batch size"):
        train(**dict(TOY, batch_size=0), steps=1, out=str(tmp_path / "d"))
    with pytest.raises(ValueError, match="image data only"):
        train("dcgan", data="ring8", steps=1, out=str(tmp_path / "e"), progress=False)


def test_checkpoint_from_disk_problems(tmp_path):
    out = str(tmp_path / "run")
    train(**TOY, steps=2, out=out)
    ckpt = os.path.join(out, "checkpoints", "last.npz")
    variant, meta, _ = build_from_checkpoint(out)          # a run directory works as well
    assert meta["variant"] == "gan" and variant.steps_done == 2

    # another variant's name in the metadata: the nets do not fit
    doc = json.load(open(ckpt[:-4] + ".json"))
    doc["meta"]["variant"] = "wgan_gp"
    json.dump(doc, open(ckpt[:-4] + ".json", "w"))
    with pytest.raises(CheckpointError, match="does not fit variant wgan_gp"):
        build_from_checkpoint(ckpt)

    # truncated npz
    train(**TOY, steps=2, out=str(tmp_path / "run2"))
    ckpt2 = str(tmp_path / "run2" / "checkpoints" / "last.npz")
    data = open(ckpt2, "rb").read()
    open(ckpt2, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        build_from_checkpoint(ckpt2)

    # corrupt metadata, missing file, not a training checkpoint
    open(ckpt2[:-4] + ".json", "w").write("{not json")
    with pytest.raises(CheckpointError, match="metadata .* is corrupt"):
        build_from_checkpoint(ckpt2)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        build_from_checkpoint(str(tmp_path / "missing.npz"))
    other = str(tmp_path / "other.npz")
    checkpoint.save(other, {"w": np.zeros(3)}, {"what": "something else"})
    with pytest.raises(CheckpointError, match="not a tinygan training checkpoint"):
        build_from_checkpoint(other)


def test_checkpoint_round_trip_keeps_nested_state(tmp_path):
    state = {"a": np.arange(6.0).reshape(2, 3), "b": {"c": [np.ones(2), {"d": np.zeros(1)}], "n": 3},
             "s": "text", "l": [1, 2]}
    path = checkpoint.save(str(tmp_path / "x.npz"), state, {"k": 1})
    back, meta = checkpoint.load(path)
    assert meta == {"k": 1} and back["s"] == "text" and back["l"] == [1, 2] and back["b"]["n"] == 3
    np.testing.assert_array_equal(back["a"], state["a"])
    np.testing.assert_array_equal(back["b"]["c"][1]["d"], np.zeros(1))
    with np.load(path, allow_pickle=False) as z:      # plain arrays: no pickle needed
        assert set(z.files) == {"a", "b/c/0", "b/c/1/d"}


def test_resume_of_a_folder_run_given_with_a_tilde(tmp_path, monkeypatch):
    """`data="folder:~/faces"` is recorded expanded; resuming with the same spelling (or the
    expanded one) finds the same run, and another folder is refused."""
    from PIL import Image
    monkeypatch.setenv("HOME", str(tmp_path))
    for d in ("faces", "other"):
        (tmp_path / d).mkdir()
        for i in range(4):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / d / f"{i}.png")
    out = str(tmp_path / "run")
    opts = {"z_dim": 4}
    train("gan", data="folder:~/faces", steps=1, batch_size=2, out=out, options=opts, progress=False)
    assert checkpoint.load(os.path.join(out, "checkpoints", "last.npz"))[1]["data"] == \
        f"folder:{tmp_path / 'faces'}"
    r = train("gan", data="folder:~/faces", steps=2, out=out, resume=True, progress=False)
    assert r["steps"] == 2
    with pytest.raises(ValueError, match="not gan on folder:.*other"):
        train("gan", data="folder:~/other", steps=3, out=out, resume=True, progress=False)
