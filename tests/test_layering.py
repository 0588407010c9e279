"""The layering rule of docs/internals.md, checked on the source: arrows point down only.

Every module under tinygan/ and kernels/ is parsed with `ast`; each import it makes (at the
top or inside a function: a lazy import is still a dependency) is mapped to the layer of the
module it names, and an import of a layer above the importer's own fails the test with the
module, the import and both layers.  Two narrower rules from the same page ride along: only
`functional/`'s ops and `optim.py`'s updates call kernels, and autograd `Function`s are defined
in `functional/` (and autograd.py itself) only.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Top first.  A module may import modules of its own layer and of every layer below it.
# A name stands for that module and everything inside it (tinygan.gans: every variant);
# "tinygan" is the package's own __init__.py only.
LAYERS = [
    ("entry points", ("tinygan.cli", "tinygan.__main__", "tinygan.demo")),
    ("training loop", ("tinygan.train",)),
    ("tools over a trained model", ("tinygan.metrics", "tinygan.latent", "tinygan.translate")),
    ("command-line arguments", ("tinygan.arguments",)),
    ("checkpoints (and rebuilding a variant from one)", ("tinygan.checkpoint",)),
    ("GAN variants", ("tinygan.gans",)),
    ("data, the metrics' classifier, pictures", ("tinygan.data", "tinygan.classifier",
                                                 "tinygan.viz", "tinygan.graph_dot")),
    ("the torch-like top-level namespace", ("tinygan",)),
    ("optimizers", ("tinygan.optim",)),
    ("nn", ("tinygan.nn",)),
    ("finite-difference checks, tensor factories, tinygan.cuda",
     ("tinygan.gradcheck", "tinygan.selfcheck", "tinygan.tensor_factories", "tinygan.cuda")),
    ("functional", ("tinygan.functional",)),
    ("autograd", ("tinygan.autograd",)),
    ("kernels", ("kernels",)),
    ("communication between processes (MPI, NCCL)", ("tinygan.distributed",)),
    ("backend", ("tinygan.backend",)),
]

# The one upward arrow, and why it is not a layering mistake: a Tensor's methods (a + b,
# x.sum(), x.exp()) *are* functional's ops, as torch.Tensor's methods are torch's; autograd.py
# reaches them through `_ops()`, which imports the package on first use.
ALLOWED_UPWARD = {("tinygan.autograd", "tinygan.functional"):
                  "Tensor's operator and reduction methods dispatch to functional's ops"}

KERNEL_CALLERS = ("kernels", "functional", "optimizers")     # layer names
FUNCTION_DEFINERS = ("functional", "autograd")


# -- the checker ------------------------------------------------------------------------------
def layer_of(module: str) -> int | None:
    """Index in LAYERS of `module` (0 = top), by its longest listed prefix; None if unlisted."""
    best = None
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            hit = module == name or (name != "tinygan" and module.startswith(name + "."))
            if hit and (best is None or len(name) > len(best[1])):
                best = (i, name)
    return None if best is None else best[0]


def _canonical(name: str) -> str:
    """tinygan.kernels is the top-level kernels/ package installed under tinygan."""
    if name == "tinygan.kernels" or name.startswith("tinygan.kernels."):
        return name[len("tinygan."):]
    return name


def imports_of(module: str, is_package: bool, source: str, known: set) -> list:
    """(line, imported module) for every import of a tinygan or kernels module in `source`."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, _canonical(a.name)) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            base = _canonical(base)
            for a in node.names:    # `from tinygan import nn` imports the module tinygan.nn
                sub = _canonical(f"{base}.{a.name}")
                out.append((node.lineno, sub if sub in known else base))
    return sorted({(line, name) for line, name in out if name.split(".")[0] in ("tinygan", "kernels")})


