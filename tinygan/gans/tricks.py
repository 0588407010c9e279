"""Salimans et al. 2016, "Improved Techniques for Training GANs" — the five tricks, as options.

Every image variant (`gan`, `dcgan`, `cgan`, `lsgan`) accepts them through its config
(`--set minibatch_disc=true` on the command line); `Variant.apply_tricks`, `Variant.update`
and `Variant.generator_loss` in base.py wire them in once for all variants.

    feature_matching   G minimises ‖E f(x) − E f(G(z))‖²₂ on D's intermediate features f
                       (D's last hidden layer, `D.features`) instead of fooling D's output.
    minibatch_disc     D's last layer also sees o(x_i)_b = Σ_j exp(−‖M_i,b − M_j,b‖₁), how close
                       x_i is to the other samples of its batch, M = f(x)·T with a learned
                       tensor T (A×B×C): a collapsed batch of fakes is easy to spot.
    historical_avg     λ: each player's loss gets  λ‖θ − (1/t) Σ_{i≤t} θ[i]‖²,  a pull towards the
                       running average of its own past parameters (the fictitious-play heuristic).
    virtual_bn         G's batch norms become VirtualBatchNorm: each example is normalised with
                       the statistics of a reference batch fixed at the start (z_ref, a buffer)
                       combined with the example itself, as in the paper, so a sample no longer
                       depends on the other samples of its batch.  Costs a second forward of G
                       on the reference batch each call (the paper uses it in G only, for this).
    label_smoothing    the real target of D's cross-entropy (0.9 = one-sided label smoothing;
                       fakes keep target 0, the paper's point: smoothing them too would let
                       D reward fakes where p_data is zero).
"""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..backend import get_array_module

# The config options every trick-aware variant accepts (merged into its `defaults`).
OPTIONS = dict(feature_matching=False, minibatch_disc=False, mbd_kernels=100, mbd_dim=5,
               historical_avg=0.0, virtual_bn=False, vbn_ref_size=64, label_smoothing=1.0)
LIMITS = dict(mbd_kernels=">= 1", mbd_dim=">= 1", historical_avg=">= 0", vbn_ref_size=">= 1",
              label_smoothing="[0, 1]")


# -- feature matching ---------------------------------------------------------------------------
def feature_matching_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """‖E f(x) − E f(G(z))‖²₂ (Salimans et al. eq. in §3.1), means over the batch, squared L2
    over every feature (conv features are flattened).  The real side is a target: detached."""
    if real_features.shape[1:] != fake_features.shape[1:]:
        raise ValueError(f"feature_matching_loss: real features {real_features.shape} and fake "
                         f"features {fake_features.shape} differ in shape")
    mu_real = F.flatten(real_features.detach(), 1).mean(dim=0)
    mu_fake = F.flatten(fake_features, 1).mean(dim=0)
    return ((mu_real - mu_fake) ** 2).sum()


# -- minibatch discrimination -------------------------------------------------------------------
def minibatch_features(f: Tensor, T: Tensor) -> Tensor:
    """[f, o(f)] for features f (N, A) and the learned tensor T (A, B, C) — see below."""
    N, (A, B, C) = f.shape[0], T.shape
    M = (f @ T.reshape(A, B * C)).reshape(N, B, C)
    l1 = F.pairwise_l1(M)                                                       # (N, N, B)
    o = (-l1).exp().sum(dim=1)                                                  # (N, B)
    return F.cat([f, o], dim=1)


class MinibatchDiscrimination(nn.Module):
    """f (N, A) → [f, o(f)] (N, A + B), the paper's §3.2:

        M_i = f(x_i) · T            T ∈ R^{A×B×C}, so M_i ∈ R^{B×C}
        c_b(x_i, x_j) = exp(−‖M_i,b − M_j,b‖₁)
        o(x_i)_b = Σ_j c_b(x_i, x_j)      (j = i included, as in the paper: a constant 1)

    Each of the B kernels measures, in its own learned C-dimensional projection, how many
    samples of the batch lie near x_i.  Real batches are diverse; a collapsed G's are not.
    """

    def __init__(self, in_features: int, num_kernels: int = 100, kernel_dim: int = 5,
                 init_std: float = 0.05):
        super().__init__()
        self.in_features, self.num_kernels, self.kernel_dim = in_features, num_kernels, kernel_dim
        self.T = nn.Parameter(np.zeros((in_features, num_kernels, kernel_dim), np.float32))
        nn.init.normal_(self.T, 0.0, init_std)      # as the authors' code: N(0, 0.05)

    def forward(self, f: Tensor) -> Tensor:
        if f.ndim != 2 or f.shape[1] != self.in_features:
            raise ValueError(f"MinibatchDiscrimination: input {f.shape} should be (N, "
                             f"{self.in_features}) for T {self.T.shape}")
        return minibatch_features(f, self.T)

    def extra_repr(self):
        return f"A={self.in_features}, B={self.num_kernels}, C={self.kernel_dim}"


