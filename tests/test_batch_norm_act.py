"""nn.BatchNormAct1d/2d: batch norm and its activation as one named layer; Sequential runs
exactly what it holds; checkpoints saved with separate BatchNorm + activation layers load."""
import numpy as np
import pytest

import tinygan as tg
from tinygan import checkpoint, nn
from tinygan.autograd import Tensor
from tinygan.functional import normalization
from tinygan.gans import create
from tinygan.gans.nets import DCGANDiscriminator, DCGANGenerator, MLPGenerator


def _ops(y):
    """The names of the Functions in y's graph."""
    names, stack = set(), [y.creator]
    while stack:
        f = stack.pop()
        names.add(type(f).__name__)
        stack += [t.creator for t in f.inputs if t.creator is not None]
    return names


def test_sequential_runs_the_batch_norm_it_holds(monkeypatch):
    """No rewrite: a BatchNorm2d followed by a LeakyReLU runs both, and BatchNorm.backward
    (a breakpoint there) is reached; BatchNormAct2d is the one op when a net names it."""
    calls = {"forward": 0, "backward": 0}
    forward, backward = nn.BatchNorm2d.forward, normalization.BatchNorm.backward

    def counting_forward(self, x):
        calls["forward"] += 1
        return forward(self, x)

    def counting_backward(self, gy):
        calls["backward"] += 1
        return backward(self, gy)

    monkeypatch.setattr(nn.BatchNorm2d, "forward", counting_forward)
    monkeypatch.setattr(normalization.BatchNorm, "backward", counting_backward)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 2, 5, 5)))
    net = nn.Sequential(nn.Conv2d(2, 3, 3, dtype=np.float64), nn.BatchNorm2d(3, dtype=np.float64),
                        nn.LeakyReLU(0.2), nn.Conv2d(3, 3, 1, dtype=np.float64),
                        nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU())
    y = net(x)
    assert calls["forward"] == 2
    assert {"BatchNorm", "LeakyReLU", "ReLU"} <= _ops(y) and "BatchNormAct" not in _ops(y)
    y.sum().backward()
    assert calls["backward"] == 2

    fused = nn.Sequential(nn.Conv2d(2, 3, 3, dtype=np.float64),
                          nn.BatchNormAct2d(3, "leaky_relu", 0.2, dtype=np.float64))
    ops = _ops(fused(x))
    assert "BatchNormAct" in ops and "LeakyReLU" not in ops


def _pair(kind, activation, slope):
    """(BatchNormAct, Sequential(BatchNorm, activation)) with the same random state."""
    rng = np.random.default_rng(7)
    act = nn.ReLU() if activation == "relu" else nn.LeakyReLU(slope)
    fused = getattr(nn, f"BatchNormAct{kind}")(3, activation, slope, momentum=0.3, dtype=np.float64)
    plain = nn.Sequential(getattr(nn, f"BatchNorm{kind}")(3, momentum=0.3, dtype=np.float64), act)
    fused.load_state_dict({"weight": rng.uniform(0.5, 1.5, 3), "bias": rng.standard_normal(3),
                           "running_mean": rng.standard_normal(3),
                           "running_var": rng.uniform(0.5, 2, 3),
                           "num_batches_tracked": np.array(3)})
    plain[0].load_state_dict(fused.state_dict())
    return fused, plain


