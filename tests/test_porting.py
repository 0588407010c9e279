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
