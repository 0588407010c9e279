"""What the autoencoding family (`ae`, `vae`, `aae`, `bigan`) shares: encoder/decoder MLPs,
the two likelihoods of a decoder, the Gaussian KL, and `encode` / `reconstruct`.

Likelihoods p(x | z) of a decoder output `out`:
    bernoulli   images: `out` are logits of each pixel's "ink" probability; the target is the
                image rescaled to [0, 1] (Kingma & Welling's MNIST choice — digits are nearly
                binary), -log p = Σ BCE(out, (x+1)/2); the decoded mean is 2σ(out) - 1 ∈ [-1, 1].
    gaussian    2-D toys (unbounded data): unit-variance Gaussian with mean `out`,
                -log p = ½ Σ (x - out)² + const; the decoded mean is `out` itself.
Both are summed over a sample's dimensions and averaged over the batch, so that the VAE's
reconstruction term and its KL term (also a per-sample sum) keep the ratio of the ELBO.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, no_grad
from .nets import MLPDiscriminator, MLPGenerator


def mlp_encoder(data_shape: tuple, out_dim: int, hidden=(512, 512), slope: float = 0.0,
                in_dim: int | None = None) -> MLPDiscriminator:
    """x (N, *data_shape) → (N, out_dim): flatten, ReLU (slope 0) or LeakyReLU hidden layers."""
    return MLPDiscriminator(data_shape, hidden=tuple(hidden), slope=slope, out_dim=out_dim,
                            in_dim=in_dim)


def mlp_decoder(z_dim: int, data_shape: tuple, hidden=(512, 512)) -> MLPGenerator:
    """z (N, z_dim) → (N, *data_shape) raw outputs (logits or means: no output nonlinearity)."""
    return MLPGenerator(z_dim, data_shape, hidden=tuple(hidden), batch_norm=False, slope=0,
                        out_tanh=False)


def resolve_likelihood(name: str, is_toy: bool) -> str:
    if name == "auto":
        return "gaussian" if is_toy else "bernoulli"
    if name not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be 'auto', 'bernoulli' or 'gaussian', got {name!r}")
    return name


def reconstruction_loss(out: Tensor, x: Tensor, likelihood: str) -> Tensor:
    """-log p(x | z), summed over a sample's dimensions, mean over the batch (module doc)."""
    n = x.shape[0]
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(out, (x + 1.0) * 0.5, reduction="sum") / n
    return 0.5 * ((out - x) ** 2).sum() / n


def decode_mean(out: Tensor, likelihood: str) -> Tensor:
    """The decoder's mean image in data space: 2σ(logits) - 1 = tanh(logits / 2) for Bernoulli."""
    return (out * 0.5).tanh() if likelihood == "bernoulli" else out


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² - 1 - log σ_j²), mean over the batch."""
    return 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum() / mu.shape[0]


def as_input(variant, x) -> Tensor:
    """An array or Tensor of data as a float32 Tensor on the variant's device."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x, np.float32)
    return Tensor(backend.to_device(data, variant.device))


class Autoencoding:
    """Mixin: `encode(x)` and `reconstruct(x)` as host arrays, nets in eval mode, no graph.
    A variant writes `code(x: Tensor) -> Tensor` (the deterministic code: the mean for a VAE)."""

    def code(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _eval_no_grad(self, fn, x, batch_size: int = 500) -> np.ndarray:
        modes = {k: m.training for k, m in self.nets().items()}
        self.eval()
        out = []
        try:
            with no_grad():
                for i in range(0, len(x), batch_size):
                    out.append(backend.as_numpy(fn(as_input(self, x[i:i + batch_size])).data))
        finally:
            for k, m in self.nets().items():
                m.train(modes[k])
        return np.concatenate(out)

    def encode(self, x) -> np.ndarray:
        """Codes (N, z_dim) of data x (N, *data_shape)."""
        return self._eval_no_grad(self.code, x)

    def reconstruct(self, x) -> np.ndarray:
        """G(E(x)): the data the decoder/generator makes from x's code, in [-1, 1] for images."""
        return self._eval_no_grad(lambda t: self.generate(self.code(t)), x)


def reconstruction_quality(variant, images: np.ndarray, labels: np.ndarray | None = None,
                           classifier=True) -> dict:
    """How well G(E(x)) keeps x: pixel MSE (in [-1, 1] units) and — when the MNIST classifier's
    weights exist and labels are given — its accuracy on the reconstructions against x's labels
    (beside its accuracy on x itself, the ceiling)."""
    rec = variant.reconstruct(images)
    out = {"n": int(len(images)), "mse": float(np.mean((rec - np.asarray(images)) ** 2))}
    if labels is not None and classifier and tuple(images.shape[1:]) == (1, 28, 28):
        from ..classifier import classify, load_classifier
        try:
            net = load_classifier()
        except FileNotFoundError:
            return out
        labels = np.asarray(labels)
        out["classifier_acc_recon"] = float((classify(net, rec)[0].argmax(1) == labels).mean())
        out["classifier_acc_real"] = float((classify(net, images)[0].argmax(1) == labels).mean())
    return out


__all__ = ["mlp_encoder", "mlp_decoder", "resolve_likelihood", "reconstruction_loss", "decode_mean",
           "kl_to_standard_normal", "Autoencoding", "reconstruction_quality"]
