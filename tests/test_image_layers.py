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


# ---------------------------------------------------------------------------------------
# padding: reflect, replicate, circular (NumPy's reflect, edge, wrap) and the layers

NP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def test_reflection_pad_hand_computed():
    x = _t(np.array([[[[1.0, 2.0, 3.0]]]]))
    np.testing.assert_array_equal(F.pad(x, (2, 1), mode="reflect").data.ravel(), [3, 2, 1, 2, 3, 2])
    np.testing.assert_array_equal(F.pad(x, (2, 1), mode="replicate").data.ravel(), [1, 1, 1, 2, 3, 3])
    np.testing.assert_array_equal(F.pad(x, (2, 1), mode="circular").data.ravel(), [2, 3, 1, 2, 3, 1])


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", [((2, 1, 3, 5), (1, 2, 0, 1)), ((1, 2, 4, 3), (2, 2, 3, 3)),
                                        ((1, 1, 2, 2), (1, 1, 1, 1)), ((2, 3, 5), (4, 1))])
def test_pad_modes_against_numpy_and_derivatives(rng, mode, shape, pad):
    # (2, 2, 3, 3) on 4x3 and (1, 1, 1, 1) on 2x2 are reflection widths of size - 1
    x = _t(rng.standard_normal(shape))
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = pad[2 * k:2 * k + 2]
    np.testing.assert_array_equal(F.pad(x, pad, mode=mode).data, np.pad(x.data, widths, mode=NP_MODE[mode]))

    def fn(x):
        return F.tanh(F.pad(x, pad, mode=mode))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_reflection_pad_gradient_adds_mirrored_positions():
    x = _t(np.zeros((1, 1, 1, 3)))
    F.pad(x, (2, 2), mode="reflect").sum().backward()
    # output reads positions [2, 1, 0, 1, 2, 1, 0]: each input gets one per read
    np.testing.assert_array_equal(x.grad.data.ravel(), [2, 3, 2])


def test_pad_layers(rng):
    x = _t(rng.standard_normal((2, 3, 4, 5)))
    np.testing.assert_array_equal(nn.ZeroPad2d(2)(x).data, np.pad(x.data, [(0, 0)] * 2 + [(2, 2)] * 2))
    np.testing.assert_array_equal(nn.ZeroPad2d((1, 0, 2, 3))(x).data,
                                  np.pad(x.data, [(0, 0), (0, 0), (2, 3), (1, 0)]))
    np.testing.assert_array_equal(nn.ConstantPad2d(1, 0.5)(x).data,
                                  np.pad(x.data, [(0, 0)] * 2 + [(1, 1)] * 2, constant_values=0.5))
    for layer, np_mode in ((nn.ReflectionPad2d((3, 4, 1, 3)), "reflect"),
                           (nn.ReplicationPad2d((3, 4, 1, 3)), "edge"),
                           (nn.CircularPad2d((3, 4, 1, 3)), "wrap")):
        np.testing.assert_array_equal(layer(x).data, np.pad(x.data, [(0, 0), (0, 0), (1, 3), (3, 4)],
                                                            mode=np_mode))
    np.testing.assert_array_equal(nn.ReflectionPad2d(1)(x[0]).data,
                                  np.pad(x.data[0], [(0, 0), (1, 1), (1, 1)], mode="reflect"))
    assert repr(nn.ReflectionPad2d((1, 2, 0, 1))) == "ReflectionPad2d((1, 2, 0, 1))"
    assert repr(nn.ZeroPad2d(2)) == "ZeroPad2d((2, 2, 2, 2))"


@pytest.mark.parametrize("call, match", [
    (lambda: F.pad(_t(np.zeros((1, 1, 3, 3))), (3, 3, 0, 0), mode="reflect"),
     r"Padding size should be less than the corresponding input dimension.*\(3, 3\) at dimension 3"),
    (lambda: nn.ReflectionPad2d((0, 0, 1, 2))(_t(np.zeros((1, 1, 2, 5)))), r"\(1, 2\) at dimension 2"),
    (lambda: F.pad(_t(np.zeros((1, 1, 3, 3))), (4, 0), mode="circular"), "wrapping around more than once"),
    (lambda: F.pad(_t(np.zeros((1, 1, 3, 3))), (1, 1), mode="symmetric"), "pad: mode must be one of"),
    (lambda: nn.ReflectionPad2d((1, 2, 3)), r"ReflectionPad2d: padding must be an int or 4 ints"),
    (lambda: nn.ZeroPad2d(1)(_t(np.zeros((3, 3)))), r"ZeroPad2d: expected 3-D"),
])
def test_pad_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------
# pixel shuffle

