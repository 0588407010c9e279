"""The adversarial losses, each one line of its paper.

Logits everywhere (never sigmoid-then-log): `softplus` form of the cross-entropy is exact
where sigmoid saturates.
"""
from __future__ import annotations

from .. import distributed
from .. import functional as F
from ..autograd import Tensor, grad
from ..backend import get_array_module
from ..tensor_factories import full_like, rand


def _target(logits: Tensor, value: float) -> Tensor:
    return full_like(logits, value)


def d_loss_gan(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """max_D  log D(x) + log(1 - D(G(z))).  `real_label=0.9` is one-sided label smoothing."""
    return (F.binary_cross_entropy_with_logits(real_logits, _target(real_logits, real_label))
            + F.binary_cross_entropy_with_logits(fake_logits, _target(fake_logits, 0.0)))


def g_loss_nonsaturating(fake_logits: Tensor) -> Tensor:
    """max_G  log D(G(z))  (Goodfellow et al.'s non-saturating alternative to min log(1 - D))."""
    return F.binary_cross_entropy_with_logits(fake_logits, _target(fake_logits, 1.0))


def d_loss_wasserstein(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """min_D  E[D(G(z))] - E[D(x)]  — the negated Kantorovich-Rubinstein estimate."""
    return fake_scores.mean() - real_scores.mean()


def g_loss_wasserstein(fake_scores: Tensor) -> Tensor:
    return -fake_scores.mean()


def d_loss_least_squares(real_out: Tensor, fake_out: Tensor, real_label: float = 1.0) -> Tensor:
    """LSGAN (Mao et al. 2017), a-b-c = 0-1-1:  ½E[(D(x)-b)²] + ½E[D(G(z))²], b = `real_label`
    (0.9: one-sided label smoothing)."""
    return 0.5 * ((real_out - real_label) ** 2).mean() + 0.5 * (fake_out ** 2).mean()


def g_loss_least_squares(fake_out: Tensor) -> Tensor:
    return 0.5 * ((fake_out - 1.0) ** 2).mean()


def gradient_penalty(D, real: Tensor, fake: Tensor, weight: float = 10.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017):  λ E[(‖∇x̂ D(x̂)‖₂ - 1)²],  x̂ = εx + (1-ε)G(z), ε ~ U[0,1].

    ∇x̂ D is taken with create_graph=True, so the penalty's own gradient flows back through
    the critic's backward pass into its weights (a second derivative).
    """
    n = real.shape[0]
    eps = distributed.per_sample(n, lambda m: rand(m, *([1] * (real.ndim - 1)), dtype=real.dtype,
                                                   device=real.device))
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).detach().requires_grad_()
    scores = D(x_hat)
    g, = grad(scores.sum(), x_hat, create_graph=True)
    norms = ((g.reshape(n, -1) ** 2).sum(dim=1) + 1e-12).sqrt()
    return weight * ((norms - 1.0) ** 2).mean()


def r1_penalty(D, real: Tensor, gamma: float) -> Tensor:
    """R1 (Mescheder, Geiger & Nowozin 2018, eq. 9):  γ/2 · E‖∇x D(x)‖²  on REAL data only.

    D here is the logit (the paper's D before the sigmoid).  Penalising the gradient where the
    data are makes the equilibrium (p_G = p_data, D ≡ 0 there) locally attractive: without it
    D keeps a nonzero slope at the data and G circles the data instead of settling on it.
    The gradient is taken with create_graph=True, so the penalty's own gradient reaches D's
    weights through a double backward.  `D` is any callable x → logits (a lambda for a
    conditional D)."""
    x = real.detach().requires_grad_()
    g, = grad(D(x).sum(), x, create_graph=True)
    return (0.5 * gamma) * (g.reshape(real.shape[0], -1) ** 2).sum(dim=1).mean()


def d_loss_hinge(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """SNGAN's hinge loss (Miyato et al. 2018, eq. 17):  E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def g_loss_hinge(fake_scores: Tensor) -> Tensor:
    """−E[D(G(z))]: G's side of the hinge game (the same as WGAN's)."""
    return -fake_scores.mean()


def class_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    """−E log P(C = c | X): ACGAN's L_C (Odena et al. 2017, eq. 3), negated to be minimised."""
    return F.cross_entropy(class_logits, labels)


# -- energy-based GANs: D is an autoencoder, its energy is a reconstruction error ----------
def reconstruction_energy(x: Tensor, recon: Tensor, power: int = 2) -> Tensor:
    """Each sample's energy, shape (N,): the mean over its pixels of |x - D(x)|^power.
    power 2: EBGAN's MSE;  power 1: BEGAN's L1 (η = 1)."""
    diff = (recon - x).reshape(x.shape[0], -1)
    return (diff * diff if power == 2 else diff.abs()).mean(dim=1)


def d_loss_ebgan(real_energy: Tensor, fake_energy: Tensor, margin: float) -> Tensor:
    """EBGAN (Zhao et al. 2017):  L_D = D(x) + [m - D(G(z))]⁺, mean over the batch.  Real
    energies are pushed down; fake ones up, but only while they are below the margin m."""
    return real_energy.mean() + F.relu(margin - fake_energy).mean()


def g_loss_ebgan(fake_energy: Tensor) -> Tensor:
    """L_G = D(G(z)): G wants fakes that D reconstructs well (pulling-away term added apart)."""
    return fake_energy.mean()


def pulling_away_term(codes: Tensor) -> Tensor:
    """EBGAN's repelling regulariser on a batch of codes s (N, d):
        PT = 1/(N(N-1)) Σ_{i≠j} (s_iᵀ s_j / (‖s_i‖ ‖s_j‖))²
    the mean squared cosine between distinct codes; small when the fakes' codes point in
    different directions, so G is pushed away from producing one mode N times.  The diagonal
    (each cosine with itself, 1 up to rounding) is subtracted as computed, not as 1, so the
    gradient is that of the off-diagonal sum exactly.  A code of all zeros (ReLU codes can be)
    has no direction: ε = 1e-12 under the square root makes its unit vector 0 instead of 0/0."""
    n = codes.shape[0]
    if n < 2:
        raise ValueError(f"pulling_away_term needs at least 2 codes, got {n}")
    s = codes.reshape(n, -1)
    unit = s / ((s * s).sum(dim=1, keepdim=True) + 1e-12).sqrt()
    cos = unit @ unit.T
    diag = (unit * unit).sum(dim=1)
    return ((cos * cos).sum() - (diag * diag).sum()) / (n * (n - 1))


def d_loss_began(real_loss: Tensor, fake_loss: Tensor, k) -> Tensor:
    """BEGAN (Berthelot et al. 2017):  L_D = L(x) - k_t L(G(z_D)),  L(v) = mean |v - D(v)|."""
    return real_loss - k * fake_loss


def began_k_update(k, real_loss, fake_loss, gamma: float, lambda_k: float):
    """The proportional control of the equilibrium E[L(G(z))] = γ E[L(x)]:
        k_{t+1} = clip(k_t + λ_k (γ L(x) - L(G(z_G))), 0, 1).
    On arrays (no graph): k is state, not a parameter."""
    xp = get_array_module(real_loss)
    return xp.clip(k + lambda_k * (gamma * real_loss - fake_loss), 0.0, 1.0)


def began_convergence(real_loss, fake_loss, gamma: float):
    """BEGAN's global convergence measure  M = L(x) + |γ L(x) - L(G(z_G))|  (on arrays)."""
    xp = get_array_module(real_loss)
    return real_loss + xp.abs(gamma * real_loss - fake_loss)