def defines_function(source: str) -> list:
    """(line, class name) of every class deriving from autograd's Function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            for b in node.bases:
                if (isinstance(b, ast.Name) and b.id == "Function") or \
                        (isinstance(b, ast.Attribute) and b.attr == "Function"):
                    found.append((node.lineno, node.name))
    return found


def violations(modules: dict, known: set | None = None) -> list:
    """Every broken rule in `modules` = {name: (is_package, source)}, one message each;
    `known`: the module names an import may name (default: those of `modules`)."""
    known = set(modules) if known is None else known
    out = []
    for module, (is_package, source) in sorted(modules.items()):
        src = layer_of(module)
        if src is None:
            out.append(f"{module} is in no layer: add it to LAYERS in tests/test_layering.py "
                       f"(and to the diagram in docs/internals.md)")
            continue
        src_name = LAYERS[src][0]
        for line, target in imports_of(module, is_package, source, known):
            dst = layer_of(target)
            if dst is None:
                continue                      # reported once, as a module of its own
            dst_name = LAYERS[dst][0]
            if dst < src and not any(module.startswith(a) and target.startswith(b)
                                     for a, b in ALLOWED_UPWARD):
                out.append(f"{module} imports {target} (line {line}): layer '{src_name}' may "
                           f"not import layer '{dst_name}', which lies above it")
            elif dst_name == "kernels" and src_name not in KERNEL_CALLERS:
                out.append(f"{module} imports {target} (line {line}): layer '{src_name}' may "
                           f"not call layer 'kernels' directly; only functional's ops and "
                           f"optim's updates do (add a differentiable op to functional/)")
        if src_name not in FUNCTION_DEFINERS:
            for line, cls in defines_function(source):
                out.append(f"{module} defines the autograd Function {cls} (line {line}) in "
                           f"layer '{src_name}': differentiable ops live in functional/")
    return out


def repository_modules() -> dict:
    modules = {}
    for top in ("tinygan", "kernels"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = (is_package, path.read_text(encoding="utf-8"))
    return modules


# -- the repository obeys it ------------------------------------------------------------------
def test_no_module_imports_a_layer_above_its_own():
    modules = repository_modules()
    assert len(modules) > 60 and "tinygan.gans.gan" in modules and "kernels.reference" in modules
    found = violations(modules)
    assert not found, "layering broken:\n  " + "\n  ".join(found)


def test_every_allowed_upward_import_is_still_needed():
    modules = repository_modules()
    known = set(modules)
    for (a, b), why in ALLOWED_UPWARD.items():
        used = [t for t in imports_of(a, modules[a][0], modules[a][1], known) if t[1].startswith(b)]
        assert used, f"{a} no longer imports {b}: drop the exception ({why})"


def test_layers_are_listed_once():
    names = [n for _, ns in LAYERS for n in ns]
    assert len(names) == len(set(names))


# -- the checker catches what it should (planted modules, not the repository) -----------------
def test_a_planted_upward_import_is_caught_with_both_layers_named():
    planted = {"tinygan.nn.layers": (False, "from .. import backend\n\n"
                                            "def f():\n    from ..train import train\n")}
    found = violations(planted, known=set(repository_modules()))
    assert found == ["tinygan.nn.layers imports tinygan.train (line 4): layer 'nn' may not "
                     "import layer 'training loop', which lies above it"]


@pytest.mark.parametrize("module, is_package, source, expected", [
    # absolute, relative from a package __init__, and `from package import submodule`
    ("tinygan.functional.conv", False, "import tinygan.nn", "tinygan.nn"),
    ("tinygan.functional", True, "from ..gans import get", "tinygan.gans"),
    ("tinygan.optim", False, "from tinygan import gans", "tinygan.gans"),
    ("tinygan.metrics", False, "from .cli import main", "tinygan.cli"),
    ("kernels.cpu", False, "from tinygan import nn", "tinygan.nn"),
    ("tinygan.gans.gan", False, "from ..checkpoint import load", "tinygan.checkpoint"),
])
def test_each_import_form_is_resolved(module, is_package, source, expected):
    known = {module, expected, "tinygan", "tinygan.gans", "tinygan.nn"}
    found = violations({module: (is_package, source), **{k: (True, "") for k in known - {module}}})
    assert len(found) == 1 and f"imports {expected} " in found[0], found


def test_kernels_called_outside_functional_and_functions_outside_functional_are_caught():
    planted = {"tinygan.gans.tricks": (False, "from .. import kernels\n"
                                              "from ..autograd import Function\n"
                                              "class PairwiseL1(Function):\n    pass\n"),
               "kernels": (True, "")}
    found = violations(planted, known=set(repository_modules()))
    assert len(found) == 2
    assert "tinygan.gans.tricks imports kernels (line 1)" in found[0] and "directly" in found[0]
    assert "defines the autograd Function PairwiseL1 (line 3)" in found[1]


def test_downward_and_same_layer_imports_pass_and_unlisted_modules_fail():
    ok = {"tinygan.gans.gan": (False, "from . import losses\nfrom .. import functional, nn\n"
                                      "from ..backend import get_array_module\n"),
          "tinygan.functional.conv": (False, "from .. import kernels\nfrom ..autograd import Function\n"
                                             "class Conv2d(Function):\n    pass\n")}
    assert violations(ok, known=set(repository_modules())) == []
    assert "tinygan.newthing is in no layer" in violations({"tinygan.newthing": (False, "")})[0]
