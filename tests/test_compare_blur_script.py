"""scripts/compare_blur.py (the AE/VAE/GAN blur study): its sharpness measure and its held-out
split, and a short end-to-end run of the held-out reconstruction protocol."""
import importlib.util
import pathlib

import numpy as np

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "compare_blur.py"


def load_script():
    spec = importlib.util.spec_from_file_location("compare_blur", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sharpness_ranks_a_blurred_digit_lower():
    blur = load_script()
    x = -np.ones((1, 1, 8, 8))
    x[..., 2:6, 3:5] = 1.0
    blurred = x.copy()
    blurred[..., 1:7, 1:7] = (x[..., :6, 1:7] + x[..., 1:7, 1:7] + x[..., 2:8, 1:7]) / 3
    s, b = blur.sharpness(x), blur.sharpness(blurred)
    assert s["binary"] == 1.0 and b["binary"] < 1.0
    assert s["edge"] > b["edge"]


def test_heldout_split_holds_out_50_per_class():
    blur = load_script()
    from tinygan.data import load
    (xtr, ytr), (xte, yte) = blur.heldout_split(load("mnist-subset"))
    assert len(xte) == 500 and np.all(np.bincount(yte) == 50) and len(xtr) == 4500


def test_heldout_reconstruction_runs_and_writes_its_files(tmp_path):
    blur = load_script()
    r = blur.heldout_reconstruction("ae", steps=2, batch_size=16, config=dict(z_dim=2, hidden=(8,)),
                                    out=str(tmp_path))
    assert r["variant"] == "ae" and r["steps"] == 2
    for key in ("recon_png", "samples_png"):
        assert pathlib.Path(r[key]).stat().st_size > 0
    assert np.isfinite(r["mse"]) and 0 <= r["classifier_acc_recon"] <= 1
    from tinygan.checkpoint import build_from_checkpoint       # the saved model loads back
    model, meta, _ = build_from_checkpoint(str(tmp_path / "ae.npz"))
    assert meta["variant"] == "ae" and model.z_dim == 2


def test_sharpness_of_sample_files_from_the_command_line(tmp_path, offline):
    import json
    import subprocess
    import sys
    x = -np.ones((3, 1, 8, 8), np.float32)
    x[..., 2:6, 3:5] = 1.0
    np.savez(tmp_path / "s.npz", samples=x)
    out = subprocess.run([sys.executable, str(SCRIPT), "--sharpness", str(tmp_path / "s.npz")],
                         capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert list(rows[0]) == ["real digits"] and 0.05 < rows[0]["real digits"]["edge"] < 0.2
    assert rows[1][str(tmp_path / "s.npz")] == load_script().sharpness(x)
