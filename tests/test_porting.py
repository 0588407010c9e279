"""What PyTorch code needs when it moves to tinygan with `import tinygan as torch`:
`torch.device`, `torch.cuda.is_available`, the loss modules, the in-place initialisers,
and a whole PyTorch-style DCGAN script (see docs/porting.md)."""
import copy
import pathlib
import pickle
import runpy

import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
import tinygan.nn as nn


# -- tinygan.device, tinygan.cuda ------------------------------------------------------------

def test_device_is_torch_device_and_the_plain_string():
    d = tg.device("cpu")
    assert d.type == "cpu" and d.index is None and str(d) == "cpu"
    assert repr(d) == "device(type='cpu')"
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


def test_torch_dtype_names_are_numpy_dtypes():
    assert (tg.float, tg.float32, tg.double, tg.float64, tg.half, tg.float16) == \
        (np.float32, np.float32, np.float64, np.float64, np.float16, np.float16)
    assert (tg.long, tg.int64, tg.int, tg.int32, tg.uint8, tg.bool) == \
        (np.int64, np.int64, np.int32, np.int32, np.uint8, np.bool_)
    assert tg.full((2,), 1.0, dtype=tg.float).dtype == np.float32
    names = {}
    exec("from tinygan import *", names)
    assert "randn" in names and "nn" in names and "float64" in names
    assert not {"float", "int", "bool", "sum", "abs"} & set(names)   # Python's builtins stay
    assert "cat" in names and "mean" in names


def test_top_level_ops_are_the_functional_ones():
    for name in ("cat", "stack", "mean", "sum", "exp", "log", "sqrt", "abs", "clamp", "where",
                 "matmul", "sigmoid", "tanh", "relu", "softmax", "log_softmax"):
        assert getattr(tg, name) is getattr(F, name), name
    x = tg.randn(2, 3)
    assert tg.cat((x, x), 1).shape == (2, 6) and tg.mean(x, 1).shape == (2,)


def test_tensor_to_takes_a_device_a_dtype_or_both(device):
    x = tg.randn(2, 3, requires_grad=True)
    assert x.to(x.device) is x and x.to(tg.float32) is x
    y = x.to(tg.device(device), tg.float64)
    assert y.device == device and y.dtype == np.float64
    assert x.to(dtype="float64").dtype == np.float64 and x.to("float16").dtype == np.float16
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.device == "cpu"
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        x.to("gpu")
    with pytest.raises(ValueError, match="unknown device"):
        x.to("float64", np.float32)


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
    with pytest.raises(ValueError, match=r"copy_: src of shape \(4,\) cannot .*\(2, 3\)"):
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


# -- loss modules: thin wrappers of the functional losses -----------------------------------


REDUCTIONS = ["mean", "sum", "none"]


def _loss_cases(rng):
    """(name, make module, the functional call it must equal, input array, target)."""
    logits = rng.standard_normal((4, 3))
    probs = 1 / (1 + np.exp(-logits))
    binary = (rng.random((4, 3)) > 0.5).astype(np.float64)
    elem_w = rng.random(3) + 0.5
    class_w = rng.random(3) + 0.5
    labels = np.array([0, 2, 1, 2])
    ignored = np.array([0, -1, 1, 2])
    return [
        ("BCELoss", lambda r: nn.BCELoss(reduction=r),
         lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r), probs, binary),
        ("BCELoss+weight", lambda r: nn.BCELoss(weight=tg.tensor(elem_w), reduction=r),
         lambda x, t, r: F.binary_cross_entropy(x, t, tg.tensor(elem_w), r), probs, binary),
        ("BCEWithLogitsLoss", lambda r: nn.BCEWithLogitsLoss(elem_w, reduction=r),
         lambda x, t, r: F.binary_cross_entropy_with_logits(x, t, elem_w, r), logits, binary),
        ("MSELoss", lambda r: nn.MSELoss(reduction=r),
         lambda x, t, r: F.mse_loss(x, t, r), logits, probs),
        ("L1Loss", lambda r: nn.L1Loss(reduction=r),
         lambda x, t, r: F.l1_loss(x, t, r), logits, probs),
        ("CrossEntropyLoss", lambda r: nn.CrossEntropyLoss(reduction=r),
         lambda x, t, r: F.cross_entropy(x, t, reduction=r), logits, labels),
        ("CrossEntropyLoss+all", lambda r: nn.CrossEntropyLoss(tg.tensor(class_w), ignore_index=-1,
                                                            reduction=r),
         lambda x, t, r: F.cross_entropy(x, t, tg.tensor(class_w), -1, r), logits, ignored),
        ("CrossEntropyLoss+smoothing", lambda r: nn.CrossEntropyLoss(reduction=r,
                                                                     label_smoothing=0.1),
         lambda x, t, r: F.cross_entropy(x, t, reduction=r, label_smoothing=0.1), logits, labels),
        ("NLLLoss", lambda r: nn.NLLLoss(reduction=r),
         lambda x, t, r: F.nll_loss(x, t, reduction=r), np.log(probs / 2), labels),
        ("NLLLoss+all", lambda r: nn.NLLLoss(class_w, ignore_index=-1, reduction=r),
         lambda x, t, r: F.nll_loss(x, t, tg.tensor(class_w), -1, r), np.log(probs / 2), ignored),
    ]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", range(10))
