"""The benchmark driver (`bench/`): a quick run reports every workload with sane numbers, and
torch never enters the process that times tinygan."""
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import bench  # noqa: E402
from bench import shapes  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None


def _positive(v):
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def _check_report(path, only=None, with_torch=False):
    with open(path) as f:
        report = json.load(f)
    rows = {r["name"]: r for r in report["results"] if r["group"] != "totals"}
    expected = {w["name"] for w in shapes.workloads(4, only)}
    assert set(rows) == expected
    for name, r in rows.items():
        assert _positive(r["ours_fast_ms"]), (name, r)
        if r["ours_ref_ms"] is not None:
            assert _positive(r["ours_ref_ms"]) and _positive(r["fast_over_ref"]), (name, r)
        if with_torch and r.get("kind") == "gemms":       # a floor: ours only, over torch's whole
            assert r["torch_ms"] is None and _positive(r["fast_over_torch"]), (name, r)
        elif with_torch:
            assert _positive(r["torch_ms"]), (name, r)
        if r["flops"]:
            assert _positive(r["gflops_fast"]), (name, r)
    assert report["meta"]["batch"] == 4 and report["meta"]["cpu_count"] >= 1
    assert os.path.isfile(os.path.splitext(path)[0] + ".md")
    return report


def test_quick_run_without_torch_reports_every_workload(tmp_path, capsys):
    out = str(tmp_path / "r.json")
    torch_before = "torch" in sys.modules       # other test files may cross-check with torch
    assert bench.main(["--quick", "--no-torch", "--quiet", "--out", out]) == 0
    report = _check_report(out)
    assert torch_before or "torch" not in sys.modules   # the timing process never imports torch
    mem = report["memory"]["dcgan"]["ours"]
    assert mem["torch_imported"] is False and mem["peak_mib"] >= mem["base_mib"] > 0
    # every kernel of reference.py has a workload
    assert report["kernels_without_workload"] == []
    table = capsys.readouterr().out
    assert "| D2 Conv fwd+bwd |" in table and "8 DCGAN convs fwd+bwd" in table


def test_default_report_goes_to_the_users_runs_folder(tmp_path, monkeypatch):
    """Without --out the report lands in ./runs/bench/, never over the committed bench/results/."""
    committed = os.path.join(ROOT, "bench", "results", "latest.json")
    before = open(committed, "rb").read() if os.path.exists(committed) else None
    monkeypatch.chdir(tmp_path)
    assert bench.main(["--quick", "--no-torch", "--only", "kernels", "--quiet"]) == 0
    assert (tmp_path / "runs" / "bench" / "latest.json").is_file()
    assert (tmp_path / "runs" / "bench" / "latest.md").is_file()
    assert (open(committed, "rb").read() if os.path.exists(committed) else None) == before


def test_flop_counts():
    d2 = shapes.conv_layer("D2")
    assert shapes.conv_flops(d2, 64) == 2 * 64 * 128 * 8 * 8 * 64 * 4 * 4
    g2 = shapes.conv_layer("G2")                  # a ConvT counts over its input pixels
    assert shapes.conv_flops(g2, 64) == 2 * 64 * 256 * 4 * 4 * 128 * 4 * 4
    assert 20e9 < shapes.step_flops("dcgan", 64) < 30e9      # 26.3 GFLOP at batch 64
    assert shapes.step_flops("wgan_gp", 64) is None


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed")
def test_quick_run_with_torch_in_a_worker(tmp_path):
    out = str(tmp_path / "t.json")
    # in a child process, so that this test's check of sys.modules sees only the driver
    code = ("import sys, bench; r = bench.main(['--quick', '--quiet', '--only', 'layers', '--out', "
            f"{out!r}]); assert 'torch' not in sys.modules; sys.exit(r)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    report = _check_report(out, only="layers", with_torch=True)
    assert report["meta"]["torch"]["threads"] == 2


def test_match_keeps_only_the_named_workloads(tmp_path):
    out = str(tmp_path / "m.json")
    assert bench.main(["--quick", "--no-torch", "--quiet", "--no-memory", "--only", "layers",
                       "--match", "InstanceNorm", "--out", out]) == 0
    with open(out) as f:
        names = [r["name"] for r in json.load(f)["results"] if r["group"] != "totals"]
    assert names == [w["name"] for w in shapes.workloads(4, "layers") if "InstanceNorm" in w["name"]]
    assert len(names) == len(shapes.I2I_LAYERS)
    assert bench.main(["--quick", "--no-torch", "--quiet", "--match", "no such workload"]) == 2
