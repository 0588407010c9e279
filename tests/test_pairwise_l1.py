"""F.pairwise_l1, the op under minibatch discrimination: values against NumPy's broadcast
formula, first and second derivatives by finite differences on both kernel sets, and the door
check."""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import kernels
from tinygan.autograd import Tensor


@pytest.mark.parametrize("mode", ["fast", "reference"])
def test_pairwise_l1_values_gradients_and_second_order(mode, monkeypatch):
    monkeypatch.setattr(kernels, "_mode", mode)        # the Numba kernels and the NumPy oracle
    served = kernels.get("pairwise_l1_grad", np).__module__
    assert served.endswith("cpu" if mode == "fast" else "reference")
    rng = np.random.default_rng(7)
    # Entries spread apart so that no difference sits within eps of |.|'s kink at 0.
    m = rng.permutation(4 * 3 * 2).reshape(4, 3, 2) * 0.37 + rng.uniform(0, 0.01, (4, 3, 2))
    M = Tensor(m, requires_grad=True)
    l1 = F.pairwise_l1(M).detach().numpy()
    assert l1.shape == (4, 4, 3)
    np.testing.assert_allclose(l1, np.abs(m[:, None] - m[None, :]).sum(-1))
    f = lambda M: F.pairwise_l1(M) ** 2                          # noqa: E731  (2nd order ≠ 0)
    assert tinygan.gradcheck(f, [M])
    assert tinygan.gradgradcheck(f, [M])


def test_pairwise_l1_door_check():
    with pytest.raises(ValueError, match=r"pairwise_l1: input must be \(N, B, C\), got shape \(4, 3\)"):
        F.pairwise_l1(Tensor(np.zeros((4, 3))))
    with pytest.raises(TypeError, match="pairwise_l1: input must be floating point"):
        F.pairwise_l1(Tensor(np.zeros((2, 3, 4), dtype=np.int64)))