def test_loss_module_equals_its_functional_in_value_and_gradient(case, reduction, rng):
    name, module, functional, x, target = _loss_cases(rng)[case]
    gy = rng.standard_normal(() if reduction != "none" else x.shape[:1] if target.ndim == 1
                             else x.shape)
    results = []
    for loss_fn in (module(reduction), lambda a, b: functional(a, b, reduction)):
        xt = tg.tensor(x, requires_grad=True)
        tt = tg.tensor(target) if target.dtype.kind == "f" else target
        loss = loss_fn(xt, tt)
        loss.backward(gy)
        results.append((loss.data, xt.grad.data))
    (v1, g1), (v2, g2) = results
    assert v1.shape == v2.shape, name
    np.testing.assert_array_equal(v1, v2, err_msg=name)
    np.testing.assert_array_equal(g1, g2, err_msg=name)


def test_loss_modules_pass_finite_differences():
    rng = np.random.default_rng(1)
    for name, module, _, x, target in _loss_cases(rng):
        m = module("mean").to(np.float64)
        tt = tg.tensor(target) if target.dtype.kind == "f" else target
        if name.startswith("BCELoss"):                     # keep p inside (0, 1) under eps
            x = np.clip(x, 0.05, 0.95)
        assert tg.gradcheck(lambda a: m(a, tt), [tg.tensor(x, requires_grad=True)]), name


def test_loss_weight_is_a_buffer_that_moves_and_is_saved(device):
    w = tg.tensor([1.0, 2.0, 3.0])
    m = nn.CrossEntropyLoss(weight=w).to(device)
    assert m.weight.device == device and list(m.state_dict()) == ["weight"]
    assert list(nn.BCELoss().state_dict()) == [] and nn.BCELoss().weight is None
    x = tg.tensor(np.eye(3), device=device)
    assert np.isfinite(m(x, tg.backend.to_device(np.array([0, 1, 2]), device)).item())


@pytest.mark.parametrize("make, match", [
    (lambda: nn.BCELoss(reduction="avg"), "BCELoss: reduction must be one of"),
    (lambda: nn.MSELoss(reduction=None), "MSELoss: reduction must be one of"),
    (lambda: nn.L1Loss(reduction="elementwise_mean"), "L1Loss: reduction must be one of"),
    (lambda: nn.BCEWithLogitsLoss(reduction="Mean"), "BCEWithLogitsLoss: reduction must"),
    (lambda: nn.NLLLoss(ignore_index=1.5), "NLLLoss: ignore_index must be an integer"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=1.5), "label_smoothing must be a number in"),
    (lambda: nn.CrossEntropyLoss(weight=tg.ones(3, 3)), "weight must be 1-D"),
    (lambda: nn.CrossEntropyLoss(weight=tg.ones(3), label_smoothing=0.1), "not supported"),
])
def test_loss_modules_reject_bad_arguments_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_loss_module_weight_must_be_a_float_tensor():
    with pytest.raises(TypeError, match="BCELoss: weight must be a Tensor"):
        nn.BCELoss(weight=[1.0, 2.0])
    with pytest.raises(TypeError, match="NLLLoss: weight must be floating point"):
        nn.NLLLoss(weight=np.array([1, 2]))
    with pytest.raises(TypeError):
        nn.BCEWithLogitsLoss(pos_weight=tg.ones(1))        # not supported (docs/porting.md)
    with pytest.raises(TypeError):
        nn.NLLLoss(None, None, -1)      # torch's 2nd/3rd positionals: size_average, ignore_index


