"""Messages speak the user's language: one `tinygan CMD:` prefix, no internal function names,
and the MNIST fallback says only what happened (and how to skip the download)."""
import pytest

from tinygan import data
from tinygan.cli import main


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGAN_DATA", str(tmp_path / "cache"))      # an empty cache
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    monkeypatch.delenv("TINYGAN_DEBUG", raising=False)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "gan")
    assert main(["train", "gan", "--data", "ring8", "--steps", "2", "--batch-size", "8",
                 "--set", "toy_hidden=8", "--out", out, "--quiet"]) == 0
    return out


def one_line(capsys, argv) -> str:
    code = main(argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    cmd = argv[0]
    assert lines[0].startswith(f"tinygan {cmd}: ") and f"{cmd}: {cmd}:" not in lines[0], lines[0]
    for internal in ("load:", "eval:", "interpolate:", "arithmetic_figure", "load_idx_dataset"):
        assert internal not in lines[0].split(": ", 1)[1], lines[0]
    return lines[0]


def test_no_doubled_or_internal_prefixes(capsys, toy_run, tmp_path):
    assert one_line(capsys, ["eval", toy_run, "--n", "1"]) == "tinygan eval: --n must be >= 2, got 1"
    assert one_line(capsys, ["sample", str(tmp_path / "none"), "--out", str(tmp_path / "s.png")]) \
        == f"tinygan sample: no checkpoint at {tmp_path / 'none'}"
    one_line(capsys, ["eval", str(tmp_path / "none" / "last.npz")])
    assert "folder:PATH needs a path" in one_line(capsys, ["train", "gan", "--data", "folder:",
                                                           "--out", str(tmp_path / "r")])
    assert "--steps must be >= 2" in one_line(capsys, ["interpolate", toy_run, "--steps", "1",
                                                       "--out", str(tmp_path / "i.png")])
    assert "arithmetic works on image variants" in one_line(
        capsys, ["arithmetic", toy_run, "-a", "1", "-b", "2", "-c", "3",
                 "--out", str(tmp_path / "a.png")])


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
