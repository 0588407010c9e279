"""The energy-based GANs `ebgan` and `began`: each loss against a NumPy hand computation on a
tiny batch, the pulling-away term's first and second derivatives, BEGAN's k_t control (and
its clipping), what a step logs, and that a run resumes bit for bit — k_t included."""
import json
import os

import numpy as np
import pytest

import tinygan
from tinygan.autograd import Tensor
from tinygan.cli import main
from tinygan.gans import VARIANTS, create, losses
from tinygan.train import train

RNG = np.random.default_rng(7)
X = RNG.uniform(-1, 1, (3, 1, 2, 2))           # a tiny batch of images
RECON = RNG.uniform(-1, 1, (3, 1, 2, 2))       # ... and D's reconstructions of it


def test_reconstruction_energy_is_the_per_sample_pixel_mean():
    d = (RECON - X).reshape(3, -1)
    mse = losses.reconstruction_energy(Tensor(X), Tensor(RECON), power=2).numpy()
    l1 = losses.reconstruction_energy(Tensor(X), Tensor(RECON), power=1).numpy()
    np.testing.assert_allclose(mse, [np.mean(r ** 2) for r in d], rtol=1e-12)
    np.testing.assert_allclose(l1, [np.mean(np.abs(r)) for r in d], rtol=1e-12)


def test_ebgan_losses_by_hand():
    real, fake, m = np.array([0.2, 0.05, 0.4]), np.array([0.3, 1.5, 0.9]), 1.0
    got = losses.d_loss_ebgan(Tensor(real), Tensor(fake), m).item()
    # hinge: the fake at 1.5 is past the margin and contributes nothing
    assert got == pytest.approx(np.mean(real) + (0.7 + 0.0 + 0.1) / 3, rel=1e-12)
    assert losses.g_loss_ebgan(Tensor(fake)).item() == pytest.approx(0.9, rel=1e-12)


def pt_by_hand(s):
    """An all-zero code has no direction: its cosines count as 0 (as ε does in the op)."""
    n, total = len(s), 0.0
    for i in range(n):
        for j in range(n):
            if i != j and np.any(s[i]) and np.any(s[j]):
                total += (s[i] @ s[j] / (np.linalg.norm(s[i]) * np.linalg.norm(s[j]))) ** 2
    return total / (n * (n - 1))


def test_pulling_away_term_by_hand():
    s = RNG.standard_normal((4, 3))
    assert losses.pulling_away_term(Tensor(s)).item() == pytest.approx(pt_by_hand(s), rel=1e-12)
    # orthogonal codes: 0; one direction repeated (any lengths, any signs): 1
    assert losses.pulling_away_term(Tensor(np.eye(3))).item() == pytest.approx(0.0, abs=1e-15)
    same = np.outer([1.0, -2.0, 0.5], [0.3, -1.0, 2.0])
    assert losses.pulling_away_term(Tensor(same)).item() == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        losses.pulling_away_term(Tensor(s[:1]))


def test_pulling_away_term_first_and_second_derivatives():
    s = Tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    assert tinygan.gradcheck(losses.pulling_away_term, [s])
    assert tinygan.gradgradcheck(losses.pulling_away_term, [s])


def test_began_losses_k_update_and_convergence_by_hand():
    lx, lg, k, gamma, lam = 0.3, 0.1, 0.25, 0.5, 1e-3
    assert losses.d_loss_began(Tensor(np.array(lx)), Tensor(np.array(lg)),
                               Tensor(np.array(k))).item() == pytest.approx(lx - k * lg, rel=1e-12)
    k1 = losses.began_k_update(np.array(k), np.array(lx), np.array(lg), gamma, lam)
    assert float(k1) == pytest.approx(k + lam * (gamma * lx - lg), rel=1e-12)
    m = losses.began_convergence(np.array(lx), np.array(lg), gamma)
    assert float(m) == pytest.approx(lx + abs(gamma * lx - lg), rel=1e-12)
    # k is clipped to [0, 1]: a large step either way lands on the bound
    assert float(losses.began_k_update(np.array(0.0005), np.array(0.0), np.array(1.0), gamma, lam)) == 0.0
    assert float(losses.began_k_update(np.array(0.9995), np.array(4.0), np.array(0.0), gamma, lam)) == 1.0