def test_loss_module_repr_is_torchs():
    assert repr(nn.BCELoss()) == "BCELoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


# -- a whole PyTorch-style DCGAN script, ported ------------------------------------------------


SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "dcgan_ported_from_pytorch.py"


def test_the_ported_pytorch_dcgan_script_trains_two_steps(capsys):
    source = SCRIPT.read_text()
    assert "import tinygan as torch\nimport tinygan.nn as nn\n" in source
    for original in ("# m.weight.data.normal_(0.0, 0.02)", "# m.weight.data.normal_(1.0, 0.02)",
                     "# m.bias.data.fill_(0)"):
        assert original in source                        # the torch line, kept as a comment
    g = runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("Loss_D:") == 2 and "[1/2]" in out
    assert len(g["G_losses"]) == len(g["D_losses"]) == 2
    assert all(np.isfinite(v) and v > 0 for v in g["G_losses"] + g["D_losses"])
    assert g["fake"].shape == (64, 1, 16, 16) and g["fake"].device == "cpu"
    # weights_init ran on every Conv and BatchNorm (two Adam steps of 2e-4 move them little)
    modules = [m for net in (g["netG"], g["netD"]) for m in net.modules()]
    convs = [m for m in modules if "Conv" in type(m).__name__]
    bns = [m for m in modules if "BatchNorm" in type(m).__name__]
    assert len(convs) == 6 and len(bns) == 3
    w = np.concatenate([tg.backend.as_numpy(m.weight.data).ravel() for m in convs])
    assert abs(w.std() - 0.02) < 0.003
    for m in bns:
        assert abs(float(tg.backend.as_numpy(m.weight.data).mean()) - 1.0) < 0.02
        assert np.abs(tg.backend.as_numpy(m.bias.data)).max() < 0.01
    # the backward calls reached every parameter of both nets
    for net in (g["netG"], g["netD"]):
        assert all(p.grad is not None for p in net.parameters())


def test_the_unported_data_line_fails_because_data_is_an_ndarray():
    """Why the script's three `.data` lines had to change (docs/porting.md)."""
    conv = nn.Conv2d(1, 1, 4)
    assert isinstance(conv.weight.data, np.ndarray)
    with pytest.raises(AttributeError, match="normal_"):
        conv.weight.data.normal_(0.0, 0.02)


def test_two_backward_calls_accumulate_into_ds_gradients():
    """errD_real.backward(); errD_fake.backward() leaves the sum of both gradients, as in torch."""
    g = runpy.run_path(str(SCRIPT))            # for its classes, weights_init, criterion
    netD, criterion = g["Discriminator"](1), g["criterion"]
    netD.apply(g["weights_init"])
    real = tg.randn(4, 1, 16, 16).clamp(-1, 1)
    fake = tg.randn(4, 1, 16, 16).clamp(-1, 1)
    ones, zeros = tg.full((4,), 1.0), tg.full((4,), 0.0)
    params = list(netD.parameters())
    netD.eval()                         # the same BatchNorm statistics for every forward below
    separate = [tg.grad(criterion(netD(x).view(-1), y), params) for x, y in ((real, ones),
                                                                               (fake, zeros))]
    netD.zero_grad()
    criterion(netD(real).view(-1), ones).backward()
    criterion(netD(fake).view(-1), zeros).backward()
    for p, a, b in zip(params, *separate):
        np.testing.assert_allclose(p.grad.data, a.data + b.data, rtol=1e-5, atol=1e-7)
