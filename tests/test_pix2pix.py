"""pix2pix: the nets' shapes and patch size, the losses by hand on a tiny batch, checkpoints and
exact resume, `tinygan eval` and `tinygan translate` end to end on a tiny run; the shared
image-to-image metrics."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import tinygan
from tinygan import Tensor, checkpoint, data
from tinygan.cli import main
from tinygan.gans import VARIANTS, create, translation
from tinygan.gans.pix2pix import PatchDiscriminator, UNetGenerator
from tinygan.train import train
from resume_check import assert_resume_is_exact

TINY = dict(ngf=4, ndf=4)


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny pix2pix run on edges2mnist, through the command line."""
    out = str(tmp_path_factory.mktemp("p2p") / "run")
    assert main(["train", "pix2pix", "--steps", "2", "--batch-size", "4", "--quiet", "--out", out,
                 "--set", "ngf=4", "--set", "ndf=4"]) == 0
    return out


def pairs(n=4, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return Tensor(rng.uniform(-1, 1, (n, 2, size, size)).astype(np.float32))


def test_unet_and_patchgan_shapes_and_the_16_pixel_patches():
    g = UNetGenerator(1, 3, 32, ngf=4)
    assert len(g.down) == 5 and g(Tensor(np.zeros((2, 1, 32, 32), np.float32))).shape == (2, 3, 32, 32)
    d = PatchDiscriminator(2, ndf=4, layers=1).eval()    # batch statistics would couple all pixels
    x = Tensor(np.random.default_rng(0).standard_normal((1, 2, 32, 32)).astype(np.float32),
               requires_grad=True)
    logits = d(x[:, :1], x[:, 1:])
    assert logits.shape == (1, 1, 14, 14)
    logits[0, 0, 6, 6].backward()            # what one logit sees: a 16×16 patch of the pair
    rows, cols = np.nonzero(np.abs(x.grad.data).sum(axis=(0, 1)))
    assert rows.max() - rows.min() + 1 == 16 and cols.max() - cols.min() + 1 == 16
    assert PatchDiscriminator(2, ndf=4, layers=2)(x[:, :1], x[:, 1:]).shape == (1, 1, 6, 6)


def test_the_losses_by_hand_on_a_tiny_batch():
    """loss_D = ½[mean softplus(−D(a, b)) + mean softplus(D(a, G(a)))] before the D update;
    loss_G = mean softplus(−D'(a, G(a))) + 100 · mean|G(a) − b| with D' the updated D."""
    x = pairs()
    a, b = x.data[:, :1], x.data[:, 1:]
    tinygan.manual_seed(0)
    m = create("pix2pix", (2, 8, 8), config=dict(TINY, dropout=0.0))
    g0 = m.G.state_dict()
    softplus = lambda v: np.logaddexp(0, v)        # noqa: E731  BCE with logits, by hand
    with tinygan.no_grad():
        fake = m.G(Tensor(a)).data
        real_logits, fake_logits = m.D(Tensor(a), Tensor(b)).data, m.D(Tensor(a), Tensor(fake)).data
    losses = m.train_step(x)
    want_D = 0.5 * (softplus(-real_logits).mean() + softplus(fake_logits).mean())
    assert losses["loss_D"] == pytest.approx(want_D, rel=1e-5)
    assert losses["loss_L1"] == pytest.approx(np.abs(fake - b).mean(), rel=1e-5)
    m.G.load_state_dict(g0)                       # G as it was; D as after its update
    with tinygan.no_grad():
        gan = softplus(-m.D(Tensor(a), m.G(Tensor(a))).data).mean()
    assert losses["loss_G_gan"] == pytest.approx(gan, rel=1e-5)
    assert losses["loss_G"] == pytest.approx(gan + 100 * np.abs(fake - b).mean(), rel=1e-5)


def test_each_player_moves_only_its_own_weights_and_dropout_is_the_noise():
    tinygan.manual_seed(0)
    m = create("pix2pix", (2, 8, 8), config=TINY)
    before = {k: {n: p.data.copy() for n, p in net.named_parameters()} for k, net in m.nets().items()}
    m.train_step(pairs())
    for k, net in m.nets().items():
        assert all(not np.array_equal(before[k][n], p.data) for n, p in net.named_parameters()), k
    a = pairs().data[:, :1]
    with tinygan.no_grad():                        # training mode: dropout makes G stochastic
        assert not np.array_equal(m.G(Tensor(a)).data, m.G(Tensor(a)).data)
    np.testing.assert_array_equal(m.translate(a), m.translate(a))     # eval mode: deterministic


def test_checkpoint_round_trip(tmp_path):
    x = pairs()
    tinygan.manual_seed(0)
    m = create("pix2pix", (2, 8, 8), config=TINY)
    m.train_step(x)
    path = checkpoint.save(str(tmp_path / "m.npz"), {"variant": m.state_dict()})
    state, _ = checkpoint.load(path)
    tinygan.manual_seed(1)
    m2 = create("pix2pix", (2, 8, 8), config=TINY)
    m2.load_state_dict(state["variant"])
    np.testing.assert_array_equal(m.translate(x.data[:, :1]), m2.translate(x.data[:, :1]))
    tinygan.manual_seed(5)
    a = m.train_step(x)
    tinygan.manual_seed(5)
    assert a == m2.train_step(x)


def test_resume_is_bit_for_bit(tmp_path):
    cfg = dict(variant="pix2pix", batch_size=4, progress=False, options=TINY)
    s, a = assert_resume_is_exact(tmp_path, cfg, steps=4, stop=2)
    assert (s["start"], s["steps"], s["data"]) == (2, 4, "edges2mnist")


def test_registered_with_an_offline_default_task_and_clear_refusals(run, capsys):
    cls = VARIANTS["pix2pix"]
    assert cls.default_data == "edges2mnist" and cls.data_kinds == ("image",)
    _, meta = checkpoint.load(os.path.join(run, "checkpoints", "last.npz"))
    assert (meta["data"], meta["domains"], meta["scale"], meta["channels"]) == \
        ("edges2mnist", ["edges", "digits"], 1, 1)
    grid = Image.open(os.path.join(run, "samples", "step_000002.png"))
    assert 2.9 < grid.width / grid.height < 3.1      # 4 rows of 4 input|output|target triplets
    with pytest.raises(ValueError, match="square pairs"):
        create("pix2pix", (1, 28, 28))
    assert main(["sample", run, "--out", os.path.join(run, "s.png")]) == 2
    assert "use `tinygan translate" in capsys.readouterr().err


def test_eval_reports_psnr_l1_and_digit_accuracy_on_the_held_out_pairs(run, capsys):
    assert main(["eval", run]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["variant"], r["split"], r["n_pairs"], r["step"]) == ("pix2pix", "held-out", 500, 2)
    from tinygan.checkpoint import build_from_checkpoint
    m, _, _ = build_from_checkpoint(run)
    test = data.load("edges2mnist").test
    out = translation.translate_all(m, test.x[:, :1])
    assert r["psnr"] == pytest.approx(translation.psnr(out, test.x[:, 1:]), abs=1e-3)
    assert r["l1"] == pytest.approx(np.abs(out - test.x[:, 1:]).mean(), abs=1e-4)
    assert r["digit_accuracy_target"] > 0.9 and 0 <= r["digit_accuracy_output"] <= 1
    assert r["accuracy_ratio"] == pytest.approx(r["digit_accuracy_output"] / r["digit_accuracy_target"], abs=1e-3)


def test_psnr_and_l1_by_hand():
    target = np.zeros((2, 1, 4, 4), np.float32)
    out = target + 0.2                          # MSE 0.04 on a peak-to-peak range of 2: 20 dB
    assert translation.psnr(out, target) == pytest.approx(20.0)
    assert translation.l1(out, target) == pytest.approx(0.2)
    mixed = np.concatenate([out[:1], target[:1] + 0.02])         # 20 dB and 40 dB: mean 30
    assert translation.psnr(mixed, target) == pytest.approx(30.0)
    assert translation.psnr(target, target) == pytest.approx(100.0)
    real = data.load("edges2mnist").test
    assert translation.digit_accuracy(real.x[:, 1:], real.labels) > 0.95
    assert translation.digit_accuracy(-np.ones((10, 1, 32, 32), np.float32), np.arange(10)) <= 0.2


# -- tinygan translate ------------------------------------------------------------------------
def _png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def test_translate_files_and_folders_end_to_end(run, tmp_path, capsys):
    from tinygan.checkpoint import build_from_checkpoint
    edges = data.load("edges2mnist").test.data[:3, 0]                 # uint8 (3, 32, 32)
    _png(str(tmp_path / "in" / "a.png"), edges[0])
    _png(str(tmp_path / "in" / "sub" / "b.png"), edges[1])
    _png(str(tmp_path / "in" / "c.jpg"), np.stack([edges[2]] * 3, axis=-1))     # RGB: made grey
    one = str(tmp_path / "one.png")
    assert main(["translate", run, "--input", str(tmp_path / "in" / "a.png"), "--out", one]) == 0
    m, _, _ = build_from_checkpoint(run)
    want = m.translate(edges[:1, None].astype(np.float32) / 127.5 - 1)[0, 0]
    got = np.asarray(Image.open(one), np.float32) / 127.5 - 1
    assert got.shape == (32, 32) and np.abs(got - want).max() <= 0.5 / 127.5 + 1e-6
    assert main(["translate", run, "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                 "--grid"]) == 0
    assert "wrote 3 translated images" in capsys.readouterr().out
    for name in ("a.png", os.path.join("sub", "b.png"), "c.png"):
        assert Image.open(tmp_path / "out" / name).size == (64, 32)         # input | output
    side = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    np.testing.assert_array_equal(side[:, :32], edges[0])
    np.testing.assert_array_equal(side[:, 32:], np.asarray(Image.open(one)))
    assert main(["translate", run, "--input", str(tmp_path / "in"), "--out",
                 str(tmp_path / "all.png"), "--grid"]) == 0
    assert "wrote 3 inputs beside their translations" in capsys.readouterr().out
    assert Image.open(tmp_path / "all.png").width > 2 * Image.open(tmp_path / "all.png").height


def test_translate_bad_input_exits_2_with_one_line(run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    toy = str(tmp_path / "toy")
    train("gan", data="ring8", steps=1, batch_size=8, out=toy, progress=False, options=dict(toy_hidden=4))
    img = str(tmp_path / "i.png")
    _png(img, np.zeros((32, 32), np.uint8))
    cases = [(["--input", str(tmp_path / "nope.png"), "--out", "o.png"], "no such file or folder"),
             (["--input", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], "no images"),
             (["--input", str(tmp_path / "bad"), "--out", str(tmp_path / "o")], "cannot read image"),
             (["--input", img, "--out", str(tmp_path / "o")], "must end with .png"),
             (["--input", str(tmp_path / "bad"), "--out", str(tmp_path / "o.png")], "add --grid"),
             (["--input", img, "--out", str(tmp_path / "o.png"), "--direction", "BtoA"],
              "only the way it was trained")]
    for argv, match in cases:
        assert main(["translate", run, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("tinygan translate: ") and err.count("\n") == 1 and match in err, err
    assert main(["translate", toy, "--input", img, "--out", str(tmp_path / "o.png")]) == 2
    assert "not an image-to-image run" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o") and not os.path.exists(tmp_path / "o.png")


def test_variants_that_do_not_translate_say_so():
    tinygan.manual_seed(0)
    m = create("gan", (2,), config=dict(toy_hidden=4))
    with pytest.raises(ValueError, match="does not translate"):
        m.translate(np.zeros((1, 2), np.float32))
    assert m.evaluate(None) is None and m.sample_grid(None) is None


def test_trains_and_evaluates_on_a_paired_folder_of_colour_images(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            _png(str(tmp_path / "pairs" / split / f"{i}.png"), rng.integers(0, 256, (12, 24, 3), np.uint8))
    out = str(tmp_path / "run")
    assert main(["train", "pix2pix", "--data", f"paired:{tmp_path / 'pairs'}", "--steps", "2",
                 "--batch-size", "2", "--quiet", "--out", out, "--set", "size=8", "--set", "ngf=2",
                 "--set", "ndf=2", "--set", "direction=BtoA"]) == 0
    capsys.readouterr()
    assert main(["eval", out]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["split"], r["n_pairs"]) == ("held-out", 2) and "digit_accuracy_output" not in r
    assert main(["translate", out, "--input", str(tmp_path / "pairs" / "val" / "0.png"),
                 "--out", str(tmp_path / "t.png"), "--grid"]) == 0
    assert Image.open(tmp_path / "t.png").size == (16, 8) and Image.open(tmp_path / "t.png").mode == "RGB"
    assert main(["train", "pix2pix", "--data", "edges2mnist", "--set", "size=64",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "size=64 applies only to paired:PATH" in capsys.readouterr().err
