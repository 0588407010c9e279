"""srgan: the perceptual loss by hand (stand-in feature net and D), the classifier features,
MSE pretraining, the lr schedule, shapes, bicubic, checkpoints and exact resume, a tiny run
trained, evaluated and sampled end to end."""
import numpy as np
import pytest

import tinygan
from tinygan import Tensor, nn
from tinygan.gans import create
from tinygan.gans.srgan import ClassifierFeatures, SRDiscriminator, SRResNet, bicubic_upscale
from tinygan.train import train
from resume_check import assert_resume_is_exact

SHAPE = (2, 32, 32)                      # (LR stored ×4 | HR) of 1-channel 32×32 images
TINY = dict(nf=4, n_blocks=1, ndf=4, d_convs=2, pretrain_steps=2)


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


def pairs(n=4, seed=0):
    """Random (LR, HR) pairs stored as mnist_x4 stores them: the LR half repeated 4×4."""
    rng = np.random.default_rng(seed)
    lr = rng.uniform(-1, 1, (n, 1, 8, 8)).astype(np.float32)
    hr = rng.uniform(-1, 1, (n, 1, 32, 32)).astype(np.float32)
    return Tensor(np.concatenate([lr.repeat(4, 2).repeat(4, 3), hr], axis=1)), lr, hr


class Scale(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        return x * self.c


class MeanLogit(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))


def test_perceptual_loss_by_hand():
    """φ = 2x, D = the image's mean as a logit: content = s · mean((2 sr − 2 hr)²),
    adversarial = mean softplus(−mean(sr)), total = content + 10⁻³ · adversarial."""
    m = create("srgan", SHAPE, config=dict(TINY, content_scale=0.5))
    m.phi, m.D = Scale(2.0), MeanLogit()
    rng = np.random.default_rng(1)
    sr, hr = rng.uniform(-1, 1, (2, 3, 1, 32, 32))
    total, content, adv = m.perceptual_loss(Tensor(sr), Tensor(hr))
    want_content = 0.5 * np.mean((2 * sr - 2 * hr) ** 2)
    want_adv = np.mean(np.logaddexp(0, -sr.mean(axis=(1, 2, 3))))
    assert float(content.item()) == pytest.approx(want_content)
    assert float(adv.item()) == pytest.approx(want_adv)
    assert float(total.item()) == pytest.approx(want_content + 1e-3 * want_adv)


def test_classifier_features_are_conv2_after_relu_and_stay_frozen():
    phi = ClassifierFeatures()
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 32)).astype(np.float32),
               requires_grad=True)
    f = phi(x)
    assert f.shape == (2, 64, 14, 14) and float(f.data.min()) >= 0
    import tinygan.functional as F
    net = phi.net
    crop = x.data[:, :, 2:30, 2:30]
    want = F.relu(net.conv2(F.max_pool2d(F.relu(net.conv1(Tensor(crop))), 2)))
    np.testing.assert_allclose(f.data, want.data, rtol=1e-6)
    # G's step moves G only: the feature net's weights are the shipped classifier's throughout
    tinygan.manual_seed(0)
    m = create("srgan", SHAPE, config=dict(TINY, pretrain_steps=0))
    before = [p.data.copy() for p in m.phi.parameters()]
    m.train_step(pairs()[0])
    assert all(np.array_equal(a, p.data) for a, p in zip(before, m.phi.parameters()))
    assert "phi" not in m.nets() and "phi" not in m.state_dict()["nets"]


def test_pretraining_is_pixel_mse_and_leaves_d_alone_then_both_train():
    tinygan.manual_seed(0)
    m = create("srgan", SHAPE, config=TINY)
    x, lr, hr = pairs()
    m.G.train()
    want = float(np.mean((m.G(Tensor(lr)).data - hr) ** 2))   # BN in train mode as in the step
    d_before = [p.data.copy() for p in m.D.parameters()]
    logs = m.train_step(x)
    assert set(logs) == {"loss_G", "lr"} and logs["loss_G"] == pytest.approx(want, rel=1e-5)
    assert all(np.array_equal(a, p.data) for a, p in zip(d_before, m.D.parameters()))
    m.steps_done = 2                                           # pretraining over
    logs = m.train_step(x)
    assert {"loss_D", "loss_G", "loss_content", "loss_adv"} <= set(logs)
    assert logs["loss_G"] == pytest.approx(logs["loss_content"] + 1e-3 * logs["loss_adv"], rel=1e-5)
    assert any(not np.array_equal(a, p.data) for a, p in zip(d_before, m.D.parameters()))


def test_lr_full_then_a_tenth_for_the_second_half_of_the_adversarial_steps():
    m = create("srgan", SHAPE, config=dict(TINY, lr=1e-3))
    m.total_steps = 10                       # 2 pretraining + 8 adversarial: the drop at step 6
    got = []
    for t in range(10):
        m.steps_done = t
        got.append(m.set_lr())
    assert got == pytest.approx([1e-3] * 6 + [1e-4] * 4)
    assert all(g["lr"] == pytest.approx(1e-4) for o in (m.opt_G, m.opt_D) for g in o.param_groups)