def test_pixel_shuffle_hand_computed_and_inverse(rng):
    x = _t(np.arange(8.0).reshape(1, 8, 1, 1))           # C = 2 groups of r² = 4 channels
    y = F.pixel_shuffle(x, 2)
    np.testing.assert_array_equal(y.data, [[[[0, 1], [2, 3]], [[4, 5], [6, 7]]]])
    x = _t(rng.standard_normal((2, 12, 3, 5)))
    y = nn.PixelShuffle(2)(x)
    assert y.shape == (2, 3, 6, 10)
    # the definition: y[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]
    n, c, h, w, i, j = 1, 2, 2, 4, 1, 0
    assert y.data[n, c, h * 2 + i, w * 2 + j] == x.data[n, c * 4 + i * 2 + j, h, w]
    np.testing.assert_array_equal(nn.PixelUnshuffle(2)(y).data, x.data)
    np.testing.assert_array_equal(F.pixel_shuffle(x[0], 2).data, y.data[0])      # unbatched


def test_pixel_shuffle_derivatives(rng):
    x = _t(rng.standard_normal((1, 9, 2, 1)))
    assert gradcheck(lambda x: F.tanh(F.pixel_shuffle(x, 3)), (x,))
    assert gradgradcheck(lambda x: F.tanh(F.pixel_shuffle(x, 3)), (x,))
    z = _t(rng.standard_normal((1, 2, 4, 2)))
    assert gradcheck(lambda z: F.tanh(F.pixel_unshuffle(z, 2)), (z,))
    assert gradgradcheck(lambda z: F.tanh(F.pixel_unshuffle(z, 2)), (z,))


@pytest.mark.parametrize("call, match", [
    (lambda: F.pixel_shuffle(_t(np.zeros((1, 3, 2, 2))), 2), r"input.size\(-3\)=3 is not divisible by 4"),
    (lambda: F.pixel_unshuffle(_t(np.zeros((1, 3, 3, 2))), 2), r"height.*input.size\(-2\)=3"),
    (lambda: F.pixel_shuffle(_t(np.zeros((1, 4, 2, 2))), 0), "upscale_factor must be a positive integer"),
    (lambda: F.pixel_shuffle(_t(np.zeros((4, 2))), 2), "at least 3 dimensions"),
])
def test_pixel_shuffle_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------
# bilinear and bicubic resizing

def _bilinear_naive(x, OH, OW, align_corners):
    """Loop oracle: sample each output pixel at its source position (torch's convention)."""
    N, C, H, W = x.shape
    y = np.zeros((N, C, OH, OW))

    def src(o, i, n):
        if align_corners:
            return o * (i - 1) / (n - 1) if n > 1 else 0.0
        return max((o + 0.5) * i / n - 0.5, 0.0)
    for p in range(OH):
        sh = src(p, H, OH)
        h0 = min(int(sh), H - 1)
        h1, lh = min(h0 + 1, H - 1), sh - h0
        for q in range(OW):
            sw = src(q, W, OW)
            w0 = min(int(sw), W - 1)
            w1, lw = min(w0 + 1, W - 1), sw - w0
            y[:, :, p, q] = ((1 - lh) * ((1 - lw) * x[:, :, h0, w0] + lw * x[:, :, h0, w1])
                             + lh * ((1 - lw) * x[:, :, h1, w0] + lw * x[:, :, h1, w1]))
    return y


