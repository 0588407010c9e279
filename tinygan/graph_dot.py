"""The autograd graph behind a tensor, as Graphviz DOT text (and as a picture when Graphviz is there).

    dot = to_dot(loss, params=dict(model.named_parameters()))   # a str, no dependency
    draw_graph(loss, "loss.svg")                                 # .dot always; .png/.svg need `dot`

The walk is the one `backward` does: a tensor's `creator` is the Function that made it, and a
Function's `inputs` are the tensors it read.  It uses an explicit stack (no recursion) and
visits each node once.  Two kinds of node:

    op      an ellipse named after the Function's class (Mul, Conv2d, BatchNorm, ...)
    tensor  a box with its shape and dtype; a parameter (or any tensor passed in `params`)
            carries its name, a one-element constant its value

Edges run from an op's inputs into the op and from the op into its output, so inputs are at
the top and the tensor drawn from is at the bottom.  A graph recorded by
`create_graph=True` is walked the same way: the backward's own ops point back into the
forward's tensors, which is the picture of a gradient of a gradient.  After a plain
`backward()` the ops have let go of their inputs; such an op is drawn, marked "freed", and
the walk stops there (draw before calling backward, or pass retain_graph=True).
"""
from __future__ import annotations

import os
import shutil
import subprocess


from .autograd import Tensor

__all__ = ["to_dot", "draw_graph"]

_PICTURES = ("png", "svg", "pdf")

# Fill colours: what the tensor is drawn from, named tensors (parameters), other leaves that
# require grad, everything else (intermediate results and constants).
_ROOT, _NAMED, _LEAF, _OP = "#ffd8a8", "#b2f2bb", "#a5d8ff", "#e9ecef"


def _quote(text: str) -> str:
    """A DOT string literal; a newline becomes DOT's line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensor_label(t: Tensor, name: str | None) -> str:
    lines = [name] if name else []
    lines.append(f"{_shape(t.shape)} {t.dtype}")
    if name is None and t.creator is None and not t.requires_grad and t.data.size == 1:
        lines.append(f"= {float(t.data.reshape(())):.4g}")           # a constant such as 2.0
    return "\n".join(lines)


def to_dot(tensor, params: dict | None = None, title: str | None = None) -> str:
    """Graphviz DOT text of the graph that produced `tensor` (or a list of tensors).

    `params` maps names to tensors, usually `dict(model.named_parameters())`; a tensor found
    in it is labelled with its name (any tensor can be named that way, e.g. {"x": x}).
    Node ids follow the walk order, so the same graph gives the same text.
    """
    roots = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    for i, t in enumerate(roots):
        if not isinstance(t, Tensor):
            raise TypeError(f"to_dot: expected a Tensor or a list of Tensors, got "
                            f"{type(t).__name__} at position {i}")
    names = {id(t): name for name, t in (params or {}).items()}
    root_ids = {id(t) for t in roots}

    tensor_ids: dict[int, str] = {}
    op_ids: dict[int, str] = {}
    keep = []                                     # keeps every id() above valid
    nodes, edges = [], []

    def tensor_node(t: Tensor) -> tuple[str, bool]:
        """The node id of t, and whether it is new."""
        if id(t) in tensor_ids:
            return tensor_ids[id(t)], False
        node = tensor_ids[id(t)] = f"t{len(tensor_ids)}"
        keep.append(t)
        name = names.get(id(t))
        style = "filled"
        if id(t) in root_ids:
            fill = _ROOT
        elif name is not None:
            fill = _NAMED
        elif t.creator is None and t.requires_grad:
            fill = _LEAF
        else:
            fill, style = "white", ("dashed" if t.creator is None else "solid")
        nodes.append(f"  {node} [shape=box, style={_quote(style)}, fillcolor={_quote(fill)}, "
                     f"label={_quote(_tensor_label(t, name))}];")
        return node, True

    stack = []
    for t in roots:
        _, new = tensor_node(t)
        if new:
            stack.append(t)
    while stack:                                   # explicit stack: no recursion limit
        t = stack.pop()
        f = t.creator
        if f is None:
            continue
        t_node = tensor_ids[id(t)]
        if id(f) in op_ids:
            edges.append(f"  {op_ids[id(f)]} -> {t_node};")     # a second output of f
            continue
        f_node = op_ids[id(f)] = f"f{len(op_ids)}"
        keep.append(f)
        label = type(f).__name__ + ("\n(freed)" if f.inputs is None else "")
        nodes.append(f"  {f_node} [shape=ellipse, style=filled, fillcolor={_quote(_OP)}, "
                     f"label={_quote(label)}];")
        edges.append(f"  {f_node} -> {t_node};")
        pending = []
        for x in f.inputs or ():
            x_node, new = tensor_node(x)
            edges.append(f"  {x_node} -> {f_node};")
            if new:
                pending.append(x)
        stack.extend(reversed(pending))            # first input walked first

    header = ["digraph autograd {", '  node [fontname="Helvetica", fontsize=11];',
              '  edge [arrowsize=0.7];']
    if title:
        header.append(f"  labelloc=t; label={_quote(title)};")
    return "\n".join(header + nodes + edges + ["}"]) + "\n"


def draw_graph(tensor, path: str, params: dict | None = None, title: str | None = None) -> str:
    """Write the graph behind `tensor` to `path` and return the path.

    `.dot` / `.gv`: the DOT text (always works).  `.png`, `.svg`, `.pdf`: rendered by
    Graphviz's `dot` program, which must be on PATH.
    """
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in ("dot", "gv") + _PICTURES:
        raise ValueError(f"draw_graph: cannot tell the format of {path!r}; end it in .dot, .gv, "
                         f"{', '.join('.' + e for e in _PICTURES)}")
    text = to_dot(tensor, params=params, title=title)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if ext in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(f"draw_graph: writing {path!r} needs the Graphviz program `dot`, "
                           f"which is not on PATH; install Graphviz (e.g. `apt-get install "
                           f"graphviz`) or write a .dot file instead")
    done = subprocess.run([program, f"-T{ext}", "-o", path], input=text.encode("utf-8"),
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"draw_graph: `dot -T{ext}` failed with exit code {done.returncode}: "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return path