class MinibatchDiscriminationHead(nn.Module):
    """A discriminator's last layer with minibatch features: features → [f, o(f)] → logits."""

    def __init__(self, in_features: int, out_dim: int = 1, num_kernels: int = 100,
                 kernel_dim: int = 5):
        super().__init__()
        self.mbd = MinibatchDiscrimination(in_features, num_kernels, kernel_dim)
        self.linear = nn.Linear(in_features + num_kernels, out_dim)

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(self.mbd(F.flatten(features, 1)))


def add_minibatch_discrimination(D: nn.Module, num_kernels: int = 100, kernel_dim: int = 5):
    """Replace D's `head` (a Linear, or the DCGAN 4×4 conv over 4×4 features — the same map)
    by a MinibatchDiscriminationHead over the same features.  `D.features` is unchanged."""
    head = getattr(D, "head", None)
    if head is None or not hasattr(D, "features"):
        raise ValueError(f"minibatch_disc: {type(D).__name__} has no features()/head to extend")
    out_dim, in_features = head.weight.shape[0], int(np.prod(head.weight.shape[1:]))
    D.head = MinibatchDiscriminationHead(in_features, out_dim, num_kernels, kernel_dim)
    D.head.to(device=head.weight.device)
    return D


# -- historical averaging ---------------------------------------------------------------------
class HistoricalAverage(nn.Module):
    """Running mean θ̄_t = (1/t) Σ_{i≤t} θ[i] of some parameters, and ‖θ − θ̄‖² (§3.3).

    The means are buffers (saved in checkpoints, so a resumed run continues exactly); the
    parameters themselves are only referenced, not registered, so they are not counted twice.
    θ̄ is a constant in the penalty: its gradient is 2(θ − θ̄), the pull towards the past.
    """

    def __init__(self, params):
        super().__init__()
        self._tracked = list(params)          # a plain list: not registered as parameters
        for k, p in enumerate(self._tracked):
            self.register_buffer(f"mean{k}", Tensor(p.data.copy()))
        self.register_buffer("count", Tensor(np.zeros((), np.int64)))

    def _means(self):
        return [getattr(self, f"mean{k}") for k in range(len(self._tracked))]

    def update(self) -> None:
        """Fold the current θ into the mean (call once per step, before the penalty)."""
        self.count.data += 1
        t = self.count.data          # left on the device: float() of it would wait for the GPU
        for p, m in zip(self._tracked, self._means()):
            m.data += (p.data - m.data) / t.astype(m.data.dtype)

    def penalty(self) -> Tensor:
        total = None
        for p, m in zip(self._tracked, self._means()):
            term = ((p - Tensor(m.data)) ** 2).sum()
            total = term if total is None else total + term
        return total


# -- virtual batch normalisation ----------------------------------------------------------------
def virtual_batch_norm(x: Tensor, n_ref: int, weight: Tensor, bias: Tensor, eps: float = 1e-5):
    """The math of VirtualBatchNorm (below) on x = [reference rows; examples]."""
    spatial = tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * len(spatial)                      # per-channel broadcast
    ref, rest = x[:n_ref], x[n_ref:]
    mu_r = ref.mean(dim=(0,) + spatial, keepdim=True)
    var_r = ((ref - mu_r) ** 2).mean(dim=(0,) + spatial, keepdim=True)
    w = 1.0 / (n_ref + 1)
    m_i = rest.mean(dim=spatial, keepdim=True) if spatial else rest
    mu_i = (1 - w) * mu_r + w * m_i
    sq_i = ((rest - mu_i) ** 2).mean(dim=spatial, keepdim=True) if spatial else (rest - mu_i) ** 2
    var_i = (1 - w) * (var_r + (mu_r - mu_i) ** 2) + w * sq_i
    y = F.cat([(ref - mu_r) / (var_r + eps).sqrt(), (rest - mu_i) / (var_i + eps).sqrt()], dim=0)
    return y * weight.reshape(*shape) + bias.reshape(*shape)


