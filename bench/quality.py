"""The quality scoreboard: `python -m bench.quality` reproduces every number of the variant
tables in docs/results.md.

Each entry of ENTRIES is a command a user types (`tinygan train ...`).  For each entry and seed
the scoreboard runs that command exactly — `python -m tinygan` is the `tinygan` entry point; only
`--seed S`, the output folder (`--out`, under runs/scoreboard/ by default) and `--quiet --json`
are added — then scores the run with `tinygan eval RUN` (digits: the default 2,000 samples;
2-D toys: `--n 2500`, the PacGAN protocol's sample count).  One JSON record per (entry, seed)
goes to bench/results/quality/ENTRY/seedS.json (a rerun replaces it), with the two commands,
the metrics, the training time, the machine, the date, the git commit and tinygan's version.
The tables between the `scoreboard` markers of docs/results.md are then rewritten from ALL
stored records — so `--only VARIANT` reruns one entry and refreshes every table — and the
sample grid of each entry's seed 0 is copied to docs/scoreboard/ENTRY.png.

  python -m bench.quality                    # every entry, seeds 0 1 2 (hours on a CPU)
  python -m bench.quality --only dcgan,gan-ring8 --seeds 3   # 3 = seeds 0 1 2; or 0,4
  python -m bench.quality --list             # the entries, their commands, what is stored
  python -m bench.quality --render           # rewrite the docs from the stored records only
  python -m bench.quality --rescore --only lapgan --seeds 2,   # score a stored run again (its
                                             # eval failed); trains nothing
  python -m bench.quality --quick            # 3 steps each, into a temporary folder: a smoke
                                             # test of the whole pipeline; touches nothing tracked

Spread: every cell is the mean over seeds with the smallest and largest seed in brackets
(min–max: with three seeds a standard deviation says little more and hides the extremes).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from .shapes import machine_info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results", "quality")
DOC = os.path.join(ROOT, "docs", "results.md")
PICTURES = os.path.join(ROOT, "docs", "scoreboard")
BEGIN, END = "<!-- scoreboard:begin -->", "<!-- scoreboard:end -->"
QUICK_STEPS, QUICK_EVAL_N = 3, 200
TOY_EVAL_N = 2500

# (entry, command, what it is for).  The command is the one the README or the variant's
# documentation gives; image entries without --data train on the default MNIST.
ENTRIES = [
    ("dcgan", "tinygan train dcgan", "the main job"),
    ("gan", "tinygan train gan", "MLP nets on digits"),
    ("cgan", "tinygan train cgan", "MLP nets, one-hot labels, projection D"),
    ("acgan", "tinygan train acgan", "DCGAN nets, auxiliary class head"),
    ("sngan", "tinygan train sngan", "DCGAN nets, spectral norm, hinge, n_dis 5"),
    ("ebgan", "tinygan train ebgan", "autoencoder D, margin, pulling-away term"),
    ("began", "tinygan train began", "autoencoder D, L1, k_t control"),
    ("lsgan", "tinygan train lsgan", "DCGAN nets, least squares"),
    ("wgan", "tinygan train wgan", "DCGAN nets, weight clipping, n_critic 5"),
    ("wgan_gp", "tinygan train wgan_gp", "DCGAN nets, gradient penalty, n_critic 5"),
    ("infogan", "tinygan train infogan --steps 3000", "the paper's nets"),
    ("lapgan", "tinygan train lapgan --steps 3000 --batch-size 32 --set ngf=32 --set ndf=32 "
               "--set optimizer=adam --set lr=2e-4 --set lr0=1e-3",
     "quarter-width residual nets: the paper's take 9 s a step here"),
    ("pggan", "tinygan train pggan --steps 3500 --batch-size 32 --set fmaps=48 --set n_critic=2",
     "progressive 4→32, 250 steps a phase, then 32×32 to the end"),
    ("ae", "tinygan train ae", "baseline: samples of N(0, I) through the decoder"),
    ("vae", "tinygan train vae", "MLPs, Bernoulli likelihood"),
    ("aae", "tinygan train aae", "MLPs, Gaussian prior, z 8-D"),
    ("bigan", "tinygan train bigan", "MLPs on joint (x, z)"),
    ("sgan", "tinygan train sgan", "semi-supervised: 100 labels, 1,000 digits held out"),
    ("gan-ring8", "tinygan train gan --data ring8", "MLP nets"),
    ("gan-grid25", "tinygan train gan --data grid25", ""),
    ("cgan-ring8", "tinygan train cgan --data ring8", "label = mode"),
    ("lsgan-ring8", "tinygan train lsgan --data ring8", ""),
    ("wgan-ring8", "tinygan train wgan --data ring8", ""),
    ("unrolled-ring8", "tinygan train unrolled --data ring8", "K = 5 unrolled D steps"),
    ("wgan_gp-ring8", "tinygan train wgan_gp --data ring8", "the authors' toy recipe, 20,000 critic steps"),
    ("wgan_gp-grid25", "tinygan train wgan_gp --data grid25",
     "the toy recipe with grid25's own: points / 2.828, 256-unit nets, lr 5e-4, 20,000 critic steps"),
    ("pix2pix", "tinygan train pix2pix", "edges2mnist: a digit's outline → the digit"),
    ("cyclegan", "tinygan train cyclegan", "mnist2thick: digits ↔ thick digits"),
    ("srgan", "tinygan train srgan", "mnist_x4: 8×8 → 32×32"),
    ("cogan", "tinygan train cogan --data digits-negative", "digits ↔ negatives, no pair seen"),
    ("cogan-edges", "tinygan train cogan --data digits-edges", "digits ↔ edges, no pair seen"),
]
TOY_DATA = ("ring8", "grid25")
PAIR_DATA = ("digits-negative", "digits-edges")

# (header, metric, decimals); decimals None: a count, whose extremes print as integers
IMAGE_COLUMNS = [("FD ↓", "frechet_distance", 1), ("IS ↑", "inception_score", 2),
                 ("classes present", "classes_present", None), ("largest class %", "largest_class_pct", 1),
                 ("class agreement % (conditional)", "class_agreement_pct", 1),
                 ("held-out accuracy % (sgan)", "test_accuracy_pct", 1),
                 ("same D on the labels alone %", "baseline_test_accuracy_pct", 1)]
# Image-to-image entries, scored by the variant's own `tinygan eval` on held-out pairs.
TRANSLATION_COLUMNS = [("held-out PSNR dB ↑", "psnr", 2), ("held-out L1 ↓", "l1", 4),
                       ("digit accuracy on outputs %", "digit_accuracy_output_pct", 1),
                       ("on real targets %", "digit_accuracy_target_pct", 1),
                       ("ratio %", "accuracy_ratio_pct", 1)]
TRANSLATORS = ("pix2pix", "cyclegan", "srgan")
TOY_COLUMNS = [("modes covered", "modes_covered", None), ("modes reached", "modes_reached", None),
               ("modes with a high-quality sample", "modes_with_hq_sample", None),
               ("high quality %", "high_quality_pct", 1), ("median distance (std)", "median_distance_in_std", 1)]
PAIR_COLUMNS = [("pixel agreement % ↑", "pixel_agreement_pct", 1),
                ("unrelated pairs %", "pixel_agreement_unpaired_pct", 1),
                ("ink IoU ↑", "ink_iou", 2), ("unrelated ink IoU", "ink_iou_unpaired", 2)]


def data_of(command: str) -> str | None:
    words = shlex.split(command)
    return words[words.index("--data") + 1] if "--data" in words else None


def is_toy(command: str) -> bool:
    return data_of(command) in TOY_DATA


def kind(command: str) -> str:
    """Which table an entry's scores go to: "toy", "pairs" (CoGAN's two domains),
    "translation" or "image" (digits)."""
    if is_toy(command):
        return "toy"
    if data_of(command) in PAIR_DATA:
        return "pairs"
    return "translation" if shlex.split(command)[2] in TRANSLATORS else "image"


def train_words(command: str, seed: int, out: str, quick: bool) -> list[str]:
    """The documented command as run: its own words, then the seed, the folder, --quiet --json.
    --quick replaces the step count (argparse keeps the last --steps)."""
    words = shlex.split(command)
    assert words[:2] == ["tinygan", "train"], command
    words += ["--seed", str(seed), "--out", out, "--quiet", "--json"]
    if quick:
        words += ["--steps", str(QUICK_STEPS)]
    return words


def eval_words(command: str, run: str, quick: bool) -> list[str]:
    words = ["tinygan", "eval", run]
    if quick:
        return words + ["--n", str(QUICK_EVAL_N)]
    return words + (["--n", str(TOY_EVAL_N)] if is_toy(command) else [])


def _tinygan(words: list[str]) -> subprocess.CompletedProcess:
    """`tinygan ARGS` through this interpreter, from the repository root (so the checkout's
    tinygan is the one that runs, installed or not)."""
    return subprocess.run([sys.executable, "-m", "tinygan"] + words[1:], cwd=ROOT,
                          capture_output=True, text=True)


def environment() -> dict:
    """Where and with what the runs happen: the machine, the BLAS, the code's version."""
    probe = subprocess.run([sys.executable, "-c", "import tinygan, numpy; from tinygan.kernels import blas; "
                            "print(tinygan.__version__); print(numpy.__version__); print(blas.describe())"],
                           cwd=ROOT, capture_output=True, text=True)
    version, numpy, products = (probe.stdout.splitlines() + ["?"] * 3)[:3]

    def git(*args):
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    code_changed = git("status", "--porcelain", "--", "tinygan", "kernels")
    return dict(machine_info(), blas=products, python=sys.version.split()[0], numpy=numpy,
                tinygan=version, commit=git("rev-parse", "--short=10", "HEAD"),
                uncommitted_changes=bool(code_changed))


