"""The `tinygan` command: train, sample, eval, translate, interpolate, arithmetic, variants, bench, gradcheck.

Every user error (unknown variant or dataset, bad option, corrupt checkpoint, no GPU) ends in
one line on stderr and exit status 2; nothing in the output directory is overwritten.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import traceback
import warnings

from .arguments import add_checkpoint_argument, add_device_argument, path


class _Parser(argparse.ArgumentParser):
    """argparse, with its own errors (a missing argument, `--steps 2.5`) as one line too."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _every(text: str) -> int:
    """--sample-every / --checkpoint-every: a whole number of steps, at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of steps >= 1, got {text!r}")
    return int(text)


def _data(text: str) -> str:
    """--data NAME, with the path of folder:PATH, paired:PATH and unpaired:PATH expanded."""
    for prefix in ("folder:", "paired:", "unpaired:"):
        if text.startswith(prefix):
            return prefix + path(text[len(prefix):])
    return text


def _options(pairs) -> dict:
    """`--set KEY=VALUE` pairs as {KEY: "VALUE"}.  The text is read by the variant, as the type
    of the option it names (tinygan/gans/options.py), so a bad value fails naming the option."""
    opts = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        opts[k.strip()] = v.strip()
    return opts


def _train_command(args, out: str, steps: int) -> str:
    """The command line that continues the run in `out` to `steps` steps, ready to paste."""
    words = ["tinygan", "train", args.variant, "--out", out, "--resume", "--steps", str(steps)]
    for flag, value in (("--data-dir", args.data_dir), ("--sample-every", args.sample_every),
                        ("--checkpoint-every", args.checkpoint_every)):
        if value is not None:            # not kept in the run's metadata: say them again
            words += [flag, str(value)]
    if args.device != "cpu":
        words += ["--device", args.device]
    return " ".join(shlex.quote(w) for w in words)


def _run_report(args, s: dict) -> str:
    """What a run leaves behind and what to do next, for a person to read."""
    out, q = s["out"], shlex.quote(s["out"])
    losses = ", ".join(f"{k} {v:.3f}" for k, v in s["last"].items())
    head = (f"{s['variant']} on {s['data']}: step {s['steps']} of {s['target_steps']}, "
            f"{s['steps'] - s['start']} steps in {s['seconds']:.1f} s"
            + (f" ({losses})" if losses else ""))
    lines = [head]
    for label, path in (("samples", s["samples"]), ("loss plot", s["plot"]),
                        ("checkpoint", s["checkpoint"])):
        if path:
            lines.append(f"  {label:<11} {path}")
    more = s["target_steps"] if s["interrupted"] else 2 * s["target_steps"]
    from .data import is_two_domain
    if is_two_domain(s["data"]):           # a translator: it draws nothing from noise
        first = f"  tinygan translate {q} --input IMAGE_OR_FOLDER --out OUT --grid"
    else:
        first = f"  tinygan sample {q} --n 64 --out {shlex.quote(os.path.join(out, 'sample.png'))}"
    lines += ["next:", first,
              f"  tinygan eval {q}",
              f"  {_train_command(args, out, more)}"
              + ("    # finish the run" if s["interrupted"] else "    # train further")]
    return "\n".join(lines)


def cmd_train(args) -> int:
    from .train import RunExists, train
    try:
        summary = train(args.variant, data=args.data, steps=args.steps, batch_size=args.batch_size,
                        seed=args.seed, device=args.device, out=args.out, resume=args.resume,
                        sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                        data_dir=args.data_dir, options=_options(args.set),
                        progress=not args.quiet)
    except RunExists as e:               # train() names its Python arguments; say the flags
        raise RunExists(e.out, f"{e.out} already holds a run: continue it with "
                               f"`tinygan train {args.variant} --out {shlex.quote(e.out)} --resume`, "
                               f"or start a new one with another --out") from None
    out, steps = summary["out"], summary["target_steps"]
    if _ranks() and _ranks()[0] != 0:    # under mpiexec rank 0 alone reports
        return 130 if summary["interrupted"] else 0
    if args.json:
        print(json.dumps(summary))
    elif args.resume and summary["steps"] == summary["start"]:
        print(f"{out} already finished its {steps} steps; train further with "
              f"`{_train_command(args, out, 2 * steps)}`")
        return 0
    else:
        print(_run_report(args, summary))
    if summary["interrupted"]:
        print(f"interrupted: checkpoint saved at step {summary['steps']} of {steps}; continue "
              f"with `{_train_command(args, out, steps)}`", file=sys.stderr)
        return 130
    return 0


def cmd_sample(args) -> int:
    import numpy as np

    from . import backend, viz
    from .autograd import Tensor
    from .checkpoint import build_from_checkpoint
    from .metrics import asked_labels
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if not args.out.endswith((".png", ".npz")):
        raise ValueError(f"--out must end with .png or .npz, got {args.out!r}")
    backend.manual_seed(args.seed)
    variant, meta, _ = build_from_checkpoint(args.checkpoint, device=args.device)
    labels = asked_labels(variant, args.n)       # conditional: classes 0..K-1, cycling
    samples = variant.sample(args.n, y=None if labels is None else
                             Tensor(backend.to_device(labels, args.device)))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.out.endswith(".npz"):
        # The asked-for classes travel with the samples, so that anyone can score a
        # conditional generator's class agreement with a classifier of their own.
        arrays = {"samples": samples.astype(np.float32)}
        if labels is not None:
            arrays["labels"] = labels
        tmp = args.out + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, args.out)
    elif variant.is_toy:
        viz.scatter_2d(samples, args.out)
    else:              # conditional: one column per class, as the training grids
        viz.save_image_grid(samples, args.out, nrow=variant.num_classes if labels is not None else None)
    note = ""
    if labels is not None:
        note = (f" (classes 0..{variant.num_classes - 1} in turn, saved as 'labels')"
                if args.out.endswith(".npz") else " (column k: class k)")
    print(f"wrote {args.n} samples of {meta['variant']} to {args.out}{note}")
    return 0


def cmd_eval(args) -> int:
    from .metrics import evaluate_checkpoint
    print(json.dumps(evaluate_checkpoint(args.checkpoint, n=args.n, seed=args.seed,
                                         device=args.device), indent=1))
    return 0


def _show(value) -> str:
    """A default as `--set` takes it: true, none, 512,512, 0.0002."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


