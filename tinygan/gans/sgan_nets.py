"""The nets of the semi-supervised GAN (`sgan`): improved-gan's MNIST recipe (Salimans et al. 2016).

D — the classifier, and the product of training — is an MLP on pixels in [0, 1]:

    x + N(0, 0.3²) → 1000 → 500 → 250 → 250 → 250 → K logits,
    each hidden layer ReLU and followed by N(0, 0.5²) noise (training only),

every layer weight-normalised, W = g · V / ‖V‖ row by row (Salimans & Kingma 2016), with the
scale g fixed except in the last layer, and initialised from data: on the first batch each
layer's g and b are set so that its pre-activations have mean 0 and variance 1.  The noise is
the regulariser that lets 100 labels go a long way; the fixed row norms keep D's features on
one scale while the unlabelled loss pushes its logits around.

G: z ~ U(0, 1)^100 → 500 → 500 (each batch norm + softplus) → 784, weight-normalised with a
learned scale, sigmoid — pixels in [0, 1], as D sees them.
"""
from __future__ import annotations

import numpy as np

from .. import backend, distributed
from .. import functional as F
from .. import nn
from ..autograd import Tensor, no_grad
from ..tensor_factories import randn


class GaussianNoise(nn.Module):
    """x + N(0, σ²) in training mode, x in eval mode (improved-gan's GaussianNoiseLayer)."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x):
        if not self.training or self.sigma == 0:
            return x
        # per sample: under mpiexec each rank adds its rows of the whole batch's noise
        noise = distributed.per_sample(x.shape[0], lambda m: randn(m, *x.shape[1:],
                                                                   device=backend.device_of(x.data)))
        return x + self.sigma * noise

    def extra_repr(self):
        return f"sigma={self.sigma}"


class WNLinear(nn.Module):
    """y = x Wᵀ + b with W = g · V / ‖V‖ (each output's row of V normalised).  `train_scale`:
    g is learned (a Parameter); otherwise it is a buffer, set once by `init_from_data`."""

    def __init__(self, in_features: int, out_features: int, train_scale: bool = False):
        super().__init__()
        self.v = nn.Parameter(np.zeros((out_features, in_features), np.float32))
        nn.init.normal_(self.v, 0.0, 0.1)
        self.bias = nn.Parameter(np.zeros(out_features, np.float32))
        g = np.ones(out_features, np.float32)
        if train_scale:
            self.g = nn.Parameter(g)
        else:
            self.register_buffer("g", g)

    def weight(self) -> Tensor:
        norm = (self.v * self.v).sum(dim=1, keepdim=True).sqrt()
        return self.v * (self.g.reshape(-1, 1) / norm)

    def forward(self, x):
        return F.linear(x, self.weight(), self.bias)

    def init_from_data(self, x) -> Tensor:
        """Set g and b so that this layer's pre-activations on the batch x have mean 0 and
        variance 1 per unit (Salimans & Kingma's data-dependent init); returns them."""
        with no_grad():
            t = F.linear(x, self.weight()).data
            mean = t.mean(axis=0)
            std = ((t - mean) ** 2).mean(axis=0) ** 0.5
            self.g.data[...] = self.g.data / std
            self.bias.data[...] = -mean / std
            return F.linear(x, self.weight(), self.bias)

    def extra_repr(self):
        return f"in_features={self.v.shape[1]}, out_features={self.v.shape[0]}"


class Classifier(nn.Module):
    """D: K logits of pixels (N, 1, 28, 28) in [0, 1]; `features` is the last hidden layer
    (what G's feature matching compares)."""

    def __init__(self, in_dim: int, num_classes: int, hidden=(1000, 500, 250, 250, 250),
                 input_noise: float = 0.3, hidden_noise: float = 0.5):
        super().__init__()
        dims = (in_dim, *hidden)
        self.noise = nn.ModuleList([GaussianNoise(input_noise)]
                                   + [GaussianNoise(hidden_noise) for _ in hidden])
        self.layers = nn.ModuleList([WNLinear(a, b) for a, b in zip(dims, dims[1:])])
        self.head = WNLinear(dims[-1], num_classes, train_scale=True)
        self.register_buffer("initialised", np.zeros((), np.float32))

    def features(self, x):
        h = F.flatten(x, 1)
        for noise, layer in zip(self.noise, self.layers):
            h = F.relu(layer(noise(h)))
        return h

    def forward(self, x):
        return self.head(self.noise[-1](self.features(x)))

    def init_from_data(self, x) -> None:
        """Data-dependent init of every layer, in order, on the batch x (noise as in training)."""
        with no_grad():
            h = F.flatten(x, 1)
            for noise, layer in zip(self.noise, self.layers):
                h = F.relu(layer.init_from_data(noise(h)))
            self.head.init_from_data(self.noise[-1](h))
        self.initialised.data[...] = 1


class Generator(nn.Module):
    """z (N, z_dim) → pixels (N, 1, 28, 28) in [0, 1]."""

    def __init__(self, z_dim: int, out_shape: tuple, hidden=(500, 500)):
        super().__init__()
        dims = (z_dim, *hidden)
        self.layers = nn.ModuleList([nn.Linear(a, b, bias=False) for a, b in zip(dims, dims[1:])])
        self.norms = nn.ModuleList([nn.BatchNorm1d(b) for b in hidden])
        self.out = WNLinear(dims[-1], int(np.prod(out_shape)), train_scale=True)
        self.out_shape = tuple(out_shape)

    def init_from_data(self, x) -> None:
        """Start the output bias at the logit of the batch's mean pixel (clipped to [0.01, 0.99]):
        G's first samples are then the mean digit, not grey noise, and it does not spend its
        first thousand small Adam steps learning that the background is black."""
        with no_grad():
            m = F.flatten(x, 1).data.mean(axis=0).clip(0.01, 0.99)
            xp = backend.get_array_module(m)
            self.out.bias.data[...] = xp.log(m / (1 - m))

    def forward(self, z):
        h = z
        for layer, norm in zip(self.layers, self.norms):
            h = F.softplus(norm(layer(h)))
        return F.sigmoid(self.out(h)).reshape(z.shape[0], *self.out_shape)