def run_one(name: str, command: str, seed: int, out_dir: str, quick: bool, env: dict) -> dict:
    """Train and evaluate one seed of one entry; the JSON record (or one with an "error")."""
    run = os.path.join(out_dir, name, f"seed{seed}")
    shutil.rmtree(run, ignore_errors=True)                  # a rerun replaces the run
    if run.startswith(ROOT + os.sep):   # the records are committed: no checkout's own path in them
        run = os.path.relpath(run, ROOT)
    record = dict(entry=name, seed=seed, quick=quick, command=f"{command} --seed {seed}",
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  load_before=round(os.getloadavg()[0], 2), **env)
    words = train_words(command, seed, run, quick)
    record["train_command"] = shlex.join(words)
    t0 = time.perf_counter()
    p = _tinygan(words)
    record["wall_seconds"] = round(time.perf_counter() - t0, 1)
    record["load_after"] = round(os.getloadavg()[0], 2)
    if p.returncode != 0:
        return dict(record, error=f"train exit {p.returncode}: {p.stderr.strip()[-500:]}")
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    record.update(train_seconds=summary["seconds"], steps=summary["steps"], data=summary["data"],
                  samples=summary["samples"], run=run,
                  # the full MNIST when it can be downloaded, else the 5,000 shipped digits
                  data_note="the 5,000 shipped digits" if "shipped" in p.stderr else None)
    words = eval_words(command, run, quick)
    record["eval_command"] = shlex.join(words)
    p = _tinygan(words)
    if p.returncode != 0:
        return dict(record, error=f"eval exit {p.returncode}: {p.stderr.strip()[-500:]}")
    record["eval"] = json.loads(p.stdout)
    return record


