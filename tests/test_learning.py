"""End to end: the engine (autograd + functional + nn + optim) actually learns.

Small, seeded problems that a correct framework solves in well under a second and a subtly
wrong one (a sign, a missing bias gradient, a broken optimizer state) does not.
"""
import numpy as np
import pytest

import tinygan as tg
import tinygan.functional as F
from tinygan import nn, optim
from tinygan.autograd import Tensor


def two_spirals(n_per_class: int, seed: int, noise: float = 0.05):
    """Two interleaved spirals (1.25 turns each), labels 0/1: not linearly separable at all."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.random(n_per_class)) * 2.5 * np.pi          # denser towards the centre
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (2.5 * np.pi)
    x = np.concatenate([arm, -arm]) + noise * rng.standard_normal((2 * n_per_class, 2))
    y = np.concatenate([np.zeros(n_per_class), np.ones(n_per_class)]).astype(np.int64)
    return x.astype(np.float32), y


def accuracy(model, x, y) -> float:
    model.eval()
    with tg.no_grad():
        pred = model(Tensor(x)).data.argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def test_mlp_separates_two_spirals():
    tg.manual_seed(0)
    x, y = two_spirals(200, seed=0)
    x_test, y_test = two_spirals(200, seed=1)
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.LeakyReLU(0.1),
                          nn.Linear(64, 2))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    assert accuracy(model, x_test, y_test) < 0.8
    for _ in range(400):                                         # full batch
        loss = F.cross_entropy(model(Tensor(x)), Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert accuracy(model, x, y) >= 0.97
    assert accuracy(model, x_test, y_test) >= 0.95


@pytest.mark.parametrize("make_opt", [lambda ps: optim.Adam(ps, lr=1e-2),
                                      lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9)],
                         ids=["adam", "sgd_momentum"])
def test_small_convnet_fits_a_fixed_batch(make_opt):
    """Random labels on a fixed batch: memorising them needs every layer's gradient right."""
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 4))
    opt = make_opt(model.parameters())
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(Tensor(x)), Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20, losses


@pytest.mark.parametrize("make_opt", [lambda ps: optim.Adam(ps, lr=1e-2),
                                      lambda ps: optim.RMSprop(ps, lr=2e-3)],
                         ids=["adam", "rmsprop"])
def test_conv_autoencoder_reconstruction_loss_drops(make_opt):
    """Down with Conv2d, up with ConvTranspose2d and Upsample: the generator's building blocks."""
    tg.manual_seed(0)
    rng = np.random.default_rng(1)
    # Smooth 8×8 images (sums of two random Gaussian bumps), so a 2-channel bottleneck suffices.
    grid = np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"))
    centres = rng.uniform(1, 7, (16, 2, 2, 1, 1))
    x = sum(np.exp(-((grid - c) ** 2).sum(axis=1) / 4) for c in centres.transpose(1, 0, 2, 3, 4))
    x = x / x.max(axis=(1, 2), keepdims=True)
    x = (1.6 * x[:, None] - 0.8).astype(np.float32)              # in [-0.8, 0.8], inside tanh's range
    model = nn.Sequential(
        nn.Conv2d(1, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.2),         # 8 -> 4
        nn.Conv2d(8, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.2),         # 4 -> 2
        nn.ConvTranspose2d(4, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 2 -> 4
        nn.Upsample(scale_factor=2), nn.Conv2d(8, 1, 3, padding=1), nn.Tanh())   # 4 -> 8
    opt = make_opt(model.parameters())
    first = None
    for _ in range(100):
        loss = F.mse_loss(model(Tensor(x)), Tensor(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first / 5, (first, loss.item())