KIND_NAMES = {"image": "images", "toy": "2-D toys"}


def variant_details(cls) -> list[str]:
    """A variant's default steps and batch size, and its options (default, type, range), as
    lines; a value its recipe for one kind of data (or one data set) changes is shown with
    that kind's (or data set's) value."""
    from .train import default_batch_size, default_steps
    kinds = [k for k in ("image", "toy") if k in cls.data_kinds]
    on = {k: f" on {KIND_NAMES[k]}" for k in kinds}
    # data sets with an entry of their own (grid25 beside the toys' recipe): `name` on its kind
    named = {d: "toy" for d in {*cls.recipes, *cls.default_steps, *cls.default_batch_size}
             if d not in KIND_NAMES}
    on.update({d: f" on {d}" for d in named})
    kinds_and_data = kinds + sorted(named)
    kind_of = {**{k: k for k in kinds}, **named}

    def steps_of(x):
        return default_steps(cls, kind_of[x], x)

    lines = ["default --steps: " + ", ".join(f"{steps_of(x)}{on[x]}" for x in kinds_and_data
                                             if x in kinds or x in cls.default_steps)]
    n_critic = {x: int(cls.defaults_for(kind_of[x], x).get("n_critic", 1)) for x in kinds_and_data}
    if any(n > 1 for n in n_critic.values()):  # say what a step counts
        lines.append("  (critic steps: G moves every n_critic-th, so "
                     + ", ".join(f"{steps_of(x) // n_critic[x]} generator steps{on[x]}"
                                 for x in kinds_and_data
                                 if x in kinds or x in cls.default_steps or "n_critic" in cls.recipes.get(x, {}))
                     + ")")
    lines.append("default --batch-size: "
                 + ", ".join(f"{default_batch_size(cls, kind_of[x], x)}{on[x]}" for x in kinds_and_data
                             if x in kinds or x in cls.default_batch_size))
    lines.append("options (--set KEY=VALUE):")
    specs = cls.options()
    pairs = []
    for key, value in cls.defaults.items():
        text = f"{key}={_show(value)}"
        other = [f"{KIND_NAMES.get(k, k)}: {_show(cls.recipes[k][key])}" for k in kinds_and_data
                 if key in cls.recipes.get(k, {}) and cls.recipes[k][key] != value]
        if other:
            text += f" ({'; '.join(other)})"
        pairs.append((text, specs[key].describe()))
    w = max(len(a) for a, _ in pairs)
    return lines + [f"  {a:<{w}}  {b}" for a, b in pairs]