CONFIGS = {"ebgan": dict(z_dim=4, ngf=4, ndf=4, fc=8, code_dim=3),
           "began": dict(z_dim=4, ngf=4, ndf=4, fc=8, code_dim=3)}


def step_logs(name, **over):
    tinygan.manual_seed(0)
    v = create(name, (1, 8, 8), config=dict(CONFIGS[name], **over))
    x = Tensor(np.tanh(RNG.standard_normal((4, 1, 8, 8))).astype(np.float32))
    return v, x


def test_an_ebgan_step_logs_its_energies_and_its_d_loss_is_theirs():
    v, x = step_logs("ebgan", margin=0.5)
    logs = v.train_step(x)
    assert set(logs) == {"loss_D", "loss_G", "energy_real", "energy_fake"}
    # the logged means are the energies D was scored on (fake energy below the margin here)
    assert logs["energy_fake"] < 0.5
    assert logs["loss_D"] == pytest.approx(logs["energy_real"] + 0.5 - logs["energy_fake"], rel=1e-5)


def test_ebgan_g_loss_is_the_fake_energy_plus_the_weighted_pulling_away_term(monkeypatch):
    v, x = step_logs("ebgan", pt_weight=0.3)
    seen, encode = [], v.D.encode
    monkeypatch.setattr(v.D, "encode", lambda b: seen.append((b, encode(b))) or seen[-1][1])
    logs = v.train_step(x)
    fakes, codes = seen[-1]                                  # the G step's fakes and codes
    recon = v.D.decoder(codes).detach().numpy()              # D is unchanged by the G step
    energy = np.mean((recon - fakes.detach().numpy()).reshape(len(recon), -1) ** 2, axis=1)
    pt = pt_by_hand(codes.detach().numpy().astype(np.float64))
    assert logs["loss_G"] == pytest.approx(energy.mean() + 0.3 * pt, rel=1e-5)


def test_ebgan_g_learning_rate_scale_and_d_batch_norm_options():
    v, _ = step_logs("ebgan", lr=1e-3, g_lr_scale=5)
    assert v.opt_G.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert v.opt_D.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert any("BatchNorm" in type(m).__name__ for m in v.D.modules())
    plain, _ = step_logs("ebgan", d_batch_norm=False)
    assert not any("BatchNorm" in type(m).__name__ for m in plain.D.modules())
    assert any("BatchNorm" in type(m).__name__ for m in plain.G.modules())


@pytest.mark.parametrize("bn", [False, True])
def test_a_began_step_by_hand(monkeypatch, bn):
    """L_D = L(x) - k0 L(G(z_D)), k1 = clip(k0 + λ_k (γ L(x) - L(G(z_G)))), M as logged."""
    v, x = step_logs("began", gamma=0.7, lambda_k=0.1, k0=0.5, batch_norm=bn)
    seen, L = [], v.L
    monkeypatch.setattr(v, "L", lambda b: seen.append(L(b)) or seen[-1])
    logs = v.train_step(x)
    lx, lf, lg = (t.item() for t in seen)                  # L(x), L(G(z_D)), L(G(z_G))
    assert set(logs) == {"loss_D", "loss_G", "k", "M"}
    assert logs["loss_D"] == pytest.approx(lx - 0.5 * lf, rel=1e-6)
    assert logs["loss_G"] == pytest.approx(lg, rel=1e-6)
    assert logs["k"] == pytest.approx(np.clip(0.5 + 0.1 * (0.7 * lx - lg), 0, 1), rel=1e-6)
    assert logs["M"] == pytest.approx(lx + abs(0.7 * lx - lg), rel=1e-6)
    assert float(v.k) == logs["k"]


@pytest.mark.parametrize("name", ["ebgan", "began"])
@pytest.mark.parametrize("arch, pad_to", [("small", None), ("dcgan", 8)])
def test_both_architectures_reconstruct_at_the_data_size_and_train(name, arch, pad_to):
    v, x = step_logs(name, arch=arch)
    assert v.pad_to == pad_to
    net_x = v.to_net(x)
    assert v.D(net_x).shape == net_x.shape                   # D reconstructs what it is shown
    assert v.D.encode(net_x).shape == (4, 3)                 # ... through a code_dim-wide code
    assert v.G(v.sample_z(4)).shape == net_x.shape
    params = {"G": list(v.G.parameters()), "D": list(v.D.parameters())}
    before = {net: [p.detach().numpy().copy() for p in ps] for net, ps in params.items()}
    logs = v.train_step(x)
    assert all(np.isfinite(float(val)) for val in logs.values())
    for net, ps in params.items():                          # both players moved
        assert any(not np.array_equal(b, p.detach().numpy()) for b, p in zip(before[net], ps)), net


