"""cyclegan: the losses by hand on a tiny batch (stand-in nets whose outputs are known), the
replay pool, the held-then-decayed lr, the nets' shapes, checkpoints and exact resume."""
import os

import numpy as np
import pytest

import tinygan
from tinygan import Tensor, checkpoint, nn
from tinygan.gans import create
from tinygan.gans.cyclegan import (PatchDiscriminator, ResnetGenerator, held_then_decayed,
                                   lsgan_d_loss, lsgan_g_loss)
from tinygan.gans.image_pool import ImagePool
from resume_check import assert_resume_is_exact

SHAPE = (2, 32, 32)                   # two domains of 1-channel 32×32 images
TINY = dict(ngf=4, ndf=4, n_blocks=1, pool_size=3)


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


def batch(n=4, seed=0, shape=SHAPE):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype(np.float32))


class Shift(nn.Module):
    """x + c: a stand-in net whose outputs are known by hand."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return x + self.c


# -- the losses by hand -----------------------------------------------------------------------------
def test_least_squares_losses_by_hand():
    real, fake = Tensor(np.array([1.5, 0.5, -1.0])), Tensor(np.array([0.0, 2.0]))
    # ½ [mean((1.5-1)², (0.5-1)², (-1-1)²) + mean(0², 2²)] = ½ [(0.25+0.25+4)/3 + 2] = 1.75
    assert float(lsgan_d_loss(real, fake).item()) == pytest.approx(1.75)
    # mean((0-1)², (2-1)²) = 1
    assert float(lsgan_g_loss(fake).item()) == pytest.approx(1.0)


def test_generator_objective_by_hand():
    """G_AB = x + 0.2, G_BA = x − 0.1, both D's the identity (a map of scores = the image):
    cycle |a + 0.1 − a| + |b + 0.1 − b| = 0.2, identity |0.2| + |−0.1| = 0.3, so the total is
    adv + 10 · 0.2 + 0.5 · 10 · 0.3 = adv + 3.5."""
    m = create("cyclegan", SHAPE, config=TINY)
    m.G_AB, m.G_BA, m.D_A, m.D_B = Shift(0.2), Shift(-0.1), Shift(0.0), Shift(0.0)
    x = batch(3).data.astype(np.float64)
    a, b = x[:, :1], x[:, 1:]
    total, parts, fake_a, fake_b = m.generator_losses(Tensor(a), Tensor(b))
    adv = np.mean((a + 0.2 - 1) ** 2) + np.mean((b - 0.1 - 1) ** 2)
    assert float(parts["loss_G_adv"]) == pytest.approx(adv)
    assert float(parts["loss_cycle"]) == pytest.approx(0.2)
    assert float(parts["loss_identity"]) == pytest.approx(0.3)
    assert float(total.item()) == pytest.approx(adv + 3.5)
    np.testing.assert_allclose(fake_b.data, a + 0.2)
    # lambda_id = 0 drops the identity term (and its two extra passes)
    m.config["lambda_id"] = 0.0
    total, parts, _, _ = m.generator_losses(Tensor(a), Tensor(b))
    assert "loss_identity" not in parts and float(total.item()) == pytest.approx(adv + 2.0)


def test_train_step_updates_every_net_and_logs_the_parts():
    tinygan.manual_seed(0)
    m = create("cyclegan", SHAPE, config=TINY)
    before = {k: [p.data.copy() for p in net.parameters()] for k, net in m.nets().items()}
    logs = m.train_step(batch())
    assert set(logs) == {"loss_G", "loss_G_adv", "loss_cycle", "loss_identity", "loss_D", "lr"}
    assert all(np.isfinite(v) for v in logs.values())
    for k, net in m.nets().items():
        assert any(not np.array_equal(p0, p.data) for p0, p in zip(before[k], net.parameters())), k


# -- the replay pool --------------------------------------------------------------------------------
def images(n, start):
    """n 1×1×1 images whose values name them: start, start+1, …"""
    return Tensor(np.arange(start, start + n, dtype=np.float32).reshape(n, 1, 1, 1))


def test_pool_passes_fakes_through_until_full_then_swaps_about_half():
    tinygan.manual_seed(0)
    pool = ImagePool(4)
    out = pool.query(images(3, 0))                     # filling: returned as they are, all stored
    np.testing.assert_array_equal(out.data.ravel(), [0, 1, 2])
    out = pool.query(images(3, 3))                     # 3 stored → full, then 4 and 5 face the coin
    assert len(pool) == 4 and out.data.ravel()[0] == 3
    held = sorted(pool.images.ravel().tolist())
    seen = sorted(out.data.ravel().tolist())
    # Nothing is lost or duplicated: what went in is what is held plus what came out.
    assert sorted(held + seen) == sorted([0, 1, 2, 3] + [3, 4, 5])
    swapped = 0
    for k in range(200):                               # each new fake: kept or swapped, p = ½
        new = 100 + 10 * k
        before = set(pool.images.ravel().tolist())
        got = float(pool.query(images(1, new)).data.ravel()[0])
        if got != new:
            swapped += 1
            assert got in before and new in pool.images.ravel()
    assert 70 < swapped < 130


def test_pool_of_size_zero_is_the_identity_and_state_round_trips():
    x = images(5, 0)
    np.testing.assert_array_equal(ImagePool(0).query(x).data, x.data)
    assert len(ImagePool(0)) == 0
    tinygan.manual_seed(0)
    pool = ImagePool(2)
    pool.query(images(2, 7))
    copy = ImagePool(2)
    copy.load_state_dict(pool.state_dict())
    np.testing.assert_array_equal(copy.images, pool.images)
    with pytest.raises(ValueError, match="pool of 2"):
        ImagePool(3).load_state_dict(pool.state_dict())


def test_pool_output_is_detached():
    fakes = Tensor(np.zeros((2, 1, 1, 1), np.float32), requires_grad=True) * 2.0
    assert not ImagePool(4).query(fakes).requires_grad


# -- the learning rate --------------------------------------------------------------------------------
def test_lr_held_for_the_first_half_then_linear():
    assert [held_then_decayed(t, 10, 0.5) for t in range(10)] == pytest.approx(
        [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2])
    assert held_then_decayed(7, None, 0.5) == 1.0          # unknown run length: held
    assert held_then_decayed(3, 4, 1.0) == 1.0             # hold everything
    assert held_then_decayed(0, 4, 0.0) == 1.0 and held_then_decayed(3, 4, 0.0) == 0.25
    m = create("cyclegan", SHAPE, config=dict(TINY, lr=1e-3))
    m.total_steps, m.steps_done = 10, 8
    assert m.train_step(batch())["lr"] == pytest.approx(4e-4)
    assert all(g["lr"] == pytest.approx(4e-4) for o in (m.opt_G, m.opt_D) for g in o.param_groups)


# -- nets -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, channels", [(32, 1), (16, 3)])
def test_nets_shapes(size, channels):
    x = batch(2, shape=(channels, size, size))
    assert ResnetGenerator(channels, 4, 1)(x).shape == (2, channels, size, size)
    # 32 → 16 → 8 (stride 2), 8 → 7 → 6 (4×4 stride 1, padding 1): a 6×6 map of patch scores
    assert PatchDiscriminator(channels, 4, 2)(x).shape == (2, 1, size // 4 - 2, size // 4 - 2)


def test_bad_data_and_direction_are_clear_errors():
    with pytest.raises(ValueError, match="two-domain data"):
        create("cyclegan", (1, 32, 32), config=TINY)
    m = create("cyclegan", SHAPE, config=TINY)
    with pytest.raises(ValueError, match="AtoB or BtoA"):
        m.translate(np.zeros((1, 1, 32, 32), np.float32), "sideways")
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        m.translate(np.zeros((1, 3, 32, 32), np.float32))


def test_translate_both_ways_in_eval_mode_keeps_training_mode():
    tinygan.manual_seed(0)
    m = create("cyclegan", SHAPE, config=TINY)
    x = batch(3).data[:, :1]
    for d in ("AtoB", "BtoA"):
        y = m.translate(x, d)
        assert y.shape == x.shape and y.dtype == np.float32 and np.abs(y).max() <= 1
    assert m.G_AB.training and m.G_BA.training
    np.testing.assert_array_equal(m.translate(x, "AtoB"), m.translate(x, "AtoB"))


# -- checkpoints and exact resume ------------------------------------------------------------------
def test_checkpoint_round_trip_and_exact_resume(tmp_path):
    """4 steps in one go == 2 steps, save (nets, Adam, replay pools, RNG), load into a fresh
    variant, 2 more: the pool (size 3, batch 4) is full after step 1, so steps 2-4 draw from
    it and its contents must carry over."""
    xs = [batch(4, seed=s) for s in range(4)]
    tinygan.manual_seed(0)
    straight = create("cyclegan", SHAPE, config=TINY)
    straight.total_steps = 4
    logs_straight = []
    for x in xs:
        logs_straight.append(straight.train_step(x))
        straight.steps_done += 1

    tinygan.manual_seed(0)
    first = create("cyclegan", SHAPE, config=TINY)
    first.total_steps = 4
    logs_split = []
    for x in xs[:2]:
        logs_split.append(first.train_step(x))
        first.steps_done += 1
    path = checkpoint.save(str(tmp_path / "c.npz"), {"variant": first.state_dict(),
                                                    "rng": tinygan.backend.rng_state()})
    state, _ = checkpoint.load(path)
    tinygan.manual_seed(123)
    second = create("cyclegan", SHAPE, config=TINY)
    second.load_state_dict(state["variant"])
    tinygan.backend.set_rng_state(state["rng"])
    second.total_steps = 4
    assert second.steps_done == 2 and len(second.pool_A) == 3
    for x in xs[2:]:
        logs_split.append(second.train_step(x))
        second.steps_done += 1
    assert logs_split == logs_straight
    for k, net in straight.nets().items():
        for p, q in zip(net.parameters(), getattr(second, k).parameters()):
            np.testing.assert_array_equal(p.data, q.data, err_msg=k)
    np.testing.assert_array_equal(straight.pool_B.images, second.pool_B.images)


def test_train_resume_evaluate_and_grid_on_mnist2thick(tmp_path):
    """The default data is mnist2thick; 4 steps in one go == 2 + resume 2 through train()
    (pools, Adam and the lr schedule carry over); eval on the 500 held-out digits."""
    cfg = dict(variant="cyclegan", batch_size=2, progress=False, options=TINY)
    run, a = assert_resume_is_exact(tmp_path, cfg, steps=4, stop=2)
    assert run["data"] == "mnist2thick" and run["samples"].endswith(".png")
    assert any(k.startswith("variant/pools/A") for k in a)

    from tinygan.checkpoint import build_from_checkpoint
    from tinygan.data import load as load_data
    model, meta, _ = build_from_checkpoint(str(tmp_path / "straight"))
    assert meta["domains"] == ["digits", "thick digits"]
    ds = load_data("mnist2thick")
    out = model.evaluate(ds)
    assert out["n"] == 500 and out["split"] == "held-out"
    for k in ("label_preservation_AtoB", "label_preservation_BtoA"):
        assert 0 <= out[k] <= 1
    assert out["digit_accuracy_real_A"] > 0.9 and out["cycle_l1_A"] > 0
    assert out["digit_accuracy_output"] == out["label_preservation_AtoB"]     # the shared key
    assert out["l1_input_as_output"] > 0 and np.isfinite(out["psnr"])
    images, nrow = model.sample_grid(ds)
    assert images.shape == (48, 1, 32, 32) and nrow == 12


def test_translate_command_both_directions(tmp_path):
    from PIL import Image
    from tinygan.cli import main
    from tinygan.train import train
    run = str(tmp_path / "run")
    train(variant="cyclegan", batch_size=2, progress=False, options=TINY, steps=1, out=run)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 40), 60 * i, np.uint8)).save(folder / f"{i}.png")
    for d in ("AtoB", "BtoA"):
        out = tmp_path / d
        assert main(["translate", run, "--input", str(folder), "--out", str(out), "--direction", d,
                     "--grid"]) == 0
        assert sorted(os.listdir(out)) == ["0.png", "1.png"]
        assert Image.open(out / "0.png").size == (64, 32)          # input | output


def test_trains_and_evaluates_on_a_users_unpaired_folders(tmp_path):
    """CycleGAN's own format: trainA/, trainB/ (testA/, testB/ held out), RGB, read at
    --set size=16; without labels eval reports the cycle L1 only."""
    from PIL import Image
    from tinygan.checkpoint import build_from_checkpoint
    from tinygan.data import load as load_data
    from tinygan.train import train
    rng = np.random.default_rng(0)
    for sub, n in (("trainA", 3), ("trainB", 4), ("testA", 2), ("testB", 2)):
        (tmp_path / "d" / sub).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(
                tmp_path / "d" / sub / f"{i}.png")
    run = str(tmp_path / "run")
    train(variant="cyclegan", data=f"unpaired:{tmp_path / 'd'}", batch_size=2, steps=1,
          progress=False, out=run, options=dict(TINY, size=16))
    model, meta, _ = build_from_checkpoint(run)
    assert model.data_shape == (6, 16, 16) and model.channels == 3
    out = model.evaluate(load_data(meta["data"], size=16))
    assert out["split"] == "held-out" and out["n"] == 2 and out["cycle_l1_A"] > 0
    assert not any(k.startswith(("label_", "psnr", "digit_")) for k in out)
