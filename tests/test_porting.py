"""What PyTorch code needs when it moves to tinygan with `import tinygan as torch`:
`torch.device`, `torch.cuda.is_available`, the loss modules, the in-place initialisers,
and a whole PyTorch-style DCGAN script (see docs/porting.md)."""
import copy
import pickle

import numpy as np
import pytest

import tinygan as tg
import tinygan.nn as nn


# -- tinygan.device, tinygan.cuda ------------------------------------------------------------

def test_device_is_torch_device_and_the_plain_string():
    d = tg.device("cpu")
    assert d.type == "cpu" and d.index is None and str(d) == "cpu" and repr(d) == "device(type='cpu')"
    assert d == "cpu" and d == tg.device("cpu") and d != tg.device("cuda")
    assert {"cpu": 1}[d] == 1                              # hashes as its string
    g = tg.device("cuda:0")
    assert (g.type, g.index, str(g), repr(g)) == ("cuda", 0, "cuda", "device(type='cuda', index=0)")
    assert tg.device("cuda", 0) == g == "cuda" and tg.device(g) is g
    assert pickle.loads(pickle.dumps(g)).index == 0 and copy.deepcopy(d) == d


@pytest.mark.parametrize("bad, err", [("gpu", ValueError), ("cuda:1", ValueError),
                                      ("cuda:x", ValueError), (3, TypeError)])
def test_device_rejects_what_torch_or_tinygan_cannot_use(bad, err):
    with pytest.raises(err, match="device"):
        tg.device(bad)


def test_tensor_device_is_a_device_object():
    x = tg.randn(3)
    assert isinstance(x.device, tg.device) and x.device.type == "cpu" and x.device == "cpu"


def test_device_objects_go_wherever_device_strings_do(device):
    d = tg.device(device)
    x = tg.randn(2, 3, device=d)
    assert x.device == device
    for t in (tg.zeros(2, device=d), tg.ones(2, device=d), tg.rand(2, device=d),
              tg.full((2,), 1.0, device=d), tg.tensor([1.0], device=d), tg.arange(3, device=d),
              tg.randn(2).to(d), tg.randn(2).to(f"{device}:0"), x.to(d)):
        assert t.device == d
    m = nn.Sequential(nn.Linear(3, 2, device=d), nn.BatchNorm1d(2)).to(d)
    assert all(p.device == device for p in m.parameters())
    assert m.to(tg.device(device), np.float64)[0].weight.dtype == np.float64
    assert m.to("float32")[0].weight.dtype == np.float32       # a dtype positionally still works


def test_module_to_rejects_a_bad_device():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        nn.Linear(2, 2).to("gpu")


def test_cuda_namespace_mirrors_torch_cuda():
    assert tg.cuda.is_available() is tg.cuda_available()
    assert tg.cuda.device_count() == (1 if tg.cuda_available() else 0)


# -- in-place initialisers: normal_, uniform_, fill_, zero_, copy_ ----------------------------

def test_normal_and_uniform_fill_in_place_with_the_right_moments(device):
    tg.manual_seed(0)
    t = tg.zeros(200, 500, device=device)
    array = t.data
    assert t.normal_(1.5, 0.02) is t and t.data is array and t.shape == (200, 500)
    a = tg.backend.as_numpy(t.data)
    assert a.dtype == np.float32
    assert abs(a.mean() - 1.5) < 1e-3 and abs(a.std() - 0.02) < 1e-3
    assert t.uniform_(-3.0, 1.0) is t and t.data is array
    a = tg.backend.as_numpy(t.data)
    assert a.min() >= -3.0 and a.max() < 1.0
    assert abs(a.mean() + 1.0) < 0.02 and abs(a.var() - 16 / 12) < 0.02    # U(a, b): (b-a)²/12


def test_initialisers_are_reproducible_with_manual_seed(device):
    def draw():
        tg.manual_seed(7)
        n = tg.zeros(4, 3, device=device).normal_()
        u = tg.zeros(5, device=device).uniform_(2, 3)
        return tg.backend.as_numpy(n.data), tg.backend.as_numpy(u.data)
    (n1, u1), (n2, u2) = draw(), draw()
    np.testing.assert_array_equal(n1, n2)
    np.testing.assert_array_equal(u1, u2)
    assert not np.array_equal(n1[0], n1[1])