def cmd_variants(args) -> int:
    from .gans import VARIANTS
    rows = [(name, cls.paper, cls.summary) for name, cls in sorted(VARIANTS.items())]
    w = max(len(r[0]) for r in rows)
    for name, paper, summary in rows:
        print(f"{name:<{w}}  {paper}\n{'':<{w}}  {summary}")
        if args.verbose:
            for line in variant_details(VARIANTS[name]):
                print(f"{'':<{w}}  {line}")
    return 0


class _TrainHelp(argparse.Action):
    """`tinygan train VARIANT --help`: the usual help, then that variant's steps and options."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from .gans import VARIANTS
        parser.print_help()
        name = getattr(namespace, "variant", None)
        print()
        if name in VARIANTS:
            print(f"{name}: {VARIANTS[name].paper}")
            print("\n".join(variant_details(VARIANTS[name])))
        else:
            print("`tinygan train VARIANT --help` adds that variant's default --steps and options")
        parser.exit()


def cmd_bench(args) -> int:
    # bench/ lives beside tinygan/ in the source checkout (it is not installed with the
    # package): make it importable from an editable install run anywhere.
    try:
        import bench
    except ImportError:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if not os.path.isfile(os.path.join(root, "bench", "__init__.py")):
            raise FileNotFoundError("tinygan bench needs the source checkout (bench/ beside "
                                    "tinygan/): run it from a clone of the repository") from None
        sys.path.insert(0, root)
        import bench
    rest = [a for a in args.rest if a != "--"]
    return int(bench.main(rest) or 0)


def cmd_gradcheck(args) -> int:
    from .selfcheck import run_gradchecks
    ok = run_gradchecks(verbose=True)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tinygan", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN variant", add_help=False)
    t.add_argument("-h", "--help", action=_TrainHelp,
                   help="show this help (after VARIANT: with its default steps and options)")
    t.add_argument("variant", help="a name from `tinygan variants`")
    t.add_argument("--data", type=_data, default=None, help="mnist (default), fashion-mnist, "
                   "cifar10, folder:PATH (64×64; folder:PATH?size=32 for 32×32), ring8, grid25, "
                   "swissroll; image-to-image: edges2mnist, mnist2thick, mnist_x4, paired:PATH, "
                   "unpaired:PATH (the variant's task by default)")
    t.add_argument("--data-dir", type=path, default=None, help="where the dataset files are")
    t.add_argument("--steps", type=int, default=None,
                   help="training steps, each one minibatch update of D (for wgan/wgan_gp a "
                        "critic step; G moves every n_critic steps) (default: the variant's, "
                        "e.g. 600 for dcgan on images; `tinygan train VARIANT --help` shows it)")
    t.add_argument("--batch-size", type=int, default=None,
                   help="examples per step (default: the variant's for the data, 64 unless "
                        "`tinygan train VARIANT --help` says otherwise)")
    t.add_argument("--seed", type=int, default=0,
                   help="seeds the weights, noise and data order: the same seed, the same run "
                        "(default 0)")
    t.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where to train (default cpu; cuda needs CuPy and a GPU)")
    t.add_argument("--out", type=path, default=None, help="run directory (default runs/VARIANT)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--sample-every", type=_every, default=None,
                   help="steps between sample grids (default: a tenth of --steps)")
    t.add_argument("--checkpoint-every", type=_every, default=None,
                   help="steps between checkpoints (default: a quarter of --steps, at most 1000)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a variant default, e.g. --set lr=1e-4 (repeatable; see "
                        "`tinygan train VARIANT --help` for each option's type and range)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="end with the run's summary as one JSON line")
    t.set_defaults(fn=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a checkpoint")
    add_checkpoint_argument(s)
    s.add_argument("--n", type=int, default=64, help="how many samples (default 64)")
    s.add_argument("--out", type=path, required=True,
                   help="FILE.png (a grid) or FILE.npz (raw samples; conditional variants add "
                        "the asked-for classes as 'labels')")
    s.add_argument("--seed", type=int, default=0, help="seeds the latent noise (default 0)")
    add_device_argument(s)
    s.set_defaults(fn=cmd_sample)

    e = sub.add_parser("eval", help="quality metrics of a checkpoint, as JSON")
    add_checkpoint_argument(e)
    e.add_argument("--n", type=int, default=2000,
                   help="how many samples to score, at least 2 (default 2000)")
    e.add_argument("--seed", type=int, default=0, help="seeds the latent noise (default 0)")
    add_device_argument(e, "the nets")
    e.set_defaults(fn=cmd_eval)

    v = sub.add_parser("variants", help="list the GAN variants, their papers and defaults")
    v.add_argument("-v", "--verbose", action="store_true",
                   help="also each variant's default steps and options (default, type, range)")
    v.set_defaults(fn=cmd_variants)

    from .latent import (add_arithmetic_arguments, add_interpolate_arguments, cmd_arithmetic,
                         cmd_interpolate)
    i = sub.add_parser("interpolate", help="a PNG strip walking the latent space (slerp or linear)")
    add_interpolate_arguments(i)
    i.set_defaults(fn=cmd_interpolate)
    a = sub.add_parser("arithmetic", help="vector arithmetic over z: G(mean a - mean b + mean c)")
    add_arithmetic_arguments(a)
    a.set_defaults(fn=cmd_arithmetic)

    from .translate import add_translate_arguments, cmd_translate
    tr = sub.add_parser("translate", help="apply a trained pix2pix/cyclegan/srgan to your images")
    add_translate_arguments(tr)
    tr.set_defaults(fn=cmd_translate)

    b = sub.add_parser("bench", help="run the benchmarks (python -m bench)")
    b.add_argument("rest", nargs=argparse.REMAINDER,
                   help="bench's own options (`tinygan bench --help` lists them)")
    b.set_defaults(fn=cmd_bench)

    g = sub.add_parser("gradcheck", help="finite-difference check of every op, 1st and 2nd order")
    g.set_defaults(fn=cmd_gradcheck)
    return p


def _ranks() -> tuple | None:
    """(rank, number of ranks) when started by mpiexec with more than one process, else None
    (without importing mpi4py in a single process)."""
    from . import distributed
    if not distributed.launched() or distributed.size() == 1:
        return None
    return distributed.rank(), distributed.size()


def _fail(command: str, e: BaseException, code: int, details: str = "") -> int:
    """Report `e` in one line (then `details`, a traceback); under mpiexec name the rank, and
    stop every rank: the others may be waiting for this one in a collective call, and would
    wait forever.  The line goes first: MPI_Abort may cut off what the launcher has not yet
    forwarded, and it is the line that says which rank failed and why."""
    ranks = _ranks()
    where = f"rank {ranks[0]} of {ranks[1]}: " if ranks else ""
    print(f"tinygan {command}: {where}{e}", file=sys.stderr, flush=True)
    if details:
        print(details, file=sys.stderr, end="", flush=True)
    if ranks:
        from . import distributed
        distributed.abort(code)
    return code


def _warning_line(message, category, filename, lineno, file=None, line=None) -> str:
    """A warning as the command line shows it: one line, no source file or code."""
    return f"tinygan: {message}\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    warnings.formatwarning = _warning_line
    if argv[:1] == ["bench"]:
        # Every later word belongs to bench's own parser; argparse's REMAINDER would try to
        # read a leading `--quick` as one of ours.
        argv = ["bench", "--", *argv[1:]]
    args = build_parser().parse_args(argv)
    if _ranks() and _ranks()[0] != 0:
        warnings.simplefilter("ignore")    # under mpiexec rank 0 speaks for all: no N copies
    from .checkpoint import CheckpointError
    from .train import RunExists, TrainingDiverged
    try:
        return args.fn(args)
    except (ValueError, TypeError, FileNotFoundError, CheckpointError, RunExists,
            RuntimeError) as e:
        if isinstance(e, TrainingDiverged):
            return _fail(args.command, e, 3)
        if os.environ.get("TINYGAN_DEBUG") and not _ranks():
            raise
        return _fail(args.command, e, 2)
    except BaseException as e:
        # Under mpiexec any other failure (a bug, Ctrl-C outside the training loop) must stop
        # every rank too; in one process it propagates as it always did.
        if isinstance(e, SystemExit) or not _ranks():
            raise
        return _fail(args.command, f"{type(e).__name__}: {e}".rstrip(": "), 1,
                     details=traceback.format_exc())


if __name__ == "__main__":
    sys.exit(main())