@pytest.mark.parametrize("kind, shape", [("2d", (4, 3, 2, 3)), ("1d", (6, 3)), ("1d", (4, 3, 5))])
@pytest.mark.parametrize("activation, slope", [("relu", 0.01), ("leaky_relu", 0.2)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_act_equals_batch_norm_then_activation(kind, shape, activation, slope, training):
    """Forward, backward, the gradient-penalty double backward and the running statistics."""
    fused, plain = _pair(kind, activation, slope)
    if not training:
        fused.eval(), plain.eval()
    rng = np.random.default_rng(0)
    x0, r = rng.standard_normal(shape) * 2 + 0.5, Tensor(rng.standard_normal(shape))
    results = []
    for net, params in ((fused, [fused.weight, fused.bias]), (plain, [plain[0].weight, plain[0].bias])):
        x = Tensor(x0.copy(), requires_grad=True)
        y = net(x)
        gx, gw = tg.grad((y * r).sum(), [x, params[0]], create_graph=True)
        (gx ** 2).sum().backward()                       # grads of the penalty, into .grad
        ggx = np.zeros(shape) if x.grad is None else x.grad.data   # None in eval: gx is affine
        assert (x.grad is None) == (not training)
        results.append([y.data, gx.data, gw.data, ggx, params[0].grad.data]
                       + [b.data.copy() for b in net.buffers()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind, shape", [("2d", (3, 2, 2, 2)), ("1d", (5, 2))])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_act_module_first_and_second_order(kind, shape, activation, training):
    """Finite differences through the layer in x (its weight and bias: F.batch_norm_act's
    tests); the input is drawn until every normalised value is > 0.05 away from the kink."""
    m = getattr(nn, f"BatchNormAct{kind}")(shape[1], activation, 0.2, dtype=np.float64)
    rng = np.random.default_rng(0)
    m.load_state_dict({**m.state_dict(), "weight": rng.uniform(0.5, 1.5, shape[1]),
                       "bias": rng.standard_normal(shape[1])})
    m.train(training)
    axes, bshape = (0,) + tuple(range(2, len(shape))), (1, -1) + (1,) * (len(shape) - 2)
    for _ in range(500):
        x = rng.standard_normal(shape) * 2
        xhat = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5) \
            if training else x / np.sqrt(1 + 1e-5)
        z = xhat * m.weight.data.reshape(bshape) + m.bias.data.reshape(bshape)
        if np.abs(z).min() > 0.05:
            break
    else:
        raise AssertionError("no input clear of the kink found")
    X = Tensor(x, requires_grad=True)
    assert tg.gradcheck(lambda x: m(x) ** 2, [X])
    assert tg.gradgradcheck(lambda x: m(x) ** 2, [X])


def test_batch_norm_act_is_a_batch_norm_with_its_keys_and_checks():
    m = nn.BatchNormAct2d(4, "leaky_relu", 0.2)
    assert isinstance(m, nn.BatchNorm2d)                # nn.init, dcgan_init_ and freezing find it
    assert list(m.state_dict()) == list(nn.BatchNorm2d(4).state_dict())
    assert repr(m) == ("BatchNormAct2d(4, activation='leaky_relu', negative_slope=0.2, eps=1e-05, "
                       "momentum=0.1, affine=True, track_running_stats=True)")
    assert repr(nn.BatchNormAct1d(2, affine=False)) == (
        "BatchNormAct1d(2, activation='relu', eps=1e-05, momentum=0.1, affine=False, "
        "track_running_stats=True)")
    with pytest.raises(ValueError, match=r"^BatchNormAct2d: activation must be 'relu' or 'leaky_relu', got 'tanh'$"):
        nn.BatchNormAct2d(4, "tanh")
    with pytest.raises(ValueError, match=r"^BatchNormAct1d: negative_slope must be a number in \[0, 1\], got 1.5$"):
        nn.BatchNormAct1d(4, "leaky_relu", 1.5)
    with pytest.raises(ValueError, match=r"BatchNormAct2d: expected 4-D input, got shape \(2, 4\)"):
        m(Tensor(np.zeros((2, 4), np.float32)))


# -- old checkpoints: nets saved with BatchNorm and the activation as two layers ------------------

class _Old(nn.Module):
    """A net as these nets were built before BatchNormAct, from its named parts."""

    def __init__(self, **parts):
        super().__init__()
        for name, part in parts.items():
            setattr(self, name, part)

    def forward(self, x):
        return self.main(x) if hasattr(self, "main") else self.head(self.body(x)).reshape(-1)


def _old_dcgan_generator():          # DCGANGenerator(z_dim=8, channels=1, size=16, ngf=4)
    return _Old(main=nn.Sequential(
        nn.ConvTranspose2d(8, 8, 4, 1, 0, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.ConvTranspose2d(8, 4, 4, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.ConvTranspose2d(4, 1, 4, 2, 1, bias=False), nn.Tanh()))


def _old_dcgan_discriminator():      # DCGANDiscriminator(channels=1, size=16, ndf=4)
    return _Old(body=nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
                                   nn.Conv2d(4, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8),
                                   nn.LeakyReLU(0.2)),
                head=nn.Conv2d(8, 1, 4, 1, 0, bias=False))


def _old_mlp_generator():            # MLPGenerator(4, (6,), hidden=(5, 7))
    return _Old(main=nn.Sequential(
        nn.Linear(4, 5), nn.BatchNorm1d(5, momentum=0.2), nn.LeakyReLU(0.2),
        nn.Linear(5, 7), nn.BatchNorm1d(7, momentum=0.2), nn.LeakyReLU(0.2),
        nn.Linear(7, 6), nn.Tanh()))


@pytest.mark.parametrize("old, new, shape", [
    (_old_dcgan_generator, lambda: DCGANGenerator(8, 1, 16, ngf=4), (5, 8, 1, 1)),
    (_old_dcgan_discriminator, lambda: DCGANDiscriminator(1, 16, ndf=4), (5, 1, 16, 16)),
    (_old_mlp_generator, lambda: MLPGenerator(4, (6,), hidden=(5, 7)), (5, 4)),
])
def test_checkpoint_saved_with_separate_layers_loads(tmp_path, old, new, shape):
    tg.manual_seed(3)
    before = old()
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal(shape).astype(np.float32))
    for _ in range(2):                                   # move the running statistics
        before(x)
    for p in before.parameters():                        # and the BN affine parts off 1, 0
        p.data[...] = rng.standard_normal(p.shape)
    path = checkpoint.save(str(tmp_path / "old.npz"), {"G": before.state_dict()})
    state, _ = checkpoint.load(path)

    after = new()
    after.load_state_dict(state["G"])                    # strict: every key, every shape
    assert any(isinstance(m, (nn.BatchNormAct1d, nn.BatchNormAct2d)) for m in after.modules())
    for training in (False, True):                       # eval: the loaded running statistics
        before.train(training), after.train(training)
        np.testing.assert_allclose(after(x).data.reshape(-1), before(x).data.reshape(-1),
                                   rtol=1e-5, atol=1e-6)


def test_append_to_a_net_numbered_with_gaps_keeps_every_layer():
    G = DCGANGenerator(8, 1, 16, ngf=4)
    assert list(G.main._modules) == ["0", "1", "3", "4", "6", "7"]
    G.main.append(nn.Identity())
    assert list(G.main._modules) == ["0", "1", "3", "4", "6", "7", "8"]
    assert len(nn.Sequential(nn.ReLU()).append(nn.Tanh())) == 2


def test_virtual_bn_keeps_the_fused_activation():
    v = create("dcgan", (1, 8, 8), config=dict(z_dim=4, ngf=4, ndf=4, virtual_bn=True, vbn_ref_size=3))
    vbns = [m for m in v.G.modules() if type(m).__name__ == "VirtualBatchNorm"]
    assert len(vbns) == 1 and vbns[0].negative_slope == 0.0      # G's BatchNormAct2d: ReLU
    from tinygan.gans import tricks
    x = Tensor(np.random.default_rng(0).standard_normal((5, 4, 4, 4)).astype(np.float32))
    plain = tricks.virtual_batch_norm(x, 3, vbns[0].weight, vbns[0].bias).data
    np.testing.assert_allclose(vbns[0](x).data, np.maximum(plain, 0), rtol=1e-6)