class VirtualBatchNorm(nn.Module):
    """Batch norm whose statistics come from a fixed reference batch (§3.4).

    The input holds the reference batch in its first `n_ref` rows and the real inputs after
    (see `ReferenceBatchNet`).  Per channel, with averages over the spatial positions too:
        reference rows:  normalised with the reference statistics μ_r, σ²_r alone;
        example i:       w = 1/(n_ref + 1),  μ_i = (1 − w) μ_r + w m_i,
                         σ²_i = (1 − w)(σ²_r + (μ_r − μ_i)²) + w mean((x_i − μ_i)²)
                         (the pooled variance of the reference batch plus x_i, i.e. "the
                         statistics of the reference batch combined with the example itself")
        y = (x − μ) / sqrt(σ² + eps) · weight + bias.
    The statistics are Tensor expressions of x, so gradients (of any order) flow through them.
    """

    def __init__(self, num_features: int, n_ref: int, eps: float = 1e-5,
                 negative_slope: float | None = None):
        super().__init__()
        self.num_features, self.n_ref, self.eps = int(num_features), int(n_ref), eps
        self.negative_slope = negative_slope     # a (leaky) ReLU after, replacing a BatchNormAct
        self.weight = nn.Parameter(np.ones(num_features, np.float32))
        self.bias = nn.Parameter(np.zeros(num_features, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features or x.shape[0] <= self.n_ref:
            raise ValueError(f"VirtualBatchNorm: input {x.shape} should be (n_ref + N, "
                             f"{self.num_features}[, H, W]) with n_ref={self.n_ref} and N >= 1")
        y = virtual_batch_norm(x, self.n_ref, self.weight, self.bias, self.eps)
        return y if self.negative_slope is None else F.leaky_relu(y, self.negative_slope)

    def extra_repr(self):
        act = "" if self.negative_slope is None else f", negative_slope={self.negative_slope}"
        return f"{self.num_features}, n_ref={self.n_ref}, eps={self.eps}{act}"


class ReferenceBatchNet(nn.Module):
    """net(input) computed as net([ref_input; input])[n_ref:]: the reference batch rides along
    every forward, so each VirtualBatchNorm inside sees it (and its current statistics)."""

    def __init__(self, net: nn.Module, ref_input):
        super().__init__()
        self.net = net
        self.register_buffer("ref_input", ref_input)

    def forward(self, inp: Tensor) -> Tensor:
        ref = self.ref_input
        if ref.dtype != inp.dtype:
            ref = Tensor(ref.data.astype(inp.dtype))
        return self.net(F.cat([ref, inp], dim=0))[self.ref_input.shape[0]:]


def use_virtual_batch_norm(G: nn.Module, ref_input) -> ReferenceBatchNet:
    """Swap every BatchNorm1d/2d in G for a VirtualBatchNorm (same affine weights; a
    BatchNormAct's activation kept) and feed the fixed reference input `ref_input` (n_ref, ...)
    along with every batch."""
    n_ref = int(ref_input.shape[0])
    swapped = 0
    for m in list(G.modules()):
        for name, child in list(m._modules.items()):
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
                fused = isinstance(child, (nn.BatchNormAct1d, nn.BatchNormAct2d))
                vbn = VirtualBatchNorm(child.num_features, n_ref, child.eps,
                                       child.negative_slope if fused else None)
                if child.weight is not None:
                    vbn.weight.data = child.weight.data.copy()
                    vbn.bias.data = child.bias.data.copy()
                m._modules[name] = vbn        # in place: a Sequential keeps its order
                swapped += 1
    if not swapped:
        raise ValueError(f"virtual_bn: the generator {type(G).__name__} has no batch norm to "
                         f"replace (the 2-D toy MLPs have none)")
    xp = get_array_module(ref_input.data if isinstance(ref_input, Tensor) else ref_input)
    ref = ref_input if isinstance(ref_input, Tensor) else Tensor(xp.asarray(ref_input))
    return ReferenceBatchNet(G, ref)
