"""nn: Module bookkeeping (registration order, PyTorch names, state dicts, modes, devices),
layer shapes and default init, nn.init, and forward/backward parity with PyTorch."""
import copy
import math

import numpy as np
import pytest

import tinygan as tg
from tinygan import nn
from tinygan.autograd import Tensor


def make_block(lib, tensor):
    """Members of every kind, assigned in a mixed order, in tinygan or torch."""

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.conv = lib.Conv2d(2, 3, 3, padding=1)
            self.scale = lib.Parameter(tensor(np.ones(3, dtype=np.float32)))
            self.register_buffer("count", tensor(np.zeros((), dtype=np.int64)))
            self.register_buffer("scratch", tensor(np.zeros(3, dtype=np.float32)), persistent=False)
            self.bn = lib.BatchNorm2d(3)
            self.plain = tensor(np.zeros(2))        # a plain attribute: not registered
    return Block()


def dcgan_like(lib):
    """The same little net in tinygan or torch (both have the same nn names)."""
    return lib.Sequential(
        lib.Conv2d(1, 4, 4, 2, 1, bias=False), lib.LeakyReLU(0.2),
        lib.Conv2d(4, 8, (4, 4), stride=(2, 2), padding=(1, 1)), lib.BatchNorm2d(8), lib.LeakyReLU(0.2),
        lib.Flatten(), lib.Linear(8 * 2 * 2, 1))


# ---------------------------------------------------------------------------------------
# Registration and naming

def test_parameter_is_a_tensor_that_requires_grad_and_shares_data():
    a = np.arange(3.0)
    p = nn.Parameter(a)
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf and p.data is a
    assert nn.Parameter(Tensor(a)).data is a
    assert not nn.Parameter(a, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_registration_order_and_dotted_names():
    m = make_block(nn, Tensor)
    # Module by module (self first, then children in assignment order), as torch.
    assert [n for n, _ in m.named_parameters()] == ["scale", "conv.weight", "conv.bias",
                                                     "bn.weight", "bn.bias"]
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch", "bn.running_mean",
                                                  "bn.running_var", "bn.num_batches_tracked"]
    # state_dict: own parameters, own persistent buffers, then each child (torch's order).
    assert list(m.state_dict()) == ["scale", "count", "conv.weight", "conv.bias", "bn.weight",
                                    "bn.bias", "bn.running_mean", "bn.running_var",
                                    "bn.num_batches_tracked"]
    assert [n for n, _ in m.named_children()] == ["conv", "bn"]
    assert [type(x).__name__ for x in m.modules()] == ["Block", "Conv2d", "BatchNorm2d"]
    assert list(m.parameters()) == [p for _, p in m.named_parameters()]
    assert list(m.buffers()) == [b for _, b in m.named_buffers()]
    assert "plain" not in dict(m.named_buffers()) and isinstance(m.plain, Tensor)


def test_registration_order_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = make_block(nn, Tensor), make_block(torch.nn, torch.from_numpy)
    for method in ("named_parameters", "named_buffers", "named_children", "named_modules"):
        assert [n for n, _ in getattr(ours, method)()] == [n for n, _ in getattr(theirs, method)()]
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_nested_sequential_names():
    net = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.BatchNorm1d(3), nn.ReLU()), nn.Linear(3, 1))
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.0.weight", "1.0.bias",
                                      "1.0.running_mean", "1.0.running_var",
                                      "1.0.num_batches_tracked", "2.weight", "2.bias"]


def test_state_dict_keys_and_shapes_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = dcgan_like(nn), dcgan_like(torch.nn)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def test_shared_parameter_is_listed_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    net = nn.Sequential(a, b)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_assignment_rules():
    m = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="nn.Parameter or None expected"):
        m.weight = Tensor(np.zeros((3, 2)))
    m.bias = None                                   # allowed, as in torch
    assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    assert "bias" not in m.state_dict()
    bn = nn.BatchNorm1d(3)
    bn.running_mean = np.ones(3, dtype=np.float32)  # buffers stay buffers, arrays are wrapped
    assert isinstance(bn.running_mean, Tensor) and "running_mean" in dict(bn.named_buffers())
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        m.nope
    del m.weight
    assert list(m.parameters()) == []

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(1))      # before super().__init__()
    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Early()