def test_the_small_autoencoder_is_shallow_and_checks_its_input_size():
    from tinygan.gans.autoencoder_nets import ShallowAutoencoder
    d = ShallowAutoencoder(1, (28, 28), nf=8, code_dim=5)
    kinds = [type(m).__name__ for m in d.modules()]
    assert kinds.count("Conv2d") == 1 and kinds.count("ConvTranspose2d") == 1
    assert kinds.count("Linear") == 2
    x = Tensor(RNG.uniform(-1, 1, (2, 1, 28, 28)).astype(np.float32))
    assert d.encode(x).shape == (2, 5) and d(x).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="even"):
        ShallowAutoencoder(1, (27, 28))
    with pytest.raises(ValueError, match="multiples of 4, got 30x30"):
        create("began", (1, 30, 30), config=CONFIGS["began"])
    assert create("began", (1, 30, 30), config=dict(CONFIGS["began"], arch="dcgan")).pad_to == 32
    with pytest.raises(Exception, match="arch"):
        create("ebgan", (1, 8, 8), config=dict(CONFIGS["ebgan"], arch="resnet"))


def test_the_pulling_away_term_of_an_all_zero_code_is_finite():
    """ReLU codes can be exactly zero: no direction, so no cosine, and no 0/0."""
    s = RNG.standard_normal((4, 3))
    s[1] = 0.0
    t = Tensor(s, requires_grad=True)
    pt = losses.pulling_away_term(t)
    pt.backward()
    assert np.isfinite(pt.item()) and np.isfinite(t.grad.numpy()).all()
    rest = np.delete(s, 1, axis=0)      # the zero code's cosines are 0: only the others count
    assert pt.item() == pytest.approx(pt_by_hand(rest) * (3 * 2) / (4 * 3), rel=1e-9)


def test_energy_gans_are_listed(capsys):
    assert {"ebgan", "began"} <= set(VARIANTS)
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert "ebgan" in out and "began" in out


def arrays(ckpt_path):
    with np.load(ckpt_path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("name", ["ebgan", "began"])
def test_resume_is_bit_for_bit(tmp_path, offline, name):
    """2N steps in one go == N steps, stop, resume for N more: identical weights, optimizer
    moments, (BEGAN) k_t, and loss log."""
    cfg = dict(variant=name, data="mnist-subset", batch_size=4, progress=False,
               options=dict(CONFIGS[name], **({"lambda_k": 0.05} if name == "began" else {})))
    train(**cfg, steps=6, out=str(tmp_path / "straight"))
    train(**cfg, steps=3, out=str(tmp_path / "split"))
    train(**cfg, steps=6, out=str(tmp_path / "split"), resume=True)
    a = arrays(tmp_path / "straight" / "checkpoints" / "last.npz")
    b = arrays(tmp_path / "split" / "checkpoints" / "last.npz")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    rows = [json.loads(line) for line in open(tmp_path / "straight" / "log.jsonl")]
    assert open(tmp_path / "split" / "log.jsonl").read() == open(tmp_path / "straight" / "log.jsonl").read()
    if name == "began":
        # k_t travels in the checkpoint: the saved value is the last logged one, and moved
        assert a["variant/k"] == pytest.approx(rows[-1]["k"], rel=1e-6)
        assert len({r["k"] for r in rows}) > 1


def test_began_checkpoint_round_trip_restores_k(tmp_path):
    from tinygan import checkpoint
    v, x = step_logs("began", lambda_k=0.05, k0=0.3)
    for _ in range(2):
        v.train_step(x)
    path = checkpoint.save(str(tmp_path / "c.npz"), v.state_dict())
    w, _ = step_logs("began", lambda_k=0.05, k0=0.3)
    assert float(w.k) == pytest.approx(0.3)
    w.load_state_dict(checkpoint.load(path)[0])
    assert float(w.k) == float(v.k) and float(v.k) != pytest.approx(0.3)
    for p, q in zip(v.D.parameters(), w.D.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