def test_bilinear_hand_computed():
    # [0, 1] doubled: samples at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge: stays 1)
    x = _t(np.array([[[[0.0, 1.0]]]]))
    np.testing.assert_allclose(F.interpolate(x, size=(1, 4), mode="bilinear").data.ravel(),
                               [0, 0.25, 0.75, 1], atol=1e-15)
    np.testing.assert_allclose(F.interpolate(x, size=(1, 4), mode="bilinear", align_corners=True).data.ravel(),
                               [0, 1 / 3, 2 / 3, 1], atol=1e-15)


@pytest.mark.parametrize("shape, out", [((2, 3, 3, 5), (6, 10)), ((1, 1, 4, 4), (3, 7)), ((1, 2, 1, 3), (2, 3))])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_against_loops_and_derivatives(rng, shape, out, align_corners):
    x = _t(rng.standard_normal(shape))
    y = F.interpolate(x, size=out, mode="bilinear", align_corners=align_corners)
    np.testing.assert_allclose(y.data, _bilinear_naive(x.data, *out, align_corners), atol=1e-12)

    def fn(x):
        return F.tanh(F.interpolate(x, size=out, mode="bilinear", align_corners=align_corners))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_bicubic_hand_computed_properties_and_derivatives(rng):
    # align_corners, 3 -> 5: output 1 samples s = 0.5, taps at -1, 0, 1, 2 (the -1 clamped to 0)
    # with Keys' weights for t = 1/2, a = -0.75: (-3/32, 19/32, 19/32, -3/32).
    x = _t(np.array([1.0, 2.0, 4.0]).reshape(1, 1, 1, 3))
    y = F.interpolate(x, size=(1, 5), mode="bicubic", align_corners=True).data.ravel()
    assert y[1] == pytest.approx((-3 + 19) / 32 * 1 + 19 / 32 * 2 - 3 / 32 * 4, abs=1e-14)
    np.testing.assert_allclose(y[[0, 2, 4]], [1, 2, 4], atol=1e-14)       # on-grid samples
    # The weights sum to 1, so constants stay constant.
    const = F.interpolate(_t(np.full((1, 1, 3, 3), 2.5)), scale_factor=3, mode="bicubic").data
    np.testing.assert_allclose(const, 2.5, rtol=1e-12)
    x = _t(rng.standard_normal((1, 2, 3, 4)))

    def fn(x):
        return F.tanh(F.interpolate(x, scale_factor=2, mode="bicubic"))
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_upsample_layer_modes(rng):
    x = _t(rng.standard_normal((1, 2, 3, 3)))
    up = nn.Upsample(scale_factor=2, mode="bilinear")
    np.testing.assert_allclose(up(x).data, _bilinear_naive(x.data, 6, 6, False), atol=1e-12)
    assert repr(up) == "Upsample(scale_factor=2.0, mode='bilinear')"
    assert nn.Upsample(size=(4, 5))(x).shape == (1, 2, 4, 5)
    assert repr(nn.Upsample(size=(4, 5))) == "Upsample(size=(4, 5), mode='nearest')"
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        nn.Upsample(scale_factor=2, align_corners=True)(x)


def test_resizing_and_pixel_shuffle_match_torch(rng):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x = rng.standard_normal((2, 4, 5, 3))
    tx = torch.tensor(x)
    for kwargs in ({"scale_factor": 2}, {"scale_factor": 3}, {"size": (7, 4)}, {"scale_factor": 1.5},
                   {"scale_factor": 2.5, "recompute_scale_factor": True}):
        for mode in ("bilinear", "bicubic"):
            for ac in (False, True):
                ours = F.interpolate(_t(x), mode=mode, align_corners=ac, **kwargs).data
                theirs = tF.interpolate(tx, mode=mode, align_corners=ac, **kwargs).numpy()
                np.testing.assert_allclose(ours, theirs, atol=1e-12, err_msg=f"{mode} {ac} {kwargs}")
    np.testing.assert_array_equal(F.pixel_shuffle(_t(x), 2).data, tF.pixel_shuffle(tx, 2).numpy())
    y = rng.standard_normal((2, 3, 6, 4))
    np.testing.assert_array_equal(F.pixel_unshuffle(_t(y), 2).data, tF.pixel_unshuffle(torch.tensor(y), 2).numpy())
    for mode in ("reflect", "replicate", "circular"):
        for pad in ((2, 2, 4, 4), (0, 1, 3, 0)):
            np.testing.assert_array_equal(F.pad(_t(x), pad, mode=mode).data, tF.pad(tx, pad, mode=mode).numpy())