def test_sequential_container_protocol():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    net = nn.Sequential(*layers)
    assert len(net) == 3 and list(net) == layers
    assert net[0] is layers[0] and net[-1] is layers[2]
    sub = net[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == layers[1:]
    assert list(sub.state_dict()) == ["2.weight", "2.bias"]       # names kept, like torch
    with pytest.raises(IndexError):
        net[3]
    net.append(nn.Tanh())
    assert len(net) == 4 and isinstance(net[3], nn.Tanh)
    ml = nn.ModuleList([nn.Linear(1, 1), nn.Linear(1, 2)])
    assert len(ml) == 2 and list(ml.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_repr_matches_torch():
    torch = pytest.importorskip("torch")

    def build(lib):
        return lib.Sequential(
            lib.Linear(2, 3), lib.LeakyReLU(0.2), lib.ReLU(), lib.Tanh(), lib.Sigmoid(),
            lib.Sequential(lib.Conv2d(1, 4, 3, 2, 1, bias=False), lib.ConvTranspose2d(4, 2, 4, 2, 1, 1)),
            lib.Flatten(), lib.Unflatten(1, (2, 3)), lib.Upsample(scale_factor=2),
            lib.Embedding(10, 3), lib.Dropout(), lib.Identity())
    assert repr(build(nn)) == repr(build(torch.nn))
    # BatchNorm: torch 2.13 added a `bias` flag to the repr; the rest reads the same.
    assert repr(nn.BatchNorm2d(3)) == "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"


def test_deepcopy_gives_an_independent_module():
    net = dcgan_like(nn)
    twin = copy.deepcopy(net)
    assert list(twin.state_dict()) == list(net.state_dict())
    assert twin[0].weight is not net[0].weight
    twin[0].weight.data[...] = 0
    assert np.abs(net[0].weight.data).sum() > 0


def test_apply_and_requires_grad():
    net = dcgan_like(nn)
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen.count("Conv2d") == 2
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


# ---------------------------------------------------------------------------------------
# state_dict / load_state_dict

def test_state_dict_is_a_host_numpy_snapshot():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    sd = net.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert sd["1.num_batches_tracked"].dtype == np.int64 and sd["1.num_batches_tracked"].shape == ()
    before = sd["0.weight"].copy()
    net[0].weight.data += 1
    np.testing.assert_array_equal(sd["0.weight"], before)
    assert net.state_dict(keep_vars=True)["0.weight"] is net[0].weight


def test_load_state_dict_round_trip_in_place():
    tg.manual_seed(1)
    src = dcgan_like(nn)
    tg.manual_seed(2)
    dst = dcgan_like(nn)
    weight, array = dst[0].weight, dst[0].weight.data
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst[0].weight is weight and dst[0].weight.data is array         # loaded in place
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_load_state_dict_accepts_tensors_and_casts_dtype():
    net = nn.Linear(2, 2)
    sd = {"weight": Tensor(np.ones((2, 2))), "bias": np.arange(2.0)}      # float64 in
    net.load_state_dict(sd)
    assert net.weight.dtype == np.float32
    np.testing.assert_array_equal(net.bias.data, [0, 1])


def test_load_state_dict_strict_errors_name_the_keys_and_shapes():
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    sd = net.state_dict()
    sd.pop("1.running_var")
    sd["extra.weight"] = np.zeros(1)
    with pytest.raises(ValueError) as e:
        net.load_state_dict(sd)
    assert "missing key(s) in state_dict: '1.running_var'" in str(e.value)
    assert "unexpected key(s) in state_dict: 'extra.weight'" in str(e.value)

    sd = net.state_dict()
    sd["0.weight"] = np.zeros((4, 2), dtype=np.float32)
    sd["0.bias"] = np.full(3, 7.0, dtype=np.float32)
    before = net[0].bias.data.copy()
    with pytest.raises(ValueError, match=r"size mismatch for '0.weight': the state_dict has shape "
                                         r"\(4, 2\), this model has \(3, 2\)"):
        net.load_state_dict(sd)
    np.testing.assert_array_equal(net[0].bias.data, before)    # nothing was written

    sd = net.state_dict()
    sd.pop("1.num_batches_tracked")
    sd["unused"] = np.zeros(2)
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["1.num_batches_tracked"] and result.unexpected_keys == ["unused"]


def test_load_a_torch_state_dict_as_is_and_back():
    torch = pytest.importorskip("torch")
    theirs = dcgan_like(torch.nn)
    ours = dcgan_like(nn)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy(), err_msg=k)
    # ...and ours loads into torch, strict.
    tg.manual_seed(3)
    ours = dcgan_like(nn)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(theirs.state_dict()[k].numpy(), v, err_msg=k)


# ---------------------------------------------------------------------------------------
# Modes, devices, gradients

def test_train_eval_flags_recurse():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net[1].train()
    assert not net.training and net[1].training and net[1][0].training


def test_to_dtype_keeps_parameter_identity():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = net[0].weight
    net[0].weight.grad = Tensor(np.ones((2, 2), dtype=np.float32))
    assert net.to(np.float64) is net
    assert net[0].weight is weight and weight.dtype == np.float64 and weight.grad.dtype == np.float64
    assert net[1].running_mean.dtype == np.float64
    assert net[1].num_batches_tracked.dtype == np.int64          # only floats are cast
    net.float()
    assert weight.dtype == np.float32
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


def test_to_device_moves_parameters_and_buffers(device):
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = net[0].weight
    net.to(device)
    assert net[0].weight is weight
    assert all(t.device == device for t in list(net.parameters()) + list(net.buffers()))
    assert all(isinstance(v, np.ndarray) for v in net.state_dict().values())
    net.to("cpu")
    assert weight.device == "cpu"


def test_zero_grad_sets_none():
    net = nn.Linear(2, 2)
    for p in net.parameters():
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ---------------------------------------------------------------------------------------
# Layer construction and default initialisation

@pytest.mark.parametrize("make,shapes", [
    (lambda: nn.Linear(5, 3), {"weight": (3, 5), "bias": (3,)}),
    (lambda: nn.Conv2d(2, 4, 3), {"weight": (4, 2, 3, 3), "bias": (4,)}),
    (lambda: nn.Conv2d(2, 4, (3, 1), bias=False), {"weight": (4, 2, 3, 1)}),
    (lambda: nn.ConvTranspose2d(2, 4, 4, 2, 1), {"weight": (2, 4, 4, 4), "bias": (4,)}),
    (lambda: nn.Embedding(10, 3), {"weight": (10, 3)}),
    (lambda: nn.BatchNorm1d(3), {"weight": (3,), "bias": (3,), "running_mean": (3,),
                                 "running_var": (3,), "num_batches_tracked": ()}),
    (lambda: nn.BatchNorm2d(3, affine=False, track_running_stats=False), {}),
])
def test_parameter_shapes(make, shapes):
    m = make()
    assert {k: v.shape for k, v in m.state_dict().items()} == shapes
    assert all(v.dtype == np.float32 for k, v in m.state_dict().items() if k != "num_batches_tracked")


def test_conv_arguments_int_or_pair():
    c = nn.Conv2d(1, 1, 3, stride=(2, 1), padding=1)
    assert (c.kernel_size, c.stride, c.padding) == ((3, 3), (2, 1), (1, 1))
    t = nn.ConvTranspose2d(1, 1, (4, 2), 2, 1, output_padding=(1, 0))
    assert (t.kernel_size, t.output_padding) == ((4, 2), (1, 0))
    with pytest.raises(TypeError, match="^Conv2d: kernel_size must be an int or a pair"):
        nn.Conv2d(1, 1, (3, 3, 3))
    # the same check as F.conv2d's (one helper): a bool is not a size there either
    with pytest.raises(TypeError, match=r"^ConvTranspose2d: stride must be an int or a pair of ints, got \(True, 1\)"):
        nn.ConvTranspose2d(1, 1, 3, stride=(True, 1))
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(1, 1, 3, stride=1, output_padding=1)
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


@pytest.mark.parametrize("make,fan_in", [(lambda: nn.Linear(50, 40), 50),
                                         (lambda: nn.Conv2d(8, 16, 3), 72),
                                         (lambda: nn.ConvTranspose2d(16, 8, 4), 128)])
def test_default_init_is_uniform_one_over_sqrt_fan_in(make, fan_in):
    tg.manual_seed(0)
    m = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (m.weight, m.bias):
        a = p.data
        assert np.abs(a).max() <= bound
        if a.size > 100:   # U(-b, b): max near b, std b/sqrt(3)
            assert np.abs(a).max() > 0.95 * bound
            assert abs(a.std() - bound / math.sqrt(3)) < 0.1 * bound


def test_batchnorm_and_embedding_init():
    bn = nn.BatchNorm2d(4)
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    np.testing.assert_array_equal(bn.running_var.data, 1)
    tg.manual_seed(0)
    e = nn.Embedding(400, 50)
    assert abs(e.weight.data.mean()) < 0.02 and abs(e.weight.data.std() - 1) < 0.02


def test_init_is_reproducible_with_manual_seed():
    tg.manual_seed(7)
    a = dcgan_like(nn).state_dict()
    tg.manual_seed(7)
    b = dcgan_like(nn).state_dict()
    c = dcgan_like(nn).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


# ---------------------------------------------------------------------------------------
# nn.init

def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert nn.init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


@pytest.mark.parametrize("fn,kwargs,expected_std", [
    ("kaiming_uniform_", dict(a=0.2), math.sqrt(2 / 1.04) / math.sqrt(64)),
    ("kaiming_normal_", dict(nonlinearity="relu"), math.sqrt(2) / math.sqrt(64)),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="relu"), math.sqrt(2) / math.sqrt(512)),
    ("xavier_uniform_", dict(gain=2.0), 2 * math.sqrt(2 / (64 + 512))),
    ("xavier_normal_", dict(), math.sqrt(2 / (64 + 512))),
    ("normal_", dict(mean=0.0, std=0.02), 0.02),
    ("uniform_", dict(a=-1.0, b=1.0), 1 / math.sqrt(3)),
])
def test_init_statistics(fn, kwargs, expected_std):
    tg.manual_seed(0)
    t = nn.Parameter(np.empty((32, 4, 4, 4), dtype=np.float32))     # fan_in 4·16, fan_out 32·16
    array = t.data
    assert getattr(nn.init, fn)(t, **kwargs) is t and t.data is array
    assert abs(t.data.mean()) < 0.05 * expected_std           # 8192 samples: ~4.5 sigma
    assert abs(t.data.std() / expected_std - 1) < 0.05


