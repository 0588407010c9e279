"""scripts/compare_tricks.py: the with-vs-without protocol runs end to end on a toy (mode
metrics) and on digits (classifier metrics), and its JSON holds every run's numbers."""
import importlib.util
import json
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "compare_tricks.py"


def load_script():
    spec = importlib.util.spec_from_file_location("compare_tricks", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("data, configs, keys", [
    ("ring8", ["plain:", "ls:label_smoothing=0.9"], ("modes_covered", "modes_reached", "modes_total")),
    ("mnist", ["plain:", "vbn:virtual_bn=true"], ("classes_present", "largest_class_pct", "frechet_distance")),
])
def test_compare_tricks_writes_every_run(tmp_path, capsys, data, configs, keys):
    out = tmp_path / "r.json"
    load_script().main(["--data", data, "--steps", "2", "--seeds", "0", "1", "--json", str(out),
                        "--configs", *configs])
    report = json.loads(out.read_text())
    assert report["data"] == data and report["steps"] == 2
    assert list(report["results"]) == [c.split(":")[0] for c in configs]
    for name, res in report["results"].items():
        assert [r["seed"] for r in res["runs"]] == [0, 1]
        for r in res["runs"]:
            assert all(k in r for k in keys)
        first = keys[0]
        assert res["mean"][first] == pytest.approx(sum(r[first] for r in res["runs"]) / 2)
    assert report["results"]["ls" if data == "ring8" else "vbn"]["config"] in (
        {"label_smoothing": 0.9}, {"virtual_bn": True})
    printed = capsys.readouterr().out
    assert "total wall time" in printed and configs[1].split(":")[0] in printed
