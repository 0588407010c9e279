"""`~` and $VARIABLES are expanded in every path argument (a shell leaves them alone inside
`folder:~/faces`, `--out=~/runs` or quotes)."""
import os

import numpy as np
import pytest
from PIL import Image

from tinygan import data
from tinygan.cli import main


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGAN_OFFLINE", "1")
    monkeypatch.delenv("TINYGAN_DEBUG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RUNS", str(tmp_path / "runs"))
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (12, 10), np.uint8)).save(faces / f"{i}.png")
    return tmp_path


def test_folder_out_and_checkpoint_paths_expand(home, capsys):
    assert main(["train", "dcgan", "--data", "folder:~/faces", "--steps", "1", "--batch-size", "4",
                 "--set", "ngf=4", "--set", "ndf=4", "--out", "~/runs/a", "--quiet"]) == 0
    assert (home / "runs" / "a" / "checkpoints" / "last.npz").exists()
    assert not os.path.exists("~")
    assert main(["sample", "$RUNS/a", "--n", "4", "--out", "~/s.png"]) == 0
    assert (home / "s.png").exists()
    assert main(["interpolate", "${RUNS}/a", "--steps", "2", "--rows", "1", "--out", "~/i.png"]) == 0
    assert (home / "i.png").exists()
    capsys.readouterr()
    assert main(["eval", "$RUNS/none"]) == 2
    assert f"no checkpoint at {home}/runs/none" in capsys.readouterr().err


def test_data_dir_expands(home, capsys):
    assert main(["train", "gan", "--data", "mnist", "--data-dir", "~/faces",
                 "--out", "$RUNS/b"]) == 2
    err = capsys.readouterr().err
    assert f"not found in {home}/faces" in err and "~" not in err


def test_load_expands_folder_and_root_from_python(home):
    assert data.load("folder:~/faces", size=8).shape == (4, 1, 8, 8)
    assert data.load("folder:$HOME/faces", size=8).shape == (4, 1, 8, 8)
    with pytest.raises(data.DataNotFoundError, match=f"not found in {home}/faces"):
        data.load("mnist", root="~/faces")
