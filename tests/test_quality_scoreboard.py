"""The quality scoreboard (`python -m bench.quality`): its commands are real CLI commands, its
tables compute mean and min–max right from stored records, and --quick runs the whole pipeline
(train, eval, record, table) without touching a tracked file."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import quality  # noqa: E402
from tinygan.cli import build_parser  # noqa: E402
from tinygan.gans import registry  # noqa: E402


@pytest.mark.parametrize("name,command", [(n, c) for n, c, _ in quality.ENTRIES])
def test_every_entry_is_a_command_the_cli_takes(name, command):
    import tinygan.gans  # noqa: F401  (registers the variants)
    args = build_parser().parse_args(quality.train_words(command, 2, "/tmp/x", quick=False)[1:])
    registry.get(args.variant)
    assert args.seed == 2 and args.out == "/tmp/x" and args.json
    assert (args.data in quality.TOY_DATA) == quality.is_toy(command)
    quick = build_parser().parse_args(quality.train_words(command, 0, "/tmp/x", quick=True)[1:])
    assert quick.steps == quality.QUICK_STEPS           # the last --steps wins


def test_seeds_and_entries_arguments():
    assert quality.parse_seeds("3") == [0, 1, 2]
    assert quality.parse_seeds("0,4") == [0, 4]
    assert quality.parse_seeds("2,") == [2] and quality.parse_seeds("2,2,1") == [2, 1]
    r = subprocess.run([sys.executable, "-m", "bench.quality", "--only", "dcgan,nope"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown entry nope" in r.stderr


def _record(entry, seed, **extra):
    base = dict(entry=entry, seed=seed, quick=False, command=f"cmd --seed {seed}",
                date=f"2026-12-0{seed + 1}T10:00:00+00:00", load_before=0.2, cpu_model="Intel(R) Xeon(R) CPU",
                cpu_count=2, usable_cores=2, blas="MKL", tinygan="0.1.0", commit="abc",
                uncommitted_changes=False, train_seconds=50.0 + 10 * seed)
    base.update(extra)
    return base


def _store(results, rec):
    folder = os.path.join(results, rec["entry"])
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"seed{rec['seed']}.json"), "w") as f:
        json.dump(rec, f)


def test_spread_is_mean_and_extremes():
    assert quality.spread([1.0, 2.0, 6.0], 2) == "3.00 (1.00–6.00)"
    assert quality.spread([10, 10, 9], None) == "9.7 (9–10)"     # counts: integer extremes
    assert quality.spread([8, 8], None) == "8" and quality.spread([4.25], 1) == "4.2"


def _row(table, entry):
    """The table row of `entry` (a stored one carries an anchor for links: #sb-ENTRY)."""
    return next(line for line in table.splitlines()
                if line.startswith((f"| {entry} |", f'| <a id="sb-{entry}"></a>{entry} |')))


def test_table_from_stored_records(tmp_path):
    results, pictures = str(tmp_path / "results"), str(tmp_path / "pictures")
    # dcgan: FD 100 / 110 / 130, classes 10 / 10 / 9, largest class 20 % / 25 % / 40 %
    hists = [[20] + [10] * 8, [25] + [15] * 5, [40] + [10] * 6]   # 100 samples each
    for seed, (fd, hist) in enumerate(zip([100.0, 110.0, 130.0], hists)):
        _store(results, _record("dcgan", seed, eval=dict(frechet_distance=fd, inception_score=4.0,
                                                          classes_present=9 if seed == 2 else 10,
                                                          class_histogram=hist)))
    for seed, agree in enumerate([0.93, 0.97]):
        _store(results, _record("cgan", seed, eval=dict(frechet_distance=50.0, inception_score=8.0,
                                                         classes_present=10, class_histogram=[10] * 10,
                                                         class_agreement=agree)))
    _store(results, _record("sgan", 0, eval=dict(frechet_distance=80.0, inception_score=6.0,
                                                  classes_present=10, class_histogram=[10] * 10,
                                                  test_accuracy=0.9123, baseline_test_accuracy=0.78)))
    _store(results, _record("gan", 0, error="train exit 1: boom"))          # failures are not scores
    for seed, reached in enumerate([8, 6]):
        # high-quality samples per mode: 2 modes with one in seed 0, 5 in seed 1 (records from
        # before `modes_with_hq_sample` existed: the table counts it from these)
        _store(results, _record("gan-ring8", seed, load_before=1.5,
                                eval=dict(modes_covered=0, modes_total=8, modes_reached=reached,
                                          high_quality_pct=1.25, median_distance_in_std=30.0,
                                          samples_per_mode=[3, 1] + [0] * 6 if seed == 0 else [1] * 5 + [0] * 3)))
    os.makedirs(pictures)
    open(os.path.join(pictures, "dcgan.png"), "wb").close()
    doc = tmp_path / "results.md"
    doc.write_text(f"before\n{quality.BEGIN}\nold table\n{quality.END}\nafter\n", encoding="utf-8")

    table = quality.publish(results, str(doc), pictures)
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith("after\n") and "old table" not in text
    assert table in text

    cells = [c.strip() for c in _row(table, "dcgan").split("|")[1:-1]]
    # an unconditional run has no class agreement: its cell stays empty
    assert cells[2:12] == ["0, 1, 2", "113.3 (100.0–130.0)", "4.00", "9.7 (9–10)",
                           "28.3 (20.0–40.0)", "", "", "", "60 (50–70)", "M1, 2026-12-01 to 2026-12-03"]
    assert cells[12] == "[seed 0](pictures/dcgan.png)"
    cgan = [c.strip() for c in _row(table, "cgan").split("|")[1:-1]]
    assert cgan[2] == "0, 1" and cgan[7] == "95.0 (93.0–97.0)" and cgan[8:10] == ["", ""]
    # a classifier's held-out accuracy, and the labels-only baseline's, in their own columns
    sgan = [c.strip() for c in _row(table, "sgan").split("|")[1:-1]]
    assert sgan[7:10] == ["", "91.2", "78.0"]
    assert "not run yet: `python -m bench.quality --only gan`" in _row(table, "gan")
    toy = [c.strip() for c in _row(table, "gan-ring8").split("|")[1:-1]]
    # a busy machine (load average >= 1 when a run started) marks the time with *
    assert toy[2:9] == ["0, 1", "0", "7.0 (6–8)", "3.5 (2–5)", "1.2", "30.0", "55 (50–60)*"]
    assert toy[10] == ""                                 # no picture stored for it
    assert "M1 = Intel Xeon, 2 cores, MKL" in table and "tinygan 0.1.0 at abc" in table


def test_publish_refuses_a_doc_without_markers(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one"):
        quality.publish(str(tmp_path / "none"), str(doc), str(tmp_path))


def _tracked_state():
    """Digests of everything the scoreboard may write outside --out when not --quick."""
    paths = [quality.DOC]
    for top in (quality.RESULTS, quality.PICTURES):
        for dirpath, _, files in os.walk(top):
            paths += [os.path.join(dirpath, f) for f in files]
    return {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in sorted(paths)}


def test_quick_runs_the_pipeline_and_touches_nothing_tracked(tmp_path):
    before = _tracked_state()
    r = subprocess.run([sys.executable, "-m", "bench.quality", "--quick", "--only", "gan-ring8,ae",
                        "--seeds", "1", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _tracked_state() == before
    for entry in ("gan-ring8", "ae"):
        with open(tmp_path / "results" / entry / "seed0.json") as f:
            rec = json.load(f)
        assert rec["quick"] and rec["steps"] == quality.QUICK_STEPS and rec["train_seconds"] > 0
        assert rec["eval"]["step"] == quality.QUICK_STEPS
        assert (tmp_path / "pictures" / f"{entry}.png").stat().st_size > 0
    assert rec["eval"]["n_samples"] == quality.QUICK_EVAL_N and 1 <= rec["eval"]["classes_present"] <= 10
    table = (tmp_path / "results.md").read_text(encoding="utf-8")
    assert _row(table, "ae").split("|")[3].strip() == "0"
    assert "[seed 0](pictures/gan-ring8.png)" in _row(table, "gan-ring8")
    assert "2 of 2 runs" in r.stdout


def test_rescore_scores_a_stored_run_again_and_keeps_its_training_fields(tmp_path):
    from tinygan.cli import main
    run = str(tmp_path / "run")
    assert main(["train", "gan", "--data", "ring8", "--steps", "2", "--batch-size", "8",
                 "--out", run, "--quiet"]) == 0
    env = dict(commit="fedcba9876")
    failed = _record("gan-ring8", 0, command="tinygan train gan --data ring8 --seed 0", run=run,
                     steps=2, error="eval exit -9: ")       # killed for memory while scoring
    rec = quality.rescore_one(failed, env)
    assert "error" not in rec
    assert rec["eval"]["n_samples"] == quality.TOY_EVAL_N and rec["eval"]["step"] == 2
    assert rec["eval_commit"] == "fedcba9876" and rec["eval_date"] > rec["date"]
    assert rec["commit"] == "abc" and rec["train_seconds"] == 50.0    # the training's, kept
    assert rec["eval_command"] == f"tinygan eval {run} --n {quality.TOY_EVAL_N}"
    gone = quality.rescore_one(dict(failed, run=str(tmp_path / "deleted")), env)
    assert gone["error"].startswith("no run folder to score")
    untrained = quality.rescore_one(_record("gan-ring8", 1, command="x", error="train exit 1: boom"), env)
    assert untrained["error"] == "no run folder to score (the training failed); before: train exit 1: boom"
    r = subprocess.run([sys.executable, "-m", "bench.quality", "--rescore", "--quick"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--quick stores none" in r.stderr
