"""Per-data-kind recipes (`Variant.recipes`, `default_steps`, `default_batch_size`) and the
step counts of variants whose generator moves every n_critic-th step."""
import os
import signal

import numpy as np
import pytest

from tinygan import checkpoint
from tinygan.cli import main
from tinygan.gans import VARIANTS
from tinygan.gans.base import Variant
from tinygan.gans.wgan import WGANGP
from tinygan.train import build_from_checkpoint, progress_fields, train

SMALL = dict(toy_hidden=8, toy_layers=1)       # tiny toy nets: the recipe's other values stay


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


def meta_of(out):
    return checkpoint.load(os.path.join(out, "checkpoints", "last.npz"))[1]


def test_defaults_for_each_kind():
    toy, image = WGANGP.defaults_for("toy"), WGANGP.defaults_for("image")
    assert (toy["z_dim"], toy["gp_weight"], toy["beta1"], toy["lr_decay"]) == (2, 0.1, 0.5, "linear")
    assert (image["z_dim"], image["gp_weight"], image["beta1"], image["lr_decay"]) == (100, 10.0, 0.0, "none")
    assert WGANGP.defaults_for(None) == WGANGP.defaults      # kind unknown: the plain defaults
    assert WGANGP.check_config({"z_dim": "3"}, "toy") == {**toy, "z_dim": 3}
    with pytest.raises(ValueError, match="data kind must be 'toy' or 'image'"):
        WGANGP.defaults_for("audio")


def test_a_toy_run_gets_the_toy_recipe_and_its_batch_size(tmp_path):
    out = str(tmp_path / "toy")
    train("wgan_gp", data="ring8", steps=2, out=out, options=SMALL, progress=False)
    meta = meta_of(out)
    cfg = meta["config"]
    assert (cfg["z_dim"], cfg["gp_weight"], cfg["beta1"], cfg["lr_decay"]) == (2, 0.1, 0.5, "linear")
    assert meta["batch_size"] == 256                     # wgan_gp's toy batch, not 64
    variant, _, _ = build_from_checkpoint(out)
    assert variant.opt_D.param_groups[0]["betas"] == (0.5, 0.9) and variant.G.main[0].in_features == 2


def test_an_image_run_gets_the_image_values(tmp_path):
    out = str(tmp_path / "image")
    train("wgan_gp", data="mnist-subset", steps=1, out=out, progress=False,
          options=dict(ngf=4, ndf=4))
    meta = meta_of(out)
    cfg = meta["config"]
    assert (cfg["z_dim"], cfg["gp_weight"], cfg["beta1"], cfg["lr_decay"]) == (100, 10.0, 0.0, "none")
    assert meta["batch_size"] == 64


def test_set_overrides_a_recipe_value_and_the_batch_size_flag_the_default(tmp_path, capsys):
    out = str(tmp_path / "set")
    assert main(["train", "wgan_gp", "--data", "ring8", "--steps", "2", "--out", out, "--quiet",
                 "--batch-size", "16", "--set", "gp_weight=1", "--set", "toy_hidden=8",
                 "--set", "toy_layers=1"]) == 0
    meta = meta_of(out)
    assert meta["config"]["gp_weight"] == 1.0 and meta["config"]["z_dim"] == 2   # the rest: recipe
    assert meta["batch_size"] == 16
    # a --set value outside the option's range fails the same way on toys
    assert main(["train", "wgan_gp", "--data", "ring8", "--steps", "1", "--out", str(tmp_path / "bad"),
                 "--set", "lr_decay=cosine"]) == 2
    assert "option lr_decay takes one of 'none', 'linear', got 'cosine'" in capsys.readouterr().err


