"""`vae` — Kingma & Welling 2014, Auto-Encoding Variational Bayes (the baseline of the GAN papers).

Algorithm (one step of SGVB with one sample per data point, L = 1):
    (μ, log σ²) = E(x)                          the encoder q(z | x) = N(μ, diag σ²)
    z = μ + σ ⊙ ε,   ε ~ N(0, I)                the reparameterisation: z is differentiable in μ, σ
    -ELBO = -log p(x | z) + KL(q(z | x) ‖ N(0, I)),  the KL in closed form:
            KL = ½ Σ_j (μ_j² + σ_j² - 1 - log σ_j²)
    minimise -ELBO over E and G (the decoder) together.

Likelihood: Bernoulli on images rescaled to [0, 1] (the paper's MNIST choice: digits are
nearly binary, and the BCE's scale is fixed by the model, whereas a Gaussian/MSE decoder would
need a variance that silently sets the weight of the KL); unit-variance Gaussian on 2-D toys.
Nets: MLPs with ReLU, 512-512 hidden units, z_dim 20 (the paper: one hidden layer of 500 tanh
units, z_dim up to 200, Adagrad; ReLU + Adam 1e-3 is today's equivalent and trains faster).
`generate(z)` decodes z ~ N(0, I) — the prior the KL pulls the codes toward.
"""
from __future__ import annotations

from ..tensor_factories import randn
from .base import Variant
from .encoders import (Autoencoding, decode_mean, kl_to_standard_normal, mlp_decoder, mlp_encoder,
                       reconstruction_loss, resolve_likelihood)
from .registry import register


@register
class VAE(Autoencoding, Variant):
    name = "vae"
    paper = "Kingma & Welling 2014, Auto-Encoding Variational Bayes"
    summary = "MLP q(z|x) and p(x|z), reparameterisation, analytic KL, Bernoulli likelihood, Adam 1e-3"
    defaults = dict(z_dim=20, hidden=(512, 512), lr=1e-3, beta1=0.9, beta2=0.999,
                    likelihood="auto")

    def build(self):
        c = self.config
        self.likelihood = resolve_likelihood(c["likelihood"], self.is_toy)
        self.E = mlp_encoder(self.data_shape, 2 * self.z_dim, c["hidden"])   # → (μ, log σ²)
        self.G = mlp_decoder(self.z_dim, self.data_shape, c["hidden"])
        self.opt = self.adam(self.E, self.G)

    def posterior(self, x):
        """(μ, log σ²) of q(z | x)."""
        h = self.E(x)
        return h[:, :self.z_dim], h[:, self.z_dim:]

    def code(self, x):
        return self.posterior(x)[0]

    def generate(self, z, y=None):
        return decode_mean(self.G(z), self.likelihood)

    def train_step(self, x, y=None):
        mu, logvar = self.posterior(x)
        eps = self.per_sample(mu.shape[0], lambda m: randn(m, *mu.shape[1:], dtype=mu.dtype,
                                                           device=self.device))
        z = mu + (0.5 * logvar).exp() * eps
        recon = reconstruction_loss(self.G(z), x, self.likelihood)
        kl = kl_to_standard_normal(mu, logvar)
        loss = recon + kl
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.data, "loss_recon": recon.data, "loss_kl": kl.data}