# ---------------------------------------------------------------------------------------
# PReLU and the blocks

def test_prelu_values_layer_and_derivatives(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    x[np.abs(x) < 0.01] = 0.5                   # keep away from the kink at 0
    w = np.array([0.1, -0.2, 0.3])
    y = F.prelu(_t(x), _t(w)).data
    np.testing.assert_allclose(y, np.where(x > 0, x, w[None, :, None, None] * x), rtol=1e-15)
    np.testing.assert_allclose(F.prelu(_t(x), _t([0.25])).data, np.where(x > 0, x, 0.25 * x), rtol=1e-15)
    layer = nn.PReLU(3, init=0.1)
    np.testing.assert_array_equal(layer.weight.data, np.full(3, 0.1, dtype=np.float32))
    assert list(layer.state_dict()) == ["weight"] and repr(layer) == "PReLU(num_parameters=3)"

    def fn(x, w):
        return F.tanh(F.prelu(x, w))
    assert gradcheck(fn, (_t(x), _t(w)))
    assert gradgradcheck(fn, (_t(x), _t(w)))
    with pytest.raises(ValueError, match=r"prelu: weight must hold 1 slope or one per channel"):
        F.prelu(_t(x), _t([0.1, 0.2]))


@pytest.mark.parametrize("kwargs", [{}, {"norm": "batch", "padding_mode": "zeros", "activation": "prelu"},
                                    {"norm": "none", "dropout": 0.5}])
def test_residual_block_is_x_plus_body(rng, kwargs):
    tg.manual_seed(0)
    block = nn.ResidualBlock(3, **kwargs).to(dtype=np.float64)
    x = _t(rng.standard_normal((2, 3, 5, 4)))
    block.eval()                       # fixes dropout and batch norm, so body(x) is reproducible
    np.testing.assert_allclose(block(x).data, x.data + block.body(x).data, rtol=1e-12)
    assert block(x).shape == x.shape
    kinds = [type(m).__name__ for m in block.body]
    if kwargs.get("padding_mode", "reflect") == "reflect":
        assert kinds.count("ReflectionPad2d") == 2
    if kwargs.get("norm") == "batch":
        assert kinds.count("BatchNorm2d") == 2 and block.body[0].bias is None


def test_residual_block_derivatives(rng):
    tg.manual_seed(0)
    block = nn.ResidualBlock(2).to(dtype=np.float64)        # reflect pad, instance norm, ReLU
    x = _t(rng.standard_normal((1, 2, 3, 3)))

    def fn(x, w0):                              # the first conv's weight as an input too
        return nn.functional_call(block, {"body.1.weight": w0}, (x,))
    w0 = _t(block.body[1].weight.data)
    assert gradcheck(fn, (x, w0))
    assert gradgradcheck(fn, (x, w0))


def test_unet_skip_concatenates_and_differentiates(rng):
    tg.manual_seed(1)
    inner = nn.Sequential(nn.Conv2d(2, 3, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                          nn.ConvTranspose2d(3, 1, 4, stride=2, padding=1)).to(dtype=np.float64)
    skip = nn.UNetSkip(inner)
    x = _t(rng.standard_normal((2, 2, 4, 6)))
    y = skip(x)
    assert y.shape == (2, 3, 4, 6)
    np.testing.assert_array_equal(y.data[:, :2], x.data)
    np.testing.assert_array_equal(y.data[:, 2:], inner(x).data)
    y.backward(np.ones(y.shape))
    # The skip adds the identity path to x's gradient: 1 + what flows through inner.
    x2 = _t(x.data)
    inner(x2).backward(np.ones((2, 1, 4, 6)))
    np.testing.assert_allclose(x.grad.data, 1 + x2.grad.data, rtol=1e-12)

    def fn(x):
        return F.tanh(skip(x))
    small = _t(rng.standard_normal((1, 2, 2, 2)))
    assert gradcheck(fn, (small,))
    assert gradgradcheck(fn, (small,))
    with pytest.raises(ValueError, match="UNetSkip: the inner module maps"):
        nn.UNetSkip(nn.Conv2d(2, 2, 3, dtype=np.float64))(x)


# ---------------------------------------------------------------------------------------
# Every backend: the same values and gradients as the NumPy references

def test_new_ops_on_each_device(device, to_dev, rng):
    x = rng.standard_normal((2, 4, 5, 3))
    g = rng.standard_normal((2, 4, 5, 3))
    X = Tensor(to_dev(x), requires_grad=True)
    y = F.instance_norm(X, weight=Tensor(to_dev(np.full(4, 2.0))))
    np.testing.assert_allclose(y.detach().numpy(), 2 * _instance_norm_np(x), atol=1e-10)
    y.backward(Tensor(to_dev(g)))
    xhat = _instance_norm_np(x)                          # d/dx of w·xhat per plane: w·inv_std·P(g)
    inv_std = 1 / np.sqrt(x.var(axis=(2, 3), keepdims=True) + 1e-5)
    P = g - g.mean((2, 3), keepdims=True) - xhat * (g * xhat).mean((2, 3), keepdims=True)
    np.testing.assert_allclose(X.grad.numpy(), 2 * inv_std * P, atol=1e-9)
    for mode, np_mode in (("reflect", "reflect"), ("replicate", "edge")):
        np.testing.assert_array_equal(F.pad(X, (2, 1, 4, 3), mode=mode).detach().numpy(),
                                      np.pad(x, [(0, 0), (0, 0), (4, 3), (2, 1)], mode=np_mode))
    np.testing.assert_allclose(F.interpolate(X, size=(7, 6), mode="bilinear").detach().numpy(),
                               _bilinear_naive(x, 7, 6, False), atol=1e-12)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(X, 2), 2).detach().numpy(), x)
    tg.manual_seed(0)
    kept = (F.dropout2d(X, 0.5).detach().numpy() != 0).all(axis=(2, 3))
    assert 0 < kept.sum() < kept.size