def rescore_one(record: dict, env: dict) -> dict:
    """A stored record's run scored again, nothing trained (its eval failed — killed for memory,
    say — or the metrics changed): the training fields stay; the eval, its date and the commit
    that scored it are new."""
    run = record.get("run")
    if not run or not os.path.isdir(os.path.join(ROOT, run)):     # keep what went wrong before
        before = f"; before: {record['error']}" if record.get("error") else ""
        return dict(record, error=f"no run folder to score ({run or 'the training failed'}){before}")
    words = eval_words(record["command"], run, record.get("quick", False))
    record = {k: v for k, v in record.items() if k != "error"}
    record.update(eval_command=shlex.join(words), eval_commit=env["commit"],
                  eval_date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    p = _tinygan(words)
    if p.returncode != 0:
        return dict(record, error=f"eval exit {p.returncode}: {p.stderr.strip()[-500:]}")
    record["eval"] = json.loads(p.stdout)
    return record


# ---------------------------------------------------------------------------------------
# Tables from stored records

def load_records(results: str) -> dict:
    """{entry: [record, ...] sorted by seed} of every stored, successful record."""
    out = {}
    for name, _, _ in ENTRIES:
        folder = os.path.join(results, name)
        if not os.path.isdir(folder):
            continue
        recs = []
        for f in sorted(os.listdir(folder)):
            if f.endswith(".json"):
                with open(os.path.join(folder, f)) as fh:
                    r = json.load(fh)
                if "error" not in r:
                    recs.append(r)
        if recs:
            out[name] = sorted(recs, key=lambda r: r["seed"])
    return out


def metric(record: dict, key: str) -> float | None:
    """The record's value of a column; None where the run has no such metric (class
    agreement exists for conditional variants only)."""
    e = record["eval"]
    if key == "largest_class_pct":
        h = e["class_histogram"]
        return 100.0 * max(h) / sum(h)
    if key == "class_agreement_pct":
        return None if "class_agreement" not in e else 100.0 * float(e["class_agreement"])
    if key == "modes_with_hq_sample" and key not in e:   # records from before the count
        per_mode = e.get("samples_per_mode")             # (high-quality samples per mode)
        return None if per_mode is None else float(sum(c > 0 for c in per_mode))
    if key.endswith("_pct") and key not in e:          # a fraction shown as a percentage
        return None if e.get(key[:-4]) is None else 100.0 * float(e[key[:-4]])
    return float(e[key])


def spread(values: list[float], decimals: int | None) -> str:
    """mean (min–max); one value alone; all equal: that value.  Counts (decimals None): the
    mean to one decimal, the extremes as the integers they are."""
    fmt = f"{{:.{1 if decimals is None else decimals}f}}".format
    ext = (lambda v: f"{v:.0f}") if decimals is None else fmt
    lo, hi, mean = min(values), max(values), statistics.fmean(values)
    if len(values) == 1 or lo == hi:
        return ext(mean)
    return f"{fmt(mean)} ({ext(lo)}–{ext(hi)})"


def machine_label(r: dict) -> str:
    cpu = r["cpu_model"].replace("(R)", "").replace("(TM)", "").replace(" CPU", "")
    return f"{' '.join(cpu.split())}, {r['usable_cores']} cores, {r['blas']}"


def render(records: dict, pictures: dict) -> str:
    """The Markdown between the markers: a digits table, a 2-D toys table, a two-domain table
    (CoGAN's pixel agreement, once it has an entry run), the machines."""
    machines: list[str] = []
    lines = []
    tables = [("Digits (MNIST)", IMAGE_COLUMNS, "image"), ("2-D toys", TOY_COLUMNS, "toy"),
              ("Image-to-image (held-out pairs)", TRANSLATION_COLUMNS, "translation"),
              ("Two domains, no pair seen (G2(z) against T(G1(z)))", PAIR_COLUMNS, "pairs")]
    for title, columns, table_kind in tables:
        lines += ["", f"**{title}**", "",
                  "| entry | command (`--seed S` added) | seeds | " + " | ".join(c[0] for c in columns)
                  + " | training s | run on | samples |",
                  "|---" * (len(columns) + 6) + "|"]
        for name, command, note in ENTRIES:
            if kind(command) != table_kind:
                continue
            cmd = f"`{command}`" + (f" ({note})" if note else "")
            recs = records.get(name)
            if not recs:
                lines.append(f"| {name} | {cmd} | — | " + " | ".join("" for _ in columns)
                             + f" | | not run yet: `python -m bench.quality --only {name}` | |")
                continue
            values = [[v for v in (metric(r, key) for r in recs) if v is not None] for _, key, _ in columns]
            cells = [spread(v, d) if v else "" for v, (_, _, d) in zip(values, columns)]
            busy = any(r["load_before"] >= 1.0 for r in recs)
            seconds = spread([r["train_seconds"] for r in recs], 0) + ("*" if busy else "")
            for r in recs:
                if machine_label(r) not in machines:
                    machines.append(machine_label(r))
            where = ", ".join(sorted({f"M{machines.index(machine_label(r)) + 1}" for r in recs}))
            dates = sorted({r["date"][:10] for r in recs})
            when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
            pic = f"[seed {recs[0]['seed']}]({pictures[name]})" if name in pictures else ""
            lines.append(f"| <a id=\"sb-{name}\"></a>{name} | {cmd} | {', '.join(str(r['seed']) for r in recs)} | "
                         + " | ".join(cells) + f" | {seconds} | {where}, {when} | {pic} |")
    versions = sorted({f"tinygan {r['tinygan']} at {r['commit']}"
                       + (" (+ uncommitted changes)" if r["uncommitted_changes"] else "")
                       for recs in records.values() for r in recs})
    lines += ["", "Machines: " + "; ".join(f"M{i + 1} = {m}" for i, m in enumerate(machines)) + "."
              if machines else "", "Code: " + "; ".join(versions) + "." if versions else ""]
    return "\n".join(lines).strip("\n")


def write_doc(doc: str, table: str) -> None:
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"python -m bench.quality: {doc} needs one {BEGIN} ... {END} pair")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    with open(doc, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n<!-- written by `python -m bench.quality`: edit bench/quality.py, "
                f"not this table -->\n{table}\n{END}{tail}")


