"""The `tinygan` command: each user error is one line on stderr and exit status 2."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tinygan
from tinygan import data
from tinygan.cli import main
from tinygan.gans import VARIANTS


pytestmark = pytest.mark.usefixtures("offline_empty_cache")    # conftest.py


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "gan")
    assert main(["train", "gan", "--data", "ring8", "--steps", "5", "--batch-size", "16",
                 "--out", out, "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "dcgan")
    assert main(["train", "dcgan", "--data", "mnist-subset", "--steps", "2", "--batch-size", "4",
                 "--set", "ngf=4", "--set", "ndf=4", "--out", out, "--quiet"]) == 0
    return out


def one_line_error(capsys, argv, match):
    """Exit 2 and one line on stderr that contains `match`, in the user's language: one
    `tinygan CMD:` prefix, no internal function names."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0], err
    cmd = argv[0]
    assert lines[0].startswith(f"tinygan {cmd}: ") and f"{cmd}: {cmd}:" not in lines[0], lines[0]
    for internal in ("load:", "eval:", "interpolate:", "arithmetic_figure", "load_idx_dataset"):
        assert internal not in lines[0].split(": ", 1)[1], lines[0]
    return lines[0]


def test_variants_lists_every_variant(capsys):
    assert main(["variants", "-v"]) == 0
    out = capsys.readouterr().out
    for name, cls in VARIANTS.items():
        assert f"\n{name} " in "\n" + out and cls.paper in out
    assert "n_critic=5  " in out and "lr=0.0002  " in out and "float > 0" in out


def test_train_writes_the_run(toy_run, capsys):
    files = set(os.listdir(toy_run))
    assert {"checkpoints", "samples", "log.jsonl", "loss.png"} <= files