@pytest.mark.parametrize("make", ["ReflectionPad2d((1, 2, 0, 1))", "ZeroPad2d(2)", "ConstantPad2d(1, 0.5)",
                                  "ReplicationPad2d(3)", "CircularPad2d(1)", "PixelShuffle(2)",
                                  "PixelUnshuffle(3)", "Upsample(scale_factor=2, mode='bilinear')",
                                  "Upsample(size=(4, 5))", "PReLU(3)", "Dropout2d(0.3)"])
def test_layer_reprs_match_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(eval("nn." + make)) == repr(eval("torch.nn." + make))


def test_new_layers_never_read_the_device(monkeypatch, rng):
    """On the fake GPU of fake_device.py every implicit device->host read raises: a training
    step through these layers (forward, backward, and the double backward of a penalty) queues
    without waiting for the device."""
    from fake_device import DeviceArray, install
    install(monkeypatch)
    from tinygan import backend
    tg.manual_seed(0)
    net = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(2, 4, 3), nn.InstanceNorm2d(4, affine=True),
                        nn.PReLU(4), nn.Dropout2d(0.5), nn.ResidualBlock(4),
                        nn.Conv2d(4, 8, 3, padding=1), nn.PixelShuffle(2),
                        nn.Upsample(scale_factor=0.5, mode="bilinear"),
                        nn.ReplicationPad2d((1, 0, 0, 1)))
    track = nn.InstanceNorm2d(2, track_running_stats=True)
    net.to("cuda"), track.to("cuda")
    x = Tensor(backend.to_device(rng.standard_normal((2, 2, 6, 6)).astype(np.float32), "cuda"),
               requires_grad=True)
    DeviceArray.transfers = 0
    y = net(track(x))
    gx, = tg.grad((y * y).mean(), [x], create_graph=True)
    ((gx * gx).sum() + (y * y).mean()).backward()
    assert isinstance(y.data, DeviceArray) and isinstance(track.running_mean.data, DeviceArray)
    assert all(isinstance(p.grad.data, DeviceArray) for p in net.parameters())
    assert DeviceArray.transfers == 0
