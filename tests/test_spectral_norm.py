"""nn.utils.spectral_norm: torch's parametrisation (weight_orig, u, v buffers), σ_max(W_SN) ≈ 1 by
SVD, the power iteration by hand, eval mode frozen, and first/second derivatives with u, v fixed."""
import copy

import numpy as np
import pytest

import tinygan
from tinygan import Tensor, gradcheck, gradgradcheck, nn


def layers():
    return {"linear": (nn.Linear(7, 5), (3, 7)),
            "conv": (nn.Conv2d(3, 4, 3, padding=1), (2, 3, 5, 5)),
            "conv_transpose": (nn.ConvTranspose2d(3, 2, 4, 2, 1), (2, 3, 3, 3))}


def as_matrix(m, w):
    """The matrix whose top singular value spectral_norm divides by: rows = output channels."""
    w = w.transpose(1, 0, 2, 3) if isinstance(m, nn.ConvTranspose2d) else w
    return w.reshape(w.shape[0], -1)


def top_singular_value(a):
    return np.linalg.svd(a, compute_uv=False)[0]


def unit(a):
    return a / np.linalg.norm(a)


@pytest.mark.parametrize("kind", ["linear", "conv", "conv_transpose"])
def test_normalised_weight_has_top_singular_value_one(kind):
    tinygan.manual_seed(0)
    m, shape = layers()[kind]
    m.double()
    m.weight.data *= 3.0                      # σ_max well away from 1 before
    w_before = m.weight.data.copy()
    assert top_singular_value(as_matrix(m, w_before)) > 1.5
    nn.utils.spectral_norm(m)
    x = Tensor(np.random.default_rng(0).standard_normal(shape))
    for _ in range(60):               # W fixed: the power iteration converges to σ_max
        m(x)
    assert top_singular_value(as_matrix(m, m.weight.data)) == pytest.approx(1.0, abs=1e-6)
    # W_SN is W divided by one number: W_orig is untouched, the direction is the same
    np.testing.assert_array_equal(m.weight_orig.data, w_before)
    ratio = w_before / m.weight.data
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-10)
    assert ratio.flat[0] == pytest.approx(top_singular_value(as_matrix(m, w_before)), rel=1e-6)


def test_parameters_buffers_and_state_dict_follow_torch():
    m = nn.utils.spectral_norm(nn.Conv2d(3, 4, 3))
    assert [k for k, _ in m.named_parameters()] == ["bias", "weight_orig"]
    assert sorted(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert m.weight_u.shape == (4,) and m.weight_v.shape == (27,)
    t = nn.utils.spectral_norm(nn.ConvTranspose2d(3, 2, 4))       # weight (3, 2, 4, 4): dim 1
    assert t.weight_u.shape == (2,) and t.weight_v.shape == (48,)
    assert np.linalg.norm(m.weight_u.data) == pytest.approx(1.0, rel=1e-6)


def test_one_power_iteration_per_training_forward_by_hand():
    tinygan.manual_seed(1)
    m = nn.utils.spectral_norm(nn.Linear(4, 3).double())
    W, u0 = m.weight_orig.data.copy(), m.weight_u.data.copy()
    x = Tensor(np.random.default_rng(2).standard_normal((2, 4)))
    y = m(x)
    v = unit(W.T @ u0)
    u = unit(W @ v)
    sigma = u @ W @ v
    np.testing.assert_allclose(m.weight_v.data, v, rtol=1e-12)
    np.testing.assert_allclose(m.weight_u.data, u, rtol=1e-12)
    np.testing.assert_allclose(m.weight.data, W / sigma, rtol=1e-12)
    np.testing.assert_allclose(y.data, x.data @ (W / sigma).T + m.bias.data, rtol=1e-12)


def test_eval_mode_uses_the_stored_vectors_and_changes_nothing():
    tinygan.manual_seed(2)
    m = nn.utils.spectral_norm(nn.Linear(5, 4).double())
    x = Tensor(np.random.default_rng(0).standard_normal((2, 5)))
    m(x)
    m.eval()
    state = {k: v.copy() for k, v in m.state_dict().items()}
    a, b = m(x).data, m(x).data
    np.testing.assert_array_equal(a, b)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)
    W, u, v = state["weight_orig"], state["weight_u"], state["weight_v"]
    np.testing.assert_allclose(m.weight.data, W / (u @ W @ v), rtol=1e-12)