def test_resume_keeps_the_config_the_run_started_with(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    train("wgan_gp", data="ring8", steps=2, batch_size=16, out=out, options=SMALL, progress=False)
    # The recipe changes after the run started (a new version, say): the run keeps its own.
    monkeypatch.setattr(WGANGP, "recipes", {"toy": dict(z_dim=3, gp_weight=5.0)})
    s = train("wgan_gp", out=out, steps=4, resume=True, progress=False)
    assert (s["start"], s["steps"]) == (2, 4)
    meta = meta_of(out)
    assert meta["config"]["z_dim"] == 2 and meta["config"]["gp_weight"] == 0.1
    assert meta["batch_size"] == 16
    # a new run takes the new recipe
    train("wgan_gp", data="ring8", steps=1, batch_size=16, out=str(tmp_path / "new"),
          options=SMALL, progress=False)
    assert meta_of(str(tmp_path / "new"))["config"]["z_dim"] == 3


def test_an_interrupted_run_resumes_bit_for_bit_with_the_decay(tmp_path, monkeypatch):
    """The decayed rate depends on the step and the run's length, both in the checkpoint: 8
    steps straight == Ctrl-C after 3, then --resume.  (A run taken further with a larger
    --steps decays over its new length.)"""
    kw = dict(data="ring8", steps=8, batch_size=16, options=SMALL, progress=False)
    train("wgan_gp", out=str(tmp_path / "straight"), **kw)
    real_step = WGANGP.train_step

    def step(self, x, y=None):                 # Ctrl-C during step 4
        out = real_step(self, x, y)
        if self.steps_done == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return out
    monkeypatch.setattr(WGANGP, "train_step", step)
    assert train("wgan_gp", out=str(tmp_path / "split"), **kw)["interrupted"]
    monkeypatch.setattr(WGANGP, "train_step", real_step)
    assert train("wgan_gp", out=str(tmp_path / "split"), resume=True, progress=False)["steps"] == 8
    with np.load(tmp_path / "straight" / "checkpoints" / "last.npz") as a, \
            np.load(tmp_path / "split" / "checkpoints" / "last.npz") as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    log = lambda d: open(tmp_path / d / "log.jsonl").read()   # noqa: E731
    assert log("straight") == log("split")


def test_variants_v_and_train_help_show_each_kinds_values(capsys):
    assert main(["variants", "-v"]) == 0
    out = capsys.readouterr().out
    assert "default --steps: 2000 on images, 20000 on 2-D toys" in out
    assert "400 generator steps on images, 4000 generator steps on 2-D toys" in out
    assert "default --batch-size: 64 on images, 256 on 2-D toys" in out
    assert "z_dim=100 (2-D toys: 2)" in out and "gp_weight=10.0 (2-D toys: 0.1)" in out
    assert "lr_decay=none (2-D toys: linear)" in out
    dcgan = out[out.index("\ndcgan "):out.index("\ngan ")]     # one player step a step
    assert "generator steps" not in dcgan and "default --batch-size: 64 on images" in dcgan
    with pytest.raises(SystemExit):
        main(["train", "wgan_gp", "--help"])
    help_text = capsys.readouterr().out
    assert "beta1=0.0 (2-D toys: 0.5)" in help_text and "256 on 2-D toys" in help_text


def _variant(**attrs):
    return type("Toy", (Variant,), {"defaults": dict(z_dim=4, lr=1e-3), **attrs})


def test_a_bad_recipe_fails_when_the_class_is_defined():
    _variant(recipes={"toy": dict(z_dim=2)})               # fine
    with pytest.raises(TypeError, match=r"recipes\['toy'\]: 'zdim' is not in its defaults"):
        _variant(recipes={"toy": dict(zdim=2)})
    with pytest.raises(ValueError, match="option lr takes a float > 0, got -1"):
        _variant(recipes={"image": dict(lr=-1)})
    with pytest.raises(TypeError, match="'toy' is not one of its data kinds"):
        _variant(data_kinds=("image",), default_batch_size={"toy": 256})


def test_a_data_sets_own_recipe_applies_on_top_of_its_kinds(tmp_path, monkeypatch):
    monkeypatch.setattr(WGANGP, "recipes", {**WGANGP.recipes, "grid25": dict(gp_weight=0.5, toy_hidden=8)})
    monkeypatch.setattr(WGANGP, "default_steps", {**WGANGP.default_steps, "grid25": 3})
    monkeypatch.setattr(WGANGP, "default_batch_size", {**WGANGP.default_batch_size, "grid25": 16})
    grid, ring = WGANGP.defaults_for("toy", "grid25"), WGANGP.defaults_for("toy", "ring8")
    assert (grid["gp_weight"], grid["toy_hidden"], grid["z_dim"]) == (0.5, 8, 2)   # z_dim: the toys'
    assert ring == WGANGP.defaults_for("toy") and ring["gp_weight"] == 0.1
    out = str(tmp_path / "grid")
    train("wgan_gp", data="grid25", out=out, options=dict(toy_layers=1), progress=False)
    meta = meta_of(out)
    assert (meta["steps"], meta["batch_size"]) == (3, 16)
    assert (meta["config"]["gp_weight"], meta["config"]["toy_hidden"], meta["config"]["beta1"]) == (0.5, 8, 0.5)
    out = str(tmp_path / "ring")              # ring8 keeps the toys' recipe, steps and batch
    train("wgan_gp", data="ring8", steps=1, out=out, options=SMALL, progress=False)
    meta = meta_of(out)
    assert meta["batch_size"] == 256 and meta["config"]["gp_weight"] == 0.1
    assert main(["variants", "-v"]) == 0


def test_grid25_has_its_own_wgan_gp_recipe_and_variants_v_shows_it(capsys):
    grid, ring = WGANGP.defaults_for("toy", "grid25"), WGANGP.defaults_for("toy", "ring8")
    assert (grid["toy_hidden"], grid["toy_scale"], grid["lr"]) == (256, 2.828, 5e-4)
    assert (ring["toy_hidden"], ring["toy_scale"], ring["lr"]) == (512, 1.0, 1e-4)
    assert main(["variants", "-v"]) == 0
    out = capsys.readouterr().out
    assert "toy_hidden=512 (grid25: 256)" in out and "toy_scale=1.0 (grid25: 2.828)" in out


def test_toy_scale_the_nets_see_scaled_points_and_samples_come_back_in_data_units():
    from tinygan import tensor
    g = WGANGP((2,), config=dict(SMALL, toy_scale=4.0))
    x = np.array([[4.0, -8.0]], np.float32)
    np.testing.assert_array_equal(g.to_net(tensor(x)).data, [[1.0, -2.0]])
    z = g.fixed_noise(5)
    g.eval()
    raw = g.G(z).data                         # G's output, in the nets' units
    np.testing.assert_allclose(g.sample(5, z=z), 4.0 * raw, rtol=1e-6)
    plain = WGANGP((2,), config=SMALL)
    np.testing.assert_array_equal(plain.to_net(tensor(x)).data, x)


def test_a_data_set_recipe_must_name_a_toy_of_a_kind_the_variant_trains_on():
    _variant(recipes={"grid25": dict(z_dim=2)})
    with pytest.raises(TypeError, match="'grid26' is not one of its data kinds"):
        _variant(recipes={"grid26": dict(z_dim=2)})
    with pytest.raises(TypeError, match="'ring8' is not one of its data kinds"):
        _variant(data_kinds=("image",), default_steps={"ring8": 10})


def test_linear_decay_reaches_zero_at_the_end_of_the_run():
    g = WGANGP((2,), config=SMALL)
    g.total_steps = 4
    x = __import__("tinygan").tensor(np.zeros((8, 2), np.float32))
    seen = []
    for _ in range(4):
        g.train_step(x)
        seen.append(g.opt_D.param_groups[0]["lr"])
        assert g.opt_G.param_groups[0]["lr"] == seen[-1]
        g.steps_done += 1
    assert np.allclose(seen, [1e-4, 0.75e-4, 0.5e-4, 0.25e-4])
    plain = WGANGP((2,), config=dict(SMALL, lr_decay="none"))
    plain.total_steps = 4
    plain.steps_done = 3
    plain.train_step(x)
    assert plain.opt_D.param_groups[0]["lr"] == 1e-4


def test_the_progress_fields_count_generator_steps_where_they_differ():
    assert progress_fields({"loss_D": 0.5}, 12, 5) == {"generator_steps": 2, "loss_D": "0.500"}
    assert progress_fields({"loss_D": 0.5}, 12, 1) == {"loss_D": "0.500"}


def test_the_progress_bar_counts_critic_and_generator_steps(tmp_path, capsys):
    train("wgan_gp", data="ring8", steps=10, batch_size=8, out=str(tmp_path / "w"),
          options=SMALL, progress=True)
    err = capsys.readouterr().err
    assert "wgan_gp critic steps" in err and "10/10" in err and "generator_steps=2" in err
    train("gan", data="ring8", steps=3, batch_size=8, out=str(tmp_path / "g"), progress=True,
          options=dict(toy_hidden=8))
    err = capsys.readouterr().err
    assert "gan:" in err and "critic" not in err and "generator_steps" not in err


def test_every_registered_recipe_is_a_valid_config():
    for name, cls in VARIANTS.items():
        for kind in cls.data_kinds:
            assert cls.check_config(None, kind) == cls.defaults_for(kind), name


def test_a_run_saved_before_an_option_existed_loads_and_resumes_as_it_was_trained(tmp_path):
    """wgan_gp's toy nets gained `toy_layers` (now 3) and `lr_decay` (toys: linear): a run saved
    before has neither key, and must come back with 2 layers and no decay, not the new recipe."""
    out = str(tmp_path / "old")
    train("wgan_gp", data="ring8", steps=2, batch_size=16, out=out, progress=False,
          options=dict(toy_hidden=8, toy_layers=2, lr_decay="none"))
    ckpt = os.path.join(out, "checkpoints", "last.npz")
    state, meta = checkpoint.load(ckpt)
    for key in ("toy_layers", "lr_decay"):          # as a run of the earlier version saved it
        del meta["config"][key]
    checkpoint.save(ckpt, state, meta)
    model, _, _ = build_from_checkpoint(out)
    assert (model.config["toy_layers"], model.config["lr_decay"]) == (2, "none")
    s = train("wgan_gp", out=out, steps=3, resume=True, progress=False)
    assert (s["start"], s["steps"]) == (2, 3)
