"""What a newcomer meets first: every flag has help, and a variant's defaults are shown
(`tinygan train VARIANT --help`, `tinygan variants -v`)."""
import argparse

import pytest

from tinygan.cli import build_parser, main
from tinygan.gans import VARIANTS
from tinygan.train import DEFAULT_STEPS


def subcommands():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_flag_of_every_subcommand_has_help():
    missing = [f"{name} {a.option_strings or a.dest}"
               for name, parser in subcommands().items() for a in parser._actions
               if not (a.help and a.help.strip()) and a.help is not argparse.SUPPRESS]
    assert not missing, missing


def test_train_variant_help_shows_its_steps_and_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "dcgan", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--batch-size" in out and "--seed" in out
    assert "default --steps: 600 on images" in out
    assert "ngf=64" in out and "int >= 1" in out and "label_smoothing=1.0" in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "tinygan train VARIANT --help" in capsys.readouterr().out


def test_variants_v_shows_every_default_with_type_and_range(capsys):
    assert main(["variants", "-v"]) == 0
    out = capsys.readouterr().out
    for name, cls in VARIANTS.items():
        for key, opt in cls.options().items():
            assert f"{key}=" in out and opt.describe() in out, (name, key)
        for kind in cls.data_kinds:
            assert str(cls.default_steps.get(kind, DEFAULT_STEPS[kind])) in out
    assert "hidden=512,512" in out and "lr0=none" in out and "minibatch_disc=false" in out


@pytest.mark.parametrize("argv, match", [
    (["train", "gan", "--steps", "2.5"], "tinygan train: argument --steps: invalid int value: '2.5'"),
    (["train", "gan", "--sample-every", "0"], "--sample-every: expected a whole number of steps >= 1"),
    (["train"], "tinygan train: the following arguments are required: variant"),
    (["sample", "run"], "tinygan sample: the following arguments are required: --out"),
    (["frob"], "tinygan: argument command: invalid choice: 'frob'"),
])
def test_parser_errors_are_one_line_too(capsys, argv, match):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("tinygan") and match in err, err
    assert "--help`" in err
