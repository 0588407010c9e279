"""pairwise_l1: the L1 distance between every two rows of a batch, one op with its own kernels.

Minibatch discrimination (`tinygan.gans.tricks`) needs, for M (N, B, C),

    l1[i, j, b] = Σ_c |M[i, b, c] − M[j, b, c]|

for every pair of the batch.  Written as subtract-abs-sum through autograd, the broadcast
(N, N, B, C) difference and its reductions made a toy `gan` step with minibatch
discrimination 10× slower; as one op, the kernels (`pairwise_l1*` in kernels/) recompute the
signs from M instead of storing the difference.
"""
from __future__ import annotations

from .. import kernels
from ..autograd import Function, Tensor
from ..backend import get_array_module
from .activation import _float_tensor

__all__ = ["pairwise_l1"]


class PairwiseL1(Function):
    """With S[i, j, b, c] = sign(M_i − M_j) (piecewise constant: no derivative of its own, and
    S[j, i] = −S[i, j]), the gradient is  gM[k] = Σ_j (g[k, j] + g[j, k]) S[k, j],  one
    linear map of g (PairwiseL1Grad)."""

    def forward(self, M):
        self.M = M
        return kernels.get("pairwise_l1", get_array_module(M))(M)

    def backward(self, g):
        return PairwiseL1Grad(self.M)(g)


class PairwiseL1Grad(Function):
    """gM[k, b, c] = Σ_j (g[k, j, b] + g[j, k, b]) S[k, j, b, c] — linear in g, with M (hence
    S) held constant.  Its adjoint, g'[k, j, b] = Σ_c S[k, j, b, c] (u[k, b, c] − u[j, b, c])
    for upstream u, is the backward; and that map's adjoint is this one again, so the pair
    differentiates forever."""

    def __init__(self, M, adjoint: bool = False):
        self.M, self.adjoint = M, adjoint

    def forward(self, a):
        name = "pairwise_l1_grad_adjoint" if self.adjoint else "pairwise_l1_grad"
        return kernels.get(name, get_array_module(a))(self.M, a)

    def backward(self, gy):
        return PairwiseL1Grad(self.M, not self.adjoint)(gy)


def pairwise_l1(M) -> Tensor:
    """l1[i, j, b] = Σ_c |M[i, b, c] − M[j, b, c]| for M of shape (N, B, C); result (N, N, B)."""
    M = _float_tensor(M, "pairwise_l1")
    if M.ndim != 3:
        raise ValueError(f"pairwise_l1: input must be (N, B, C), got shape {M.shape}")
    return PairwiseL1()(M)