@pytest.mark.parametrize("kind", ["linear", "conv", "conv_transpose"])
def test_first_and_second_derivatives_with_u_v_fixed(kind):
    """The layer's output as a function of W_orig (and of x): σ = uᵀWv is differentiated through
    W, u and v are constants.  Eval mode keeps u, v fixed between the finite-difference calls."""
    tinygan.manual_seed(3)
    m, shape = layers()[kind]
    nn.utils.spectral_norm(m.double())
    m(Tensor(np.zeros(shape)))          # one iteration, so u, v are not just random
    m.eval()
    rng = np.random.default_rng(4)
    w = Tensor(m.weight_orig.data.copy(), requires_grad=True)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)

    def fn(w, x):
        m._parameters["weight_orig"] = w        # W_orig as the checker's input
        return m(x)

    assert gradcheck(fn, (w, x))
    assert gradgradcheck(fn, (w, x))


def test_gradient_by_hand_leaves_u_and_v_constant():
    """∂⟨G, W/σ⟩/∂W = G/σ − ⟨G, W⟩/σ² · u vᵀ for σ = uᵀWv with u, v constant."""
    tinygan.manual_seed(5)
    m = nn.utils.spectral_norm(nn.Linear(3, 4, bias=False).double())
    x = Tensor(np.random.default_rng(6).standard_normal((5, 3)))
    G = np.random.default_rng(7).standard_normal((5, 4))
    (m(x) * Tensor(G)).sum().backward()
    W, u, v = m.weight_orig.data, m.weight_u.data, m.weight_v.data
    sigma = u @ W @ v
    Gw = G.T @ x.data                           # ∂/∂W_SN of ⟨G, x W_SNᵀ⟩
    expected = Gw / sigma - (Gw * W).sum() / sigma ** 2 * np.outer(u, v)
    np.testing.assert_allclose(m.weight_orig.grad.data, expected, rtol=1e-10)


def test_state_dict_round_trip_and_deepcopy_continue_the_same_iteration():
    tinygan.manual_seed(8)
    a = nn.utils.spectral_norm(nn.Conv2d(2, 3, 3))
    x = Tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32))
    a(x)
    tinygan.manual_seed(9)
    b = nn.utils.spectral_norm(nn.Conv2d(2, 3, 3))
    b.load_state_dict(a.state_dict())
    c = copy.deepcopy(a)
    ya, yb, yc = a(x).data, b(x).data, c(x).data
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ya, yc)
    np.testing.assert_array_equal(a.weight_u.data, c.weight_u.data)
    c(x)                                          # the copy iterates on its own vectors
    assert c.weight_u.data is not a.weight_u.data


def test_remove_spectral_norm_keeps_the_normalised_weight():
    m = nn.utils.spectral_norm(nn.Linear(3, 2))
    x = Tensor(np.ones((1, 3), np.float32))
    m(x)
    m.eval()
    y = m(x).data
    nn.utils.remove_spectral_norm(m)
    assert sorted(m.state_dict()) == ["bias", "weight"] and isinstance(m.weight, nn.Parameter)
    np.testing.assert_allclose(m(x).data, y, rtol=1e-6)


def test_bad_input():
    m = nn.utils.spectral_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="already normalised"):
        nn.utils.spectral_norm(m)
    with pytest.raises(ValueError, match="has no parameter 'kernel'"):
        nn.utils.spectral_norm(nn.Linear(3, 2), name="kernel")
    with pytest.raises(ValueError, match="n_power_iterations must be >= 1"):
        nn.utils.spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="is not normalised"):
        nn.utils.remove_spectral_norm(nn.Linear(3, 2))