def test_nn_init_and_the_tensor_methods_draw_the_same_numbers():
    tg.manual_seed(3)
    a = nn.init.normal_(tg.zeros(3, 4), 0.0, 0.02)
    tg.manual_seed(3)
    with tg.no_grad():
        b = nn.Parameter(tg.zeros(3, 4)).normal_(0.0, 0.02)
    np.testing.assert_array_equal(a.data, b.data)


def test_fill_zero_copy(device):
    t = tg.ones(2, 3, device=device)
    array = t.data
    assert t.fill_(2.5) is t and t.data is array and t.tolist() == [[2.5] * 3] * 2
    assert t.fill_(tg.tensor([4.0])).tolist() == [[4.0] * 3] * 2
    assert t.zero_() is t and t.data is array and t.tolist() == [[0.0] * 3] * 2
    src = tg.tensor(np.arange(3.0))                          # float64 on the host, broadcast
    assert t.copy_(src) is t and t.data is array and t.dtype == np.float32
    assert t.tolist() == [[0.0, 1.0, 2.0]] * 2
    t.copy_(np.full((2, 3), 7.0))
    assert t.tolist() == [[7.0] * 3] * 2
    with pytest.raises(ValueError, match=r"copy_: src of shape \(4,\) cannot be broadcast to .*\(2, 3\)"):
        t.copy_(tg.zeros(4))
    with pytest.raises(TypeError, match="copy_: src must be a Tensor or an array"):
        t.copy_([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one-element"):
        t.fill_(tg.zeros(2))


def test_a_parameter_shares_the_array_so_a_view_sees_the_change():
    p = nn.Parameter(tg.zeros(3))
    alias = tg.Tensor(p.data)
    with tg.no_grad():
        p.fill_(1.0)
    assert alias.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("call", [lambda t: t.normal_(), lambda t: t.uniform_(),
                                  lambda t: t.fill_(1.0), lambda t: t.zero_(),
                                  lambda t: t.copy_(tg.zeros(3))])
def test_the_no_grad_rule_for_in_place_initialisers(call):
    p = nn.Parameter(tg.zeros(3))                            # a leaf that requires grad
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad.*no_grad"):
        call(p)
    with tg.no_grad():
        assert call(p) is p                                  # allowed, as in torch
    y = p * 2                                                # not a leaf
    with pytest.raises(RuntimeError, match="records no in-place op"):
        call(y)
    assert call(tg.zeros(3)) is not None                     # no grad wanted: always allowed


def test_copy_from_a_tensor_that_requires_grad_is_refused_under_grad_mode():
    src = tg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="src requires grad"):
        tg.zeros(3).copy_(src)
    with tg.no_grad():
        np.testing.assert_array_equal(tg.zeros(3).copy_(src).data, src.data)


def test_initialiser_arguments_are_checked():
    with pytest.raises(ValueError, match="std must be >= 0"):
        tg.zeros(3).normal_(0.0, -1.0)
    with pytest.raises(ValueError, match="a <= b"):
        tg.zeros(3).uniform_(1.0, 0.0)
    with pytest.raises(TypeError, match="floating-point"):
        tg.tensor(np.zeros(3, dtype=np.int64)).normal_()


def test_nn_init_fills_a_raw_array_in_place():
    """`nn.init.normal_(m.weight.data, 0.0, 0.02)` (PyTorch's DCGAN tutorial) works unchanged."""
    conv = nn.Conv2d(3, 8, 4)
    array = conv.weight.data
    tg.manual_seed(0)
    assert nn.init.normal_(conv.weight.data, 0.0, 0.02) is array
    assert conv.weight.data is array and abs(float(array.std()) - 0.02) < 0.005
    assert nn.init.constant_(conv.bias.data, 0.0) is conv.bias.data
    assert not conv.bias.data.any()
    nn.init.kaiming_uniform_(conv.weight.data, a=0.2)
    nn.init.xavier_normal_(conv.weight.data)
    with pytest.raises(TypeError, match="nn.init: expected a Tensor or an array"):
        nn.init.normal_([1.0, 2.0])
