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
