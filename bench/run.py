"""The driver: argument parsing, alternating rounds, the table and the JSON report."""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

from . import shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Beside the training runs, in the user's folder: a benchmark never rewrites the report committed
# in bench/results/ (refresh that one on purpose: --out bench/results/latest.json).
DEFAULT_OUT = os.path.join("runs", "bench", "latest.json")

# Per side and workload: how long one sample lasts at least, how long all samples of one side
# may take, and the bounds on their number.  --quick shrinks everything.
FULL = dict(min_sample_s={"kernels": 0.02, "layers": 0.03, "steps": 0.0},
            budget_s={"kernels": 0.25, "layers": 0.4, "steps": 5.0},
            min_n=3, max_n=15, batch=64, ref_steps=True,
            # Steps are timed over ~15 s per workload, long enough for this machine's speed to
            # drift (±20-50 % within minutes): more, shorter rounds spread the drift evenly
            # over the sides.
            rounds={"kernels": 3, "layers": 3, "steps": 5})
QUICK = dict(min_sample_s={"kernels": 0.0, "layers": 0.0, "steps": 0.0},
             budget_s={"kernels": 0.0, "layers": 0.0, "steps": 0.0},
             min_n=1, max_n=1, rounds={"kernels": 1, "layers": 1, "steps": 1}, batch=4,
             ref_steps=False)
# For a short lease on a GPU, where timings barely drift: one round, fewer and shorter samples.
BRIEF = dict(FULL, min_sample_s={"kernels": 0.005, "layers": 0.01, "steps": 0.0},
             budget_s={"kernels": 0.05, "layers": 0.1, "steps": 1.0}, min_n=3, max_n=7,
             rounds={"kernels": 1, "layers": 1, "steps": 1})
SWITCH_PAUSE_S = 0.02     # lets the other side's spinning BLAS/OpenMP threads go to sleep


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__import__("bench").__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny batch, 2 samples: a smoke run (tests)")
    ap.add_argument("--brief", action="store_true",
                    help="one round of fewer, shorter samples (a short GPU lease)")
    ap.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    ap.add_argument("--only", choices=["kernels", "layers", "steps"], help="one group of workloads")
    ap.add_argument("--match", metavar="TEXT", help="only the workloads whose name contains TEXT")
    ap.add_argument("--out", default=DEFAULT_OUT, help="the JSON report (default runs/bench/latest.json; a .md table is written beside it)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default 64; 4 with --quick)")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch's thread count (default 2)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------------------
# The PyTorch worker process

def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def torch_available() -> bool:
    """Whether torch can be imported — asked of a child process, never of this one."""
    r = subprocess.run([sys.executable, "-c", "import importlib.util as u; "
                        "print(u.find_spec('torch') is not None)"],
                       capture_output=True, text=True, env=_child_env())
    return r.stdout.strip() == "True"