def test_shapes_and_bad_input():
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (3, 2, 8, 8)).astype(np.float32))
    assert SRResNet(2, 4, 1)(x).shape == (3, 2, 32, 32)          # ×2 twice
    assert SRDiscriminator(2, 32, 4, 6)(Tensor(np.zeros((3, 2, 32, 32), np.float32))).shape == (3,)
    with pytest.raises(ValueError, match="LR, HR"):
        create("srgan", (1, 32, 32), config=TINY)
    with pytest.raises(ValueError, match="odd"):
        create("srgan", SHAPE, config=dict(TINY, kernel=4))
    m = create("srgan", SHAPE, config=TINY)
    with pytest.raises(ValueError, match="only translates AtoB"):
        m.translate(np.zeros((1, 1, 32, 32), np.float32), "BtoA")
    with pytest.raises(ValueError, match="multiples of 4"):
        m.translate(np.zeros((1, 1, 30, 30), np.float32))
    out = m.translate(pairs()[0].data[:, :1])                   # stored LR in, SR of that size out
    assert out.shape == (4, 1, 32, 32) and m.G.training


def test_bicubic_keeps_constants_and_reproduces_a_linear_ramp_inside():
    flat = np.full((2, 1, 8, 8), 0.25, np.float32)
    np.testing.assert_allclose(bicubic_upscale(flat), 0.25, atol=1e-6)
    # Cubic convolution interpolates linear functions exactly away from the borders; output
    # pixel q sits at source coordinate (q + ½)/4 − ½ (pixel centres aligned, as PIL/torch).
    ramp = np.broadcast_to((np.arange(8, dtype=np.float32) - 3.5) / 4, (1, 1, 8, 8))
    out = bicubic_upscale(np.ascontiguousarray(ramp))[0, 0]
    q = np.arange(32)
    want = (((q + 0.5) / 4 - 0.5) - 3.5) / 4
    np.testing.assert_allclose(out[:, 8:24], np.broadcast_to(want[8:24], (32, 16)), atol=1e-5)


# -- end to end ---------------------------------------------------------------------------------------
def test_train_resume_evaluate_and_grid_on_mnist_x4(tmp_path):
    """4 steps in one go == 2 + resume 2 (the stop falls at the end of pretraining); eval on the
    held-out pairs; the run's grid has input | output | target triplets."""
    cfg = dict(variant="srgan", batch_size=2, progress=False, options=TINY)
    run, a = assert_resume_is_exact(tmp_path, cfg, steps=4, stop=2)
    assert run["data"] == "mnist_x4" and run["samples"].endswith(".png")
    assert not any("phi" in k for k in a)

    from tinygan.checkpoint import build_from_checkpoint
    from tinygan.data import load as load_data
    model, meta, _ = build_from_checkpoint(str(tmp_path / "straight"))
    ds = load_data("mnist_x4")
    out = model.evaluate(ds)
    assert out["n"] == 500 and out["split"] == "held-out"
    assert 10 < out["psnr_bicubic"] < 40 and np.isfinite(out["psnr"])
    assert 0.5 < out["digit_accuracy_target"] <= 1 and 0 <= out["digit_accuracy_output"] <= 1
    assert 0 <= out["digit_accuracy_bicubic"] <= 1 and out["l1_bicubic"] > 0
    images, nrow = model.sample_grid(ds)
    assert images.shape == (48, 1, 32, 32) and nrow == 12


def test_translate_command_upscales_a_users_small_image(tmp_path, capsys):
    """`tinygan translate` on an srgan run: an image of any size is read at the run's LR size
    (8×8), and the output PNG is 32×32."""
    from PIL import Image
    from tinygan.cli import main
    run = str(tmp_path / "run")
    train(variant="srgan", batch_size=2, progress=False, options=TINY, steps=1, out=run)
    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24), dtype=np.uint8)).save(src)
    out = tmp_path / "out.png"
    assert main(["translate", run, "--input", str(src), "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    assert main(["translate", run, "--input", str(src), "--out", str(out), "--direction", "BtoA"]) == 2
    assert "tinygan translate: srgan only translates AtoB" in capsys.readouterr().err


def test_trains_on_a_users_paired_folder_of_rgb_images(tmp_path):
    """paired:PATH (A|B side by side): srgan reads both halves at --set size=16 and learns
    A's ×4-subsampled 4×4 image → B; eval compares with bicubic, without labels."""
    from PIL import Image
    from tinygan.checkpoint import build_from_checkpoint
    from tinygan.data import load as load_data
    rng = np.random.default_rng(0)
    for sub, n in (("train", 3), ("val", 2)):
        (tmp_path / "d" / sub).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)).save(
                tmp_path / "d" / sub / f"{i}.jpg")
    run = str(tmp_path / "run")
    train(variant="srgan", data=f"paired:{tmp_path / 'd'}", batch_size=2, steps=2, progress=False,
          out=run, options=dict(TINY, pretrain_steps=1, size=16))
    model, meta, _ = build_from_checkpoint(run)
    assert model.data_shape == (6, 16, 16)
    out = model.evaluate(load_data(meta["data"], size=16))
    assert out["n"] == 2 and np.isfinite(out["psnr"]) and np.isfinite(out["psnr_bicubic"])
    assert "digit_accuracy_output" not in out