def test_constant_inits_and_errors():
    t = nn.Parameter(np.empty((2, 3)))
    assert np.all(nn.init.ones_(t).data == 1) and np.all(nn.init.zeros_(t).data == 0)
    assert np.all(nn.init.constant_(t, 0.5).data == 0.5)
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.init.xavier_uniform_(nn.Parameter(np.empty(3)))
    with pytest.raises(ValueError, match="mode"):
        nn.init.kaiming_uniform_(t, mode="fan_avg")


# ---------------------------------------------------------------------------------------
# Forward and backward through the layers (these need the functional ops)

def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _mlp(lib, dropout=0.0):
    return lib.Sequential(lib.Linear(4, 8), lib.BatchNorm1d(8, momentum=0.2), lib.LeakyReLU(0.2),
                          lib.Dropout(dropout), lib.Linear(8, 6), lib.ReLU(), lib.Linear(6, 3),
                          lib.Sigmoid())


def _convnet(lib):
    return lib.Sequential(
        lib.Conv2d(2, 4, 3, stride=2, padding=1), lib.BatchNorm2d(4), lib.LeakyReLU(0.1),
        lib.ConvTranspose2d(4, 3, 4, stride=2, padding=1, output_padding=(1, 0)), lib.Tanh(),
        lib.Upsample(scale_factor=2), lib.Flatten(), lib.Unflatten(1, (3, 18, 16)),
        lib.Conv2d(3, 2, (3, 2), stride=(2, 3), padding=(0, 1), bias=False))