class TorchWorker:
    def __init__(self, device: str, threads: int):
        self.p = subprocess.Popen([sys.executable, "-m", "bench.torch_worker", "--serve"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  cwd=ROOT, env=_child_env())
        self.info = self.ask(op="hello", device=device, threads=threads)

    def ask(self, **req) -> dict:
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker died (exit code {self.p.wait()})")
        rep = json.loads(line)
        if "error" in rep:
            raise RuntimeError(f"PyTorch worker: {rep['error']}")
        return rep

    def close(self):
        try:
            self.p.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.p.stdin.flush()
            self.p.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()


def measure_memory(side: str, variant: str, batch: int, device: str, threads: int) -> dict:
    """One step's peak RSS in a fresh process (`side` = "ours" | "torch")."""
    mod = "bench.ours" if side == "ours" else "bench.torch_worker"
    cmd = [sys.executable, "-m", mod, "--memory", variant, "--batch", str(batch), "--device", device]
    if side == "torch":
        cmd += ["--threads", str(threads)]
    env = dict(_child_env(), **shapes.MALLOC_ENV)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# Measuring one workload

def _n_samples(cfg, group, t_per_sample):
    n = math.ceil(cfg["budget_s"][group] / max(t_per_sample, 1e-9))
    return max(cfg["min_n"], min(cfg["max_n"], n))


def measure(w, cfg, device, worker, with_ref, kernels):
    """Medians (ms) of fast tinygan, reference tinygan and PyTorch, in alternating rounds."""
    from . import ours
    group = w["group"]
    sides = {}
    kernels.set_mode("fast")
    fn, sync = ours.make(w, device)
    inner, t = shapes.calibrate(fn, sync, cfg["min_sample_s"][group])
    sides["fast"] = dict(fn=fn, sync=sync, inner=inner, n=_n_samples(cfg, group, t * inner), times=[])
    gemms = w["kind"] == "gemms"             # BLAS only: no reference mode, no PyTorch side
    if with_ref and not gemms and (group != "steps" or cfg["ref_steps"]):
        kernels.set_mode("reference")
        inner, t = shapes.calibrate(fn, sync, cfg["min_sample_s"][group])
        sides["reference"] = dict(fn=fn, sync=sync, inner=inner, n=_n_samples(cfg, group, t * inner),
                                  times=[])
    torch_error = None
    if worker is not None and not gemms:
        try:
            rep = worker.ask(op="calibrate", spec=w, min_sample_s=cfg["min_sample_s"][group])
            sides["torch"] = dict(inner=rep["inner"], n=_n_samples(cfg, group, rep["t"] * rep["inner"]),
                                  times=[])
        except RuntimeError as e:
            torch_error = str(e)
    rounds = cfg["rounds"][group]
    for r in range(rounds):
        for name, s in sides.items():
            k = math.ceil(s["n"] / rounds)
            if name == "torch":
                s["times"] += worker.ask(op="sample", n=k)["times"]
            else:
                kernels.set_mode(name)
                s["times"] += shapes.sample(s["fn"], s["sync"], k, s["inner"])
            if len(sides) > 1:
                time.sleep(SWITCH_PAUSE_S)
    kernels.set_mode("fast")
    ms = {name: 1e3 * shapes.median(s["times"]) for name, s in sides.items()}
    row = {k: v for k, v in w.items() if k not in ("params",)}
    row.update(ours_fast_ms=ms["fast"], ours_ref_ms=ms.get("reference"), torch_ms=ms.get("torch"),
               samples={name: len(s["times"]) for name, s in sides.items()},
               inner={name: s["inner"] for name, s in sides.items()})
    if torch_error:
        row["torch_error"] = torch_error
    row["fast_over_ref"] = ms["fast"] / ms["reference"] if "reference" in ms else None
    row["fast_over_torch"] = ms["fast"] / ms["torch"] if "torch" in ms else None
    f = w.get("flops")
    row["gflops_fast"] = f / (ms["fast"] * 1e6) if f else None
    row["gflops_torch"] = f / (ms["torch"] * 1e6) if f and "torch" in ms else None
    return row


# ---------------------------------------------------------------------------------------
# Report

def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows) -> str:
    head = ("workload", "shape / batch", "ours ms", "ref ms", "torch ms", "ours/ref", "ours/torch",
            "GFLOP/s", "torch GFLOP/s")
    lines, group = [], None
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            lines.append(f"| **{group}** |" + " |" * (len(head) - 1))
        lines.append("| " + " | ".join([
            r["name"], r.get("shape", "") or "", _fmt(r["ours_fast_ms"], ".3f"), _fmt(r["ours_ref_ms"], ".3f"),
            _fmt(r["torch_ms"], ".3f"), _fmt(r["fast_over_ref"], ".2f"), _fmt(r["fast_over_torch"], ".2f"),
            _fmt(r["gflops_fast"], ".1f"), _fmt(r["gflops_torch"], ".1f")]) + " |")
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + lines)


def totals(rows) -> list:
    """Sums that docs/performance.md quotes: the 8 convs and the BN/activation layers fwd+bwd."""
    out = []
    for title, pick in (("8 DCGAN convs fwd+bwd", lambda r: r.get("kind") in ("conv", "convT")),
                        ("BN + activations fwd+bwd", lambda r: r.get("kind") == "act")):
        sel = [r for r in rows if r["group"] == "layers" and r["pass_"] == "fwd+bwd" and pick(r)]
        if not sel:
            continue
        t = {}
        for key in ("ours_fast_ms", "ours_ref_ms", "torch_ms"):
            vals = [r[key] for r in sel]
            t[key] = sum(vals) if all(v is not None for v in vals) else None
        flops = sum(r["flops"] or 0 for r in sel) or None
        out.append(dict(group="totals", name=title, shape=f"{len(sel)} layers", flops=flops, **t,
                        fast_over_ref=t["ours_fast_ms"] / t["ours_ref_ms"] if t["ours_ref_ms"] else None,
                        fast_over_torch=t["ours_fast_ms"] / t["torch_ms"] if t["torch_ms"] else None,
                        gflops_fast=flops / (t["ours_fast_ms"] * 1e6) if flops else None,
                        gflops_torch=flops / (t["torch_ms"] * 1e6) if flops and t["torch_ms"] else None))
    return out


