"""The image-to-image layers (pix2pix, CycleGAN, SRGAN): dropout2d, instance norm, reflection /
replication / circular padding, pixel (un)shuffle, bilinear and bicubic resizing, PReLU and the
residual block.  Values against hand-computed cases and NumPy references, gradients of first
and second order in float64, eval mode and edge cases; PyTorch parity when it is installed."""
import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
import tinygan.nn as nn
from tinygan import Tensor, gradcheck, gradgradcheck


def _t(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------------------------------
# dropout2d

def test_dropout2d_drops_whole_channels_and_scales(rng):
    tg.manual_seed(0)
    x = _t(rng.standard_normal((40, 30, 3, 2)) + 5.0)        # no exact zeros in x
    y = F.dropout2d(x, 0.3)
    kept = (y.data != 0).all(axis=(2, 3))
    dropped = (y.data == 0).all(axis=(2, 3))
    assert np.all(kept | dropped)                             # a channel goes whole or not at all
    assert abs(kept.mean() - 0.7) < 0.05                      # 1200 draws: 4.5 sigma
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.7, rtol=1e-12)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data[kept], np.full(kept.sum() * 6, 1 / 0.7).reshape(-1, 3, 2))
    assert np.all(x.grad.data[dropped] == 0)


def test_dropout2d_p0_p1_eval_and_seed(rng):
    x = _t(rng.standard_normal((2, 3, 4, 4)))
    assert F.dropout2d(x, 0.0) is x and F.dropout2d(x, 0.7, training=False) is x
    assert np.all(F.dropout2d(x, 1.0).data == 0)
    layer = nn.Dropout2d(0.5)
    tg.manual_seed(7)
    a = layer(x).data
    tg.manual_seed(7)
    np.testing.assert_array_equal(a, layer(x).data)
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == "Dropout2d(p=0.5, inplace=False)"


def test_dropout_p1_gradient_is_zero_and_p0_passes_through(rng):
    x = _t(rng.standard_normal((3, 4)))
    F.dropout(x, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros((3, 4)))
    x.grad = None
    F.dropout(x, 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((3, 4)))


def test_dropout2d_derivatives_with_fixed_mask(rng):
    x = _t(rng.standard_normal((2, 4, 2, 3)))

    def fn(x):
        tg.manual_seed(3)                       # the same channel mask on every evaluation
        return F.tanh(F.dropout2d(x, 0.4))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


# ---------------------------------------------------------------------------------------
# instance norm

def _instance_norm_np(x, w=None, b=None, eps=1e-5):
    """The definition, per (sample, channel) plane."""
    mean = x.mean(axis=(2, 3), keepdims=True)
    y = (x - mean) / np.sqrt(x.var(axis=(2, 3), keepdims=True) + eps)
    if w is not None:
        y = y * w[None, :, None, None] + b[None, :, None, None]
    return y


def test_instance_norm_hand_computed_plane():
    # One 2x2 plane [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
    x = _t(np.arange(1.0, 5.0).reshape(1, 1, 2, 2))
    y = F.instance_norm(x, eps=0.0)
    np.testing.assert_allclose(y.data.ravel(), np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(1.25),
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 3, 1), (3, 2, 1, 7)])
def test_instance_norm_values_against_numpy(rng, shape):
    x = rng.standard_normal(shape) * 3 + rng.standard_normal(shape[:2] + (1, 1))
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    np.testing.assert_allclose(F.instance_norm(_t(x)).data, _instance_norm_np(x), atol=1e-12)
    np.testing.assert_allclose(F.instance_norm(_t(x), weight=_t(w), bias=_t(b)).data,
                               _instance_norm_np(x, w, b), atol=1e-12)


def test_instance_norm_running_stats_update_and_eval(rng):
    x = rng.standard_normal((3, 2, 4, 5)) * 2 + 1
    rm, rv = np.zeros(2), np.ones(2)
    F.instance_norm(_t(x), rm, rv, momentum=0.25)
    plane_mean = x.mean(axis=(2, 3))                     # (N, C)
    plane_var = x.var(axis=(2, 3), ddof=1)               # unbiased, as batch norm's update
    np.testing.assert_allclose(rm, 0.25 * plane_mean.mean(0), rtol=1e-12)
    np.testing.assert_allclose(rv, 0.75 + 0.25 * plane_var.mean(0), rtol=1e-12)
    y = F.instance_norm(_t(x), rm, rv, use_input_stats=False, eps=1e-5)
    np.testing.assert_allclose(y.data, (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5),
                               rtol=1e-12)


