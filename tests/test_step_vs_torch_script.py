"""scripts/step_vs_torch.py alternates a tinygan step with PyTorch's (in the bench worker) and
reports medians and per-round ratios that agree with each other."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "step_vs_torch.py"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed")
def test_gan_step_against_torch():
    out = subprocess.run([sys.executable, str(SCRIPT), "gan", "--rounds", "3", "--per-round", "1",
                          "--batch", "8"], capture_output=True, text=True, timeout=600, check=True).stdout
    m = re.search(r"tinygan ([\d.]+) ms, PyTorch ([\d.]+) ms; ratio of medians ([\d.]+); "
                  r"per-round ratio median ([\d.]+) \(range ([\d.]+)-([\d.]+)\)", out)
    assert m, out
    ours, theirs, ratio, med, lo, hi = map(float, m.groups())
    assert ours > 0 and theirs > 0
    # the times are printed to 0.1 ms, the ratio to 0.001: equal within that rounding
    assert (ours - 0.05) / (theirs + 0.05) - 0.0005 <= ratio <= (ours + 0.05) / (theirs - 0.05) + 0.0005
    assert lo <= med <= hi


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed")
def test_a_conv_layer_against_torch():
    out = subprocess.run([sys.executable, str(SCRIPT), "D3", "--rounds", "2", "--per-round", "1",
                          "--batch", "4"], capture_output=True, text=True, timeout=600, check=True).stdout
    assert out.startswith("D3 Conv fwd+bwd, batch 4, 2 rounds x 1 samples a side: tinygan "), out
    assert re.search(r"per-round ratio median [\d.]+ \(range [\d.]+-[\d.]+\)", out), out


def test_refuses_an_unknown_workload():
    r = subprocess.run([sys.executable, str(SCRIPT), "G9"], capture_output=True, text=True)
    assert r.returncode != 0 and "invalid choice: 'G9'" in r.stderr


@pytest.mark.parametrize("args, message", [(["--rounds", "0"], "--rounds and --per-round must be >= 1"),
                                           (["--batch", "0"], "--batch and --threads must be >= 1")])
def test_refuses_bad_counts(args, message):
    r = subprocess.run([sys.executable, str(SCRIPT), "gan", *args], capture_output=True, text=True)
    assert r.returncode != 0 and message in r.stderr