def meta(args, batch, fast, torch_info, device) -> dict:
    import numba
    import numpy as np
    blas = None
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name')} {deps.get('version')}"
    except Exception:
        pass
    try:
        layer = numba.threading_layer()
    except ValueError:                   # no parallel Numba kernel has run in this process
        layer = None
    from tinygan.kernels import blas as products
    return dict(shapes.machine_info(), date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                command="python -m bench " + " ".join(args), python=platform.python_version(),
                numpy=np.__version__, numba=numba.__version__, blas=blas, numba_threading_layer=layer,
                products=products.describe(),
                batch=batch, device=device, dtype="float32", fast_kernels=fast, torch=torch_info)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    cfg = dict(QUICK if args.quick else BRIEF if args.brief else FULL)
    batch = args.batch or cfg["batch"]
    t_start = time.perf_counter()
    from tqdm import tqdm
    from tinygan import kernels
    from . import ours
    if args.device == "cuda":
        import tinygan
        if not tinygan.cuda_available():
            print("bench: --device cuda needs CuPy and a working GPU", file=sys.stderr)
            return 2
    specs = shapes.workloads(batch, args.only)
    if args.match:
        specs = [w for w in specs if args.match in w["name"]]
        if not specs:
            print(f"bench: no workload name contains {args.match!r}", file=sys.stderr)
            return 2
    if args.device == "cuda":            # the GEMM replays time the host BLAS: not this device's
        specs = [w for w in specs if w["kind"] != "gemms"]
    fast = ours.fast_kernels(args.device)
    with_ref = bool(fast)                # with no fast kernel registered, fast IS reference
    worker, torch_info = None, None
    if not args.no_torch:
        if torch_available():
            worker = TorchWorker(args.device, args.threads)
            torch_info = worker.info
        else:
            print("bench: PyTorch is not installed: no comparison with it", file=sys.stderr)
    rows = []
    try:
        bar = tqdm(specs, desc="bench", unit="workload", disable=args.quiet, file=sys.stderr)
        for w in bar:
            bar.set_postfix_str(w["name"])
            rows.append(measure(w, cfg, args.device, worker, with_ref, kernels))
    finally:
        if worker is not None:
            worker.close()
    rows += totals(rows)
    for r in rows:            # a GEMM floor, against PyTorch's whole step / layer fwd+bwd
        if r.get("kind") != "gemms":
            continue
        if r["group"] == "steps":
            whole = next((q for q in rows if q.get("kind") == "step" and q["variant"] == r["variant"]
                          and not q.get("torch_g_inputs") and q["torch_ms"]), None)
        else:
            whole = next((q for q in rows if q["group"] == "layers" and q.get("kind") != "gemms"
                          and q.get("layer") == r["layer"] and q["pass_"] == "fwd+bwd"
                          and q["torch_ms"]), None)
        if whole:
            r["fast_over_torch"] = r["ours_fast_ms"] / whole["torch_ms"]
            r["note"] = f"ours/torch: to PyTorch's whole {'step' if r['group'] == 'steps' else 'layer'}"
    memory = {}
    if not args.no_memory and args.only in (None, "steps"):
        for v in (("dcgan",) if args.quick else shapes.STEPS):
            memory[v] = {"ours": measure_memory("ours", v, batch, args.device, args.threads)}
            if worker is not None:
                memory[v]["torch"] = measure_memory("torch", v, batch, args.device, args.threads)
                for key in ("step_mib", "total_mib"):
                    a, b = memory[v]["ours"].get(key), memory[v]["torch"].get(key)
                    memory[v]["ours_over_torch_" + key[:-4]] = a / b if a is not None and b else None
    uncovered = sorted(set(ours.reference_kernel_names()) - shapes.kernel_names_covered())
    report = dict(meta=meta(argv, batch, fast, torch_info, args.device), results=rows, memory=memory,
                  kernels_without_workload=uncovered, wall_s=time.perf_counter() - t_start)
    md = render(report)
    print(md)
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write(md + "\n")
    print(f"\nwrote {out} ({report['wall_s']:.0f} s)")
    return 0


def render(report) -> str:
    m = report["meta"]
    torch = m["torch"]
    lines = [f"`{m['command']}` — {m['date']}, {m['cpu_model']} ({m['usable_cores']} cores), "
             f"batch {m['batch']} {m['dtype']} on {m['device']}; NumPy {m['numpy']} ({m['blas']}), "
             f"Numba {m['numba']} ({m['numba_threading_layer']} threads)"
             + (f", PyTorch {torch['torch']} ({torch['threads']} threads)" if torch else "")
             + f". tinygan's matrix products: {m.get('products', 'np.matmul')}.",
             f"Fast kernels registered: {', '.join(m['fast_kernels']) or 'none (fast = reference)'}. "
             "Times are medians in ms; ratios are time ratios (< 1: ours is faster).", "",
             table(report["results"])]
    if report["memory"]:
        lines += ["", "Peak memory of a step, MiB: *total* = peak RSS during a step minus the RSS "
                  "after the imports (parameters, gradients, optimizer state, activations, buffer "
                  "pools, memory the allocator keeps); *step* = the rise over the warmed-up "
                  "process:", "",
                  "| step | ours total | torch total | ours/torch total | ours step | torch step "
                  "| ours/torch step | ours (tracemalloc) |", "|---|---|---|---|---|---|---|---|"]
        for v, d in report["memory"].items():
            o, t = d.get("ours", {}), d.get("torch", {})
            lines.append(f"| {v} | {_fmt(o.get('total_mib'), '.1f')} | {_fmt(t.get('total_mib'), '.1f')} | "
                         f"{_fmt(d.get('ours_over_torch_total'), '.2f')} | "
                         f"{_fmt(o.get('step_mib'), '.1f')} | {_fmt(t.get('step_mib'), '.1f')} | "
                         f"{_fmt(d.get('ours_over_torch_step'), '.2f')} | "
                         f"{_fmt(o.get('tracemalloc_step_mib'), '.1f')} |")
    if report["kernels_without_workload"]:
        lines += ["", "Kernels in reference.py with no workload yet: " + ", ".join(report["kernels_without_workload"])]
    return "\n".join(lines)