def publish(results: str, doc: str, pictures_dir: str) -> str:
    """Rewrite the tables of `doc` from every record under `results`; returns the table."""
    records = load_records(results)
    pictures = {}
    for name, recs in records.items():
        png = os.path.join(pictures_dir, f"{name}.png")
        if os.path.exists(png):
            pictures[name] = os.path.relpath(png, os.path.dirname(doc))
    table = render(records, pictures)
    write_doc(doc, table)
    return table


# ---------------------------------------------------------------------------------------

def parse_seeds(text: str) -> list[int]:
    """`3` = seeds 0, 1, 2; `0,4` = seeds 0 and 4; `2,` = seed 2 alone (a list of one)."""
    try:
        seeds = list(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or a comma-separated list of seeds, got {text!r}") from None
    if "," not in text and len(seeds) == 1:
        if seeds[0] < 1:
            raise argparse.ArgumentTypeError(f"a seed count must be >= 1, got {seeds[0]}")
        return list(range(seeds[0]))
    return seeds


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated entries (default: all; --list names them)")
    ap.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2],
                    help="N (seeds 0..N-1) or a comma-separated list, 2, for seed 2 alone (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help=f"{QUICK_STEPS} steps each, eval on {QUICK_EVAL_N} samples, everything under "
                         "--out (default a temporary folder): the pipeline's smoke test")
    ap.add_argument("--out", default=None,
                    help="the runs' folder (default runs/scoreboard; with --quick a new temporary one)")
    ap.add_argument("--list", action="store_true", help="print the entries and their stored seeds")
    ap.add_argument("--render", action="store_true", help="rewrite the docs from the stored records; train nothing")
    ap.add_argument("--rescore", action="store_true",
                    help="score the stored records' runs again (an eval that failed), then rewrite the "
                         "docs; train nothing")
    args = ap.parse_args(argv)
    if args.rescore and args.quick:
        ap.error("--rescore scores the stored records; --quick stores none")
    names = [n for n, _, _ in ENTRIES]
    args.entries = names if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [n for n in args.entries if n not in names]
    if unknown:
        ap.error(f"unknown entry {', '.join(unknown)}; known: {', '.join(names)}")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        stored = load_records(RESULTS)
        for name, command, _ in ENTRIES:
            seeds = ",".join(str(r["seed"]) for r in stored.get(name, [])) or "-"
            print(f"{name:<15} seeds stored: {seeds:<6} {command}")
        return 0
    if args.render:
        print(publish(RESULTS, DOC, PICTURES))
        print(f"wrote {os.path.relpath(DOC, ROOT)}")
        return 0
    if args.quick:
        out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="scoreboard-quick-"))
        os.makedirs(out, exist_ok=True)
        results, doc, pictures = (os.path.join(out, "results"), os.path.join(out, "results.md"),
                                  os.path.join(out, "pictures"))
        with open(doc, "w", encoding="utf-8") as f:
            f.write(f"{BEGIN}\n{END}\n")
    else:
        out = args.out or os.path.join(ROOT, "runs", "scoreboard")
        results, doc, pictures = RESULTS, DOC, PICTURES
    out = os.path.abspath(out)
    env = environment()
    commands = dict((n, c) for n, c, _ in ENTRIES)
    jobs = [(n, s) for n in args.entries for s in args.seeds]
    failed = []
    start = time.perf_counter()
    for i, (name, seed) in enumerate(jobs, 1):
        path = os.path.join(results, name, f"seed{seed}.json")
        if args.rescore:
            if not os.path.isfile(path):
                failed.append(f"{name} seed {seed}")
                print(f"[{i}/{len(jobs)}] {name} seed {seed}: no record to rescore", flush=True)
                continue
            with open(path) as f:
                rec = json.load(f)
            print(f"[{i}/{len(jobs)}] {name} seed {seed}: tinygan eval {rec.get('run')}", flush=True)
            rec = rescore_one(rec, env)
        else:
            print(f"[{i}/{len(jobs)}] {name} seed {seed}: {commands[name]} --seed {seed}", flush=True)
            rec = run_one(name, commands[name], seed, out, args.quick, env)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(rec, f, indent=1)
        if "error" in rec:
            failed.append(f"{name} seed {seed}")
            print(f"    FAILED: {rec['error']}", flush=True)
            continue
        e = rec["eval"]
        score = (f"{e['modes_covered']}/{e['modes_total']} covered, {e['modes_reached']} reached"
                 if "modes_covered" in e else
                 f"held-out PSNR {e['psnr']:.2f} dB, L1 {e['l1']:.4f}"
                 + (f", accuracy ratio {e['accuracy_ratio']:.3f}" if e.get("accuracy_ratio") else "")
                 if "psnr" in e else
                 f"pixel agreement {e['pixel_agreement']:.4f} (unrelated pairs {e['pixel_agreement_unpaired']:.4f})"
                 if "pixel_agreement" in e else
                 f"FD {e['frechet_distance']:.1f}, IS {e['inception_score']:.2f}, "
                 f"{e['classes_present']}/10 classes, largest {metric(rec, 'largest_class_pct'):.1f} %")
        print(f"    {rec['train_seconds']:.1f} s training ({rec['wall_seconds']:.1f} s with start-up): {score}",
              flush=True)
        if seed == 0 and rec.get("samples"):
            os.makedirs(pictures, exist_ok=True)
            shutil.copyfile(os.path.join(ROOT, rec["samples"]), os.path.join(pictures, f"{name}.png"))
    table = publish(results, doc, pictures)
    print(table)
    print(f"{len(jobs) - len(failed)} of {len(jobs)} runs in {time.perf_counter() - start:.0f} s; "
          f"records in {results}, tables in {doc}, runs in {out}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