@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_derivatives(rng, affine):
    x = _t(rng.standard_normal((2, 3, 3, 2)))
    w, b = _t(rng.standard_normal(3)), _t(rng.standard_normal(3))
    if affine:
        def fn(x, w, b):
            return F.instance_norm(x, weight=w, bias=b)
        args = (x, w, b)
    else:
        def fn(x):
            return F.instance_norm(x)
        args = (x,)
    assert gradcheck(fn, args)
    assert gradgradcheck(fn, args)


def test_instance_norm_eval_mode_derivatives(rng):
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    x, w, b = _t(rng.standard_normal((2, 3, 2, 2))), _t(rng.standard_normal(3)), _t(rng.standard_normal(3))

    def fn(x, w, b):
        return F.tanh(F.instance_norm(x, rm, rv, w, b, use_input_stats=False))
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))


def test_instance_norm_1d_and_3d_inputs(rng):
    x = rng.standard_normal((2, 3, 5))
    mean, var = x.mean(2, keepdims=True), x.var(2, keepdims=True)
    np.testing.assert_allclose(F.instance_norm(_t(x)).data, (x - mean) / np.sqrt(var + 1e-5), atol=1e-12)
    x5 = rng.standard_normal((1, 2, 2, 3, 2))
    mean, var = x5.mean((2, 3, 4), keepdims=True), x5.var((2, 3, 4), keepdims=True)
    np.testing.assert_allclose(F.instance_norm(_t(x5)).data, (x5 - mean) / np.sqrt(var + 1e-5), atol=1e-12)


def test_instance_norm2d_layer_state_and_modes(rng):
    layer = nn.InstanceNorm2d(3)
    assert layer.weight is None and layer.running_mean is None and list(layer.state_dict()) == []
    x = rng.standard_normal((2, 3, 4, 4))
    y_train = layer(_t(x)).data
    layer.eval()                         # no running stats: eval also uses the input's statistics
    np.testing.assert_array_equal(layer(_t(x)).data, y_train)
    np.testing.assert_allclose(layer(_t(x[0])).data, y_train[0], atol=1e-12)     # unbatched (C, H, W)
    assert repr(layer) == ("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, "
                           "track_running_stats=False)")

    tracked = nn.InstanceNorm2d(3, affine=True, track_running_stats=True, dtype="float64")
    assert list(tracked.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                          "num_batches_tracked"]
    tracked(_t(x))
    np.testing.assert_allclose(tracked.running_mean.data, 0.1 * x.mean(axis=(2, 3)).mean(0), rtol=1e-12)
    assert int(tracked.num_batches_tracked.data) == 0            # torch never counts it here
    tracked.eval()
    rm, rv = tracked.running_mean.data, tracked.running_var.data
    np.testing.assert_allclose(tracked(_t(x)).data,
                               (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5), rtol=1e-12)
    assert not isinstance(tracked, nn.BatchNorm2d)    # batch-norm-specific init does not catch it


@pytest.mark.parametrize("call, exc, match", [
    (lambda: F.instance_norm(_t(np.zeros((2, 3, 1, 1)))), ValueError, "more than 1 spatial element"),
    (lambda: F.instance_norm(_t(np.zeros((2, 3)))), ValueError, r"instance_norm: input must be"),
    (lambda: F.instance_norm(_t(np.zeros((2, 3, 2, 2))), weight=_t(np.ones(2))), ValueError,
     r"weight has shape \(2,\) but input \(2, 3, 2, 2\) has 3 channels"),
    (lambda: F.instance_norm(_t(np.zeros((2, 3, 2, 2))), use_input_stats=False), ValueError,
     "running_mean and running_var are required"),
    (lambda: nn.InstanceNorm2d(4, affine=True)(_t(np.zeros((2, 3, 2, 2)))), ValueError,
     "num_features=4"),
    (lambda: nn.InstanceNorm2d(3)(_t(np.zeros((2, 3, 2, 2, 2)))), ValueError, "InstanceNorm2d: expected"),
])
def test_instance_norm_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_instance_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, w, b = rng.standard_normal((3, 4, 5, 3)), rng.standard_normal(4), rng.standard_normal(4)
    ours = nn.InstanceNorm2d(4, affine=True, track_running_stats=True, dtype="float64")
    theirs = torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True).double()
    ours.load_state_dict({"weight": w, "bias": b, "running_mean": np.zeros(4),
                          "running_var": np.ones(4), "num_batches_tracked": np.array(0)})
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    X, tX = _t(x), torch.tensor(x, requires_grad=True)
    y, ty = ours(X), theirs(tX)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(x.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(X.grad.data, tX.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-8)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-10, err_msg=k)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(_t(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)
