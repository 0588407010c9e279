"""Variant options are typed and range-checked (`--set KEY=VALUE`, `config=`, `options=`):
a bad value is one line naming the option, what it got and what it takes, before anything
is created."""
import re

import pytest

from tinygan import gans
from tinygan.cli import main
from tinygan.gans import VARIANTS
from tinygan.gans.options import Option
from tinygan.train import train


pytestmark = pytest.mark.usefixtures("offline")    # conftest.py


BAD = [("lr=abc", "option lr takes a float > 0, got 'abc'"),
       ("z_dim=2.5", "option z_dim takes an int >= 1, got '2.5'"),
       ("minibatch_disc=yes", "option minibatch_disc takes true or false"),
       ("ngf=0", "option ngf takes an int >= 1, got '0'"),
       ("label_smoothing=1.5", "option label_smoothing takes a float in [0, 1], got '1.5'"),
       ("lr_g=1", "unknown option 'lr_g' for dcgan (did you mean lr?)")]


@pytest.mark.parametrize("pair, message", BAD)
def test_bad_set_value_is_one_line_exit_2_and_no_run_folder(capsys, tmp_path, pair, message):
    out = tmp_path / "run"
    code = main(["train", "dcgan", "--data", "mnist-subset", "--steps", "1", "--set", pair,
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("tinygan train: ") and message in lines[0], err
    assert not out.exists()


@pytest.mark.parametrize("key, value", [("lr", "abc"), ("z_dim", 2.5), ("minibatch_disc", "yes"),
                                        ("ngf", 0), ("lr", True), ("lr_g", 1)])
def test_bad_value_from_python_raises_before_any_folder(tmp_path, key, value):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=key):
        train("dcgan", data="mnist-subset", steps=1, out=str(out), progress=False,
              options={key: value})
    assert not out.exists()
    with pytest.raises(ValueError, match=key):
        gans.create("dcgan", (1, 28, 28), config={key: value})


def test_values_are_read_as_their_type():
    cfg = VARIANTS["dcgan"].check_config({"lr": "1e-4", "z_dim": "8", "minibatch_disc": "TRUE",
                                          "virtual_bn": 0, "label_smoothing": 1})
    assert cfg["lr"] == 1e-4 and cfg["z_dim"] == 8 and cfg["minibatch_disc"] is True
    assert cfg["virtual_bn"] is False and cfg["label_smoothing"] == 1.0
    assert isinstance(cfg["label_smoothing"], float)
    assert VARIANTS["vae"].check_config({"hidden": "64,32"})["hidden"] == (64, 32)
    assert VARIANTS["vae"].check_config({"hidden": [64]})["hidden"] == (64,)   # from JSON
    assert VARIANTS["lapgan"].check_config({"lr0": "none"})["lr0"] is None
    assert VARIANTS["lapgan"].check_config({"lr0": "0.01"})["lr0"] == 0.01
    assert VARIANTS["wgan"].check_config({"arch": "mlp"})["arch"] == "mlp"


@pytest.mark.parametrize("spec, bad", [
    (Option.of("n", 3, ">= 1"), ["2.5", 2.5, True, "x", 0, "1e3"]),
    (Option.of("x", 0.5, "[0, 1)"), [1, "nan", "inf", "-0.1", "one", None]),
    (Option.of("b", False), ["yes", "no", 2, "", None]),
    (Option.of("arch", "dcgan", ("mlp", "dcgan")), ["resnet", 1, None]),
    (Option.of("hidden", (8, 8), ">= 1"), ["8,0", "a,b", [], 2.5]),
])
def test_each_type_refuses_what_it_does_not_take(spec, bad):
    for value in bad:
        with pytest.raises(ValueError, match=f"option {spec.name} takes .*, got {re.escape(repr(value))}$"):
            spec.check(value)


def test_every_option_of_every_variant_has_a_type_and_a_range():
    for name, cls in VARIANTS.items():
        for key, opt in cls.options().items():
            assert opt.kind in ("bool", "choice") or opt.bounds, (name, key)
            assert opt.check(cls.defaults[key]) == cls.defaults[key], (name, key)


def test_valid_options_train_exactly_as_before(tmp_path):
    """The same run through --set text and through Python numbers: the same losses."""
    argv = ["train", "gan", "--data", "ring8", "--steps", "3", "--batch-size", "8", "--quiet"]
    assert main(argv + ["--set", "lr=1e-3", "--set", "toy_hidden=16", "--set", "z_dim=4",
                        "--out", str(tmp_path / "a")]) == 0
    b = train("gan", data="ring8", steps=3, batch_size=8, out=str(tmp_path / "b"), progress=False,
              options={"lr": 1e-3, "toy_hidden": 16, "z_dim": 4})
    log_a = open(tmp_path / "a" / "log.jsonl").read()
    assert log_a == open(tmp_path / "b" / "log.jsonl").read() and b["steps"] == 3