@pytest.mark.parametrize("argv, match", [
    (["train", "nope"], "unknown variant 'nope'"),
    (["train", "gan", "--data", "mnsit"], "did you mean mnist"),
    (["train", "gan", "--data", "ring8", "--set", "lr_g=1"], "unknown option 'lr_g'"),
    (["train", "gan", "--data", "ring8", "--set", "oops"], "KEY=VALUE"),
    (["train", "gan", "--data", "folder:/no/such/folder"], "/no/such/folder"),
    (["sample", "/no/such/run", "--out", "x.png"], "no checkpoint"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, match):
    one_line_error(capsys, argv + (["--out", str(tmp_path / "r")] if argv[0] == "train" else []), match)


@pytest.mark.skipif(tinygan.cuda_available(), reason="a GPU is present")
def test_device_cuda_without_a_gpu(capsys, tmp_path):
    one_line_error(capsys, ["train", "gan", "--data", "ring8", "--device", "cuda",
                            "--out", str(tmp_path / "r")], "no working CUDA device")
    assert not os.path.exists(tmp_path / "r")


def test_existing_run_is_not_overwritten(capsys, toy_run):
    ckpt = os.path.join(toy_run, "checkpoints", "last.npz")
    before = open(ckpt, "rb").read()
    one_line_error(capsys, ["train", "gan", "--data", "ring8", "--steps", "5", "--out", toy_run],
                   "--resume")
    assert open(ckpt, "rb").read() == before


def test_train_ends_with_a_summary_and_the_next_commands(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "gan", "--data", "ring8", "--steps", "4", "--batch-size", "16",
                 "--out", out, "--quiet"]) == 0
    text = capsys.readouterr().out
    for path in ("samples/step_000004.png", "loss.png", "checkpoints/last.npz"):
        assert os.path.join(out, path) in text and os.path.isfile(os.path.join(out, path))
    assert f"tinygan sample {out} " in text and f"tinygan eval {out}" in text
    assert f"tinygan train gan --out {out} --resume --steps 8" in text
    assert main(["train", "gan", "--data", "ring8", "--steps", "2", "--batch-size", "16",
                 "--out", str(tmp_path / "j"), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)           # --json: the summary, one line
    assert summary["steps"] == 2 and summary["checkpoint"].endswith("last.npz")


def test_ctrl_c_hint_and_resume_keep_the_runs_length(tmp_path, capsys, monkeypatch):
    from tinygan.gans.gan import GAN
    real_step = GAN.train_step

    def step_then_interrupt(self, x, y=None):
        loss = real_step(self, x, y)
        if self.steps_done == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(GAN, "train_step", step_then_interrupt)
    out = str(tmp_path / "run")
    assert main(["train", "gan", "--data", "ring8", "--steps", "20", "--batch-size", "16",
                 "--out", out, "--quiet"]) == 130
    hint = capsys.readouterr().err.strip().splitlines()[-1]
    command = f"tinygan train gan --out {out} --resume --steps 20"
    assert hint.endswith(f"`{command}`"), hint
    monkeypatch.setattr(GAN, "train_step", real_step)
    assert main(command.split()[1:] + ["--quiet"]) == 0
    assert "step 20 of 20" in capsys.readouterr().out
    # a finished run: one line that says so and how to train further, nothing retrained
    assert main(["train", "gan", "--out", out, "--resume"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"{out} already finished its 20 steps; train further with "
                     f"`tinygan train gan --out {out} --resume --steps 40`"]
    one_line_error(capsys, ["train", "gan", "--out", out, "--resume", "--steps", "10"],
                   "already at step 20")


def test_sample_npz_and_png(toy_run, image_run, tmp_path, capsys):
    assert main(["sample", toy_run, "--n", "7", "--out", str(tmp_path / "t.npz")]) == 0
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        assert z["samples"].shape == (7, 2) and z["samples"].dtype == np.float32
    assert main(["sample", image_run, "--n", "5", "--out", str(tmp_path / "i.npz")]) == 0
    with np.load(tmp_path / "i.npz", allow_pickle=False) as z:
        s = z["samples"]
    assert s.shape == (5, 1, 28, 28) and s.min() >= -1 and s.max() <= 1
    assert main(["sample", os.path.join(image_run, "checkpoints", "last.npz"), "--n", "16",
                 "--out", str(tmp_path / "i.png")]) == 0
    w, h = Image.open(tmp_path / "i.png").size
    assert w >= 4 * 28 and h >= 4 * 28
    one_line_error(capsys, ["sample", image_run, "--out", str(tmp_path / "i.jpg")], ".png or .npz")
    one_line_error(capsys, ["sample", image_run, "--n", "0", "--out", str(tmp_path / "i.png")], "--n")


def test_sample_of_a_corrupt_checkpoint(capsys, tmp_path, toy_run):
    import shutil
    run = str(tmp_path / "copy")
    shutil.copytree(toy_run, run)
    ckpt = os.path.join(run, "checkpoints", "last.npz")
    open(ckpt, "wb").write(b"not a zip file")
    one_line_error(capsys, ["sample", run, "--out", str(tmp_path / "s.png")], "corrupt")
    assert not os.path.exists(tmp_path / "s.png")


def test_eval_prints_metrics_json(toy_run, image_run, capsys):
    assert main(["eval", toy_run, "--n", "200"]) == 0
    toy = json.loads(capsys.readouterr().out)
    assert toy["modes_total"] == 8 and 0 <= toy["modes_covered"] <= 8 and toy["n_samples"] == 200
    assert main(["eval", image_run, "--n", "50"]) == 0
    img = json.loads(capsys.readouterr().out)
    assert img["frechet_distance"] > img["real_reference"]["frechet_distance_half_vs_all"]
    assert sum(img["class_histogram"]) == 50 and 1 <= img["inception_score"] <= 10


def test_gradcheck_command(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert "conv_transpose2d" in out and "batch_norm (train)" in out and "all passed" in out


def test_console_entry_point():
    r = subprocess.run([sys.executable, "-m", "tinygan", "variants"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "wgan_gp" in r.stdout
    r = subprocess.run([sys.executable, "-m", "tinygan", "train", "nope"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "unknown variant" in r.stderr


def test_bench_command_passes_its_options_through(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--no-torch", "--only", "steps", "--no-memory", "--quiet",
                 "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "dcgan" in json.dumps(report) and "--quick" not in capsys.readouterr().err


# -- messages speak the user's language ----------------------------------------------------------
def test_no_doubled_or_internal_prefixes(capsys, toy_run, tmp_path):
    assert one_line_error(capsys, ["eval", toy_run, "--n", "1"], "") == "tinygan eval: --n must be >= 2, got 1"
    assert one_line_error(capsys, ["sample", str(tmp_path / "none"), "--out", str(tmp_path / "s.png")], "") \
        == f"tinygan sample: no checkpoint at {tmp_path / 'none'}"
    one_line_error(capsys, ["eval", str(tmp_path / "none" / "last.npz")], "no checkpoint")
    one_line_error(capsys, ["train", "gan", "--data", "folder:", "--out", str(tmp_path / "r")],
                   "folder:PATH needs a path")
    one_line_error(capsys, ["interpolate", toy_run, "--steps", "1", "--out",
                            str(tmp_path / "i.png")], "--steps must be >= 2")
    one_line_error(capsys, ["arithmetic", toy_run, "-a", "1", "-b", "2", "-c", "3",
                            "--out", str(tmp_path / "a.png")], "arithmetic works on image variants")


def test_eval_says_nothing_about_downloads(capsys, tmp_path, monkeypatch):
    """eval reads MNIST with download=False: no download was tried, none is reported."""
    ds = data.load("mnist", download=False)
    assert ds.name == "mnist" and capsys.readouterr().err == ""
    monkeypatch.delenv("TINYGAN_OFFLINE")
    data.load("mnist", download=False)
    assert capsys.readouterr().err == ""


def test_offline_fallback_notice(capsys):
    data.load("mnist")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TINYGAN_OFFLINE is set" in err and "5,000" in err
    assert "could not be downloaded" not in err


def test_failed_download_says_once_how_to_skip_it(capsys, monkeypatch):
    from tinygan.data import mnist
    monkeypatch.delenv("TINYGAN_OFFLINE")
    monkeypatch.setitem(mnist.SOURCES["mnist"], "mirrors", ["http://127.0.0.1:9/"])  # discard port
    data.load("mnist")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not be downloaded" in err
    assert err.count("TINYGAN_OFFLINE=1") == 1


def test_a_warning_is_one_plain_line_on_the_command_line(tmp_path, capfd):
    """An unreadable file in a folder dataset: the run goes on, and the warning reads as the
    CLI's other messages do (no source file, line number or code)."""
    import subprocess
    import sys
    from PIL import Image
    for i in range(4):
        Image.new("L", (8, 8), 60 * i).save(tmp_path / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    r = subprocess.run([sys.executable, "-m", "tinygan", "train", "gan", "--data",
                        f"folder:{tmp_path}?size=8", "--steps", "1", "--batch-size", "2",
                        "--set", "z_dim=4", "--quiet", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "broken.png" in ln]
    assert len(lines) == 1 and lines[0].startswith("tinygan: "), r.stderr
    assert ".py:" not in r.stderr and "Warning:" not in r.stderr, r.stderr
