"""The autograd graph as a picture (tinygan/graph_dot.py, exposed as tinygan.viz.to_dot/draw_graph)."""
import re
import shutil

import numpy as np
import pytest

import tinygan as tg
import tinygan.nn as nn
from tinygan import viz

NODE = re.compile(r'^  ([tf]\d+) \[shape=(box|ellipse), .*label="(.*)"\];$', re.M)
EDGE = re.compile(r"^  ([tf]\d+) -> ([tf]\d+);$", re.M)


def parse(dot: str):
    """{node id: label} and the list of (tail, head) edges of to_dot's output."""
    nodes = {m[1]: m[3] for m in NODE.finditer(dot)}
    edges = [(m[1], m[2]) for m in EDGE.finditer(dot)]
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    for a, b in edges:                      # every edge joins declared nodes, op <-> tensor
        assert a in nodes and b in nodes and a[0] != b[0], (a, b)
    return nodes, edges


def small_graph():
    """loss = tanh(x W^T + b).sum() with W, b a Linear module's parameters."""
    tg.manual_seed(0)
    model = nn.Linear(3, 2)
    x = tg.randn(4, 3, requires_grad=True)
    loss = model(x).tanh().sum()
    return model, x, loss


def test_small_graph_nodes_edges_and_labels():
    model, x, loss = small_graph()
    nodes, edges = parse(viz.to_dot(loss, params=dict(model.named_parameters())))
    ops = sorted(v for k, v in nodes.items() if k[0] == "f")
    tensors = [v for k, v in nodes.items() if k[0] == "t"]
    assert ops == ["Linear", "Sum", "Tanh"]
    # x, weight, bias, linear's output, tanh's output, the loss
    assert len(tensors) == 6
    # Linear: 3 inputs + 1 output; Tanh and Sum: 1 + 1 each
    assert len(edges) == 8
    assert "weight\\n(2, 3) float32" in tensors
    assert "bias\\n(2,) float32" in tensors
    assert "(4, 3) float32" in tensors                      # x: no name given
    assert tensors.count("(4, 2) float32") == 2
    assert "() float32" in tensors                          # the loss
    # the edges follow the data: weight -> Linear -> ... -> Sum -> loss
    label_of = nodes.get
    pairs = {(label_of(a), label_of(b)) for a, b in edges}
    assert ("weight\\n(2, 3) float32", "Linear") in pairs
    assert ("Sum", "() float32") in pairs


def test_same_graph_gives_same_text_and_any_tensor_can_be_named():
    model, x, loss = small_graph()
    named = dict(model.named_parameters(), x=x)
    assert viz.to_dot(loss, named) == viz.to_dot(loss, named)
    assert 'label="x\\n(4, 3) float32"' in viz.to_dot(loss, named)
    assert viz.to_dot(loss, named, title="a title").count('label="a title"') == 1


def test_float64_and_constants_are_labelled():
    x = tg.tensor(np.ones(3), requires_grad=True)            # float64 stays float64
    y = (x * 2.5).sum()
    nodes, _ = parse(viz.to_dot(y))
    labels = list(nodes.values())
    assert "(3,) float64" in labels
    assert "() float64\\n= 2.5" in labels                     # the constant's value


def test_shared_subexpression_is_one_node():
    x = tg.randn(3, requires_grad=True)
    h = x.exp()
    y = (h * h).sum()
    nodes, edges = parse(viz.to_dot(y, {"x": x}))
    assert sorted(v for k, v in nodes.items() if k[0] == "f") == ["Exp", "Mul", "Sum"]
    h_node = next(a for a, b in edges if nodes[b] == "Mul")
    assert [nodes[b] for a, b in edges if a == h_node] == ["Mul", "Mul"]   # h feeds Mul twice
    assert len([k for k, v in nodes.items() if v == "(3,) float32"]) == 2      # h and h * h


def test_second_order_graph_from_create_graph():
    x = tg.randn(3, requires_grad=True)
    y = (x * x * x).sum()
    g, = tg.grad(y, x, create_graph=True)                    # 3 x^2, itself recorded
    nodes, edges = parse(viz.to_dot(g, {"x": x}))
    labels = list(nodes.values())
    assert labels.count("x\\n(3,) float32") == 1              # one x, shared by both passes
    ops = [v for k, v in nodes.items() if k[0] == "f"]
    assert ops.count("Mul") >= 3                              # the backward's products
    assert "Sum" not in ops                                   # the forward's Sum is not on g's path
    x_node = next(k for k, v in nodes.items() if v.startswith("x\\n"))
    assert sum(1 for a, _ in edges if a == x_node) >= 2       # forward and backward both read x
    # the penalty of a gradient-penalty: a graph through the gradient, back to x
    penalty = ((g * g).sum() - 1.0) ** 2
    pnodes, _ = parse(viz.to_dot(penalty, {"x": x}))
    assert len(pnodes) > len(nodes)
    gx, = tg.grad(penalty, x)
    assert gx.shape == (3,)


def test_after_backward_the_freed_op_is_marked():
    x = tg.randn(3, requires_grad=True)
    y = x.exp().sum()
    y.backward()
    nodes, _ = parse(viz.to_dot(y))
    assert "Sum\\n(freed)" in nodes.values()
    with pytest.raises(TypeError, match="to_dot"):
        viz.to_dot([y, "not a tensor"])


def test_draw_graph_writes_dot(tmp_path):
    model, x, loss = small_graph()
    params = dict(model.named_parameters())
    path = viz.draw_graph(loss, str(tmp_path / "sub" / "g.dot"), params=params)
    assert open(path).read() == viz.to_dot(loss, params)
    with pytest.raises(ValueError, match=r"\.dot"):
        viz.draw_graph(loss, str(tmp_path / "g.jpeg"))


def test_draw_graph_names_the_missing_program(tmp_path, monkeypatch):
    _, _, loss = small_graph()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"Graphviz program `dot`.*not on PATH"):
        viz.draw_graph(loss, str(tmp_path / "g.png"))
    assert not (tmp_path / "g.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("ext, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_draw_graph_renders_with_dot(tmp_path, ext, magic):
    x = tg.randn(3, requires_grad=True)
    g, = tg.grad((x ** 3).sum(), x, create_graph=True)
    path = viz.draw_graph(g, str(tmp_path / f"g.{ext}"), params={"x": x})
    assert open(path, "rb").read(5).startswith(magic)
