"""The small MNIST CNN that serves the image metrics as Inception serves FID/IS.

Trained with tinygan itself by `scripts/train_classifier.py` on the shipped 5,000-digit MNIST
subset (4,500 to train with small random shifts, the other 500 held out); its weights ship in
`tinygan/data/mnist_classifier.npz` so scores stay comparable across versions.
"""
from __future__ import annotations

import os

import numpy as np

from . import backend, nn
from . import functional as F
from .autograd import Tensor, no_grad

WEIGHTS = os.path.join(os.path.dirname(__file__), "data", "mnist_classifier.npz")


class MnistClassifier(nn.Module):
    """(N, 1, 28, 28) in [-1, 1] → 10 logits; `features()` is the 128-d penultimate layer."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def features(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)        # 14×14
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)        # 7×7
        return F.relu(self.fc1(F.flatten(h, 1)))

    def forward(self, x):
        return self.fc2(self.drop(self.features(x)))


def load_classifier(path: str = WEIGHTS, device: str = "cpu") -> MnistClassifier:
    if not os.path.exists(path):
        raise FileNotFoundError(f"classifier weights not found at {path}; "
                                f"make them with `python scripts/train_classifier.py`")
    net = MnistClassifier()
    with np.load(path, allow_pickle=False) as z:
        net.load_state_dict({k: z[k] for k in z.files})
    return net.to(device).eval()


def classify(net: MnistClassifier, images: np.ndarray, batch_size: int = 500):
    """(probabilities (n, 10), penultimate features (n, 128)) for images (n, 1, 28, 28)."""
    if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
        raise ValueError(f"classify: expected (n, 1, 28, 28) images, got {images.shape}")
    device = next(iter(net.parameters())).device
    probs, feats = [], []
    with no_grad():
        for i in range(0, len(images), batch_size):
            x = Tensor(backend.to_device(np.ascontiguousarray(images[i:i + batch_size], np.float32), device))
            f = net.features(x)
            probs.append(backend.as_numpy(F.softmax(net.fc2(f), dim=1).data))
            feats.append(backend.as_numpy(f.data))
    return np.concatenate(probs), np.concatenate(feats).astype(np.float64)
