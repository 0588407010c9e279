"""scripts/dcgan_vs_torch.py runs end to end (a few steps)."""
import importlib.util
import json
import pathlib
import sys

import pytest

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "scripts"


def load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


pytestmark = pytest.mark.usefixtures("offline_empty_cache")    # conftest.py


def test_dcgan_vs_torch_tinygan_side(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert load("dcgan_vs_torch").main(["--only", "tinygan", "--steps", "2", "--seeds", "0",
                                        "--n", "20", "--out", str(tmp_path / "r"),
                                        "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert rows[0]["side"] == "tinygan" and rows[0]["frechet_distance"] > 0
    assert "mean FD" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed")
def test_dcgan_vs_torch_same_start_agrees_at_step_one(tmp_path, capsys):
    assert load("dcgan_vs_torch").main(["--torch-python", sys.executable, "--same-start", "2",
                                        "--batch-size", "8", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    step1 = float(printed.split("largest loss difference: step 1 ")[1].split(",")[0])
    assert step1 < 1e-4