def _assert_close_state(ours, theirs, tol=1e-5):
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=tol, atol=tol, err_msg=k)


@pytest.mark.parametrize("build,shape", [(_mlp, (16, 4)), (_convnet, (3, 2, 8, 8))])
def test_forward_backward_and_running_stats_match_torch(rng, build, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = build(nn), build(torch.nn)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = _x(rng, *shape)

    for step in range(2):                       # training mode: batch statistics, stats move
        y = ours(Tensor(x))
        ty = theirs(torch.from_numpy(x))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
        ours.zero_grad()
        theirs.zero_grad()
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
    _assert_close_state(ours, theirs)              # running stats and num_batches_tracked == 2

    ours.eval(), theirs.eval()                  # eval: running statistics
    with tg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_torch_runs_our_trained_weights(rng):
    torch = pytest.importorskip("torch")
    ours, theirs = _convnet(nn), _convnet(torch.nn)
    x = _x(rng, 4, 2, 8, 8)
    ours(Tensor(x))                             # move the running statistics away from 0 / 1
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    ours.eval(), theirs.eval()
    with tg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(),
                                   rtol=1e-4, atol=1e-5)


def test_batchnorm_train_uses_batch_stats_eval_uses_running_stats(rng):
    bn = nn.BatchNorm2d(3, momentum=0.5)
    x = _x(rng, 4, 3, 2, 2) * 3 + 1
    y = bn(Tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)           # batch statistics
    np.testing.assert_allclose(bn.running_mean.data, 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    assert int(bn.num_batches_tracked.data) == 1
    bn.eval()
    mean, var = bn.running_mean.data.copy(), bn.running_var.data.copy()
    y = bn(Tensor(x)).data
    np.testing.assert_allclose(y, (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.data, mean)                  # no update in eval
    assert int(bn.num_batches_tracked.data) == 1


def test_batchnorm_cumulative_average_and_no_tracking(rng):
    bn = nn.BatchNorm1d(2, momentum=None)          # running stats = average over batches
    xs = [_x(rng, 5, 2) for _ in range(3)]
    for x in xs:
        bn(Tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-5)
    free = nn.BatchNorm1d(2, track_running_stats=False).eval()
    y = free(Tensor(xs[0])).data                   # no running stats: batch statistics even in eval
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    assert free.state_dict().keys() == {"weight", "bias"}


def test_batchnorm1d_on_sequences_and_bad_input(rng):
    torch = pytest.importorskip("torch")
    x = _x(rng, 3, 2, 5)
    ours, theirs = nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    _assert_close_state(ours, theirs)
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4-D input, got shape \(3, 2, 5\)"):
        nn.BatchNorm2d(2)(Tensor(x))
    with pytest.raises(ValueError, match="num_features=4"):
        nn.BatchNorm1d(4)(Tensor(x))


def test_dropout_train_and_eval(rng):
    tg.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = np.ones((200, 50), dtype=np.float32)
    y = drop(Tensor(x)).data
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    drop.eval()
    np.testing.assert_array_equal(drop(Tensor(x)).data, x)


def test_embedding_and_identity(rng):
    e = nn.Embedding(5, 3)
    idx = np.array([[0, 4], [2, 2]])
    y = e(Tensor(idx))
    np.testing.assert_array_equal(y.data, e.weight.data[idx])
    y.sum().backward()
    np.testing.assert_array_equal(e.weight.grad.data[:, 0], [1, 0, 2, 0, 1])
    x = Tensor(_x(rng, 2))
    assert nn.Identity(54, unused=1)(x) is x


def test_linear_gradcheck_through_the_module(rng):
    lin = nn.Linear(3, 2).double()
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert tg.gradcheck(lambda x, w, b: tg.functional.linear(x, w, b), [x, lin.weight, lin.bias])
    assert tg.gradgradcheck(lambda x: lin(x) ** 2, [x])


@pytest.mark.parametrize("x_shape", [(4, 3), (3,), (2, 2, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_first_and_second_order_in_every_input(rng, x_shape, with_bias):
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    inputs = [x, w, b] if with_bias else [x, w]
    f = lambda *t: tg.functional.linear(*t) ** 2          # squared: the 2nd order is not 0
    assert tg.gradcheck(f, inputs)
    assert tg.gradgradcheck(f, inputs)
    y = tg.functional.linear(*inputs)
    assert y.shape == x_shape[:-1] + (2,)
    np.testing.assert_allclose(y.data, x.data @ w.data.T + (b.data if with_bias else 0))


def test_linear_weight_gradient_comes_in_the_weights_layout(rng):
    """gW = gyᵀ x is computed in W's C order, so optimizers update it flat without a copy."""
    lin = nn.Linear(5, 4)
    x = Tensor(rng.standard_normal((8, 5)).astype(np.float32))
    (lin(x).sum() + lin(2 * x).sum()).backward()
    assert lin.weight.grad.data.flags.c_contiguous
    np.testing.assert_allclose(lin.weight.grad.data, np.tile(3 * x.data.sum(0), (4, 1)), rtol=1e-5)
