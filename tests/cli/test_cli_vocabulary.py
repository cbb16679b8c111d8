"""One CLI vocabulary: a flag has one spelling and one meaning in every sub-command (docs/cli.md),
and the older spellings (the originals' and tfforensics' own) still parse."""

from __future__ import annotations

import argparse
import collections

import pytest

from tfforensics.cli import _common
from tfforensics.cli.main import build_parser


def _walk(parser, name="tfforensics"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _walk(child, f"{name} {sub}")


def _options():
    """(command, action) for every option of every (sub-)command."""
    for name, parser in _walk(build_parser()):
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                yield name, action


def _type_name(action):
    return getattr(action.type, "__name__", action.type)


def test_every_visible_flag_has_one_meaning():
    """The same visible spelling lands in the same place with the same type in every command."""
    meanings = collections.defaultdict(set)
    for command, action in _options():
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._VersionAction):
            continue
        for option in action.option_strings:
            meanings[option].add((action.dest, _type_name(action)))
    clashes = {option: found for option, found in meanings.items() if len(found) > 1}
    assert not clashes


def test_shared_flags_come_from_common():
    """Every spelling of a shared flag is added by ``add_flag``: same dest, type and help."""
    names = {name: dest for dest, flag in _common.FLAGS.items() for name in flag.names + flag.hidden}
    used = collections.Counter()
    for command, action in _options():
        for option in action.option_strings:
            if option not in names or getattr(action, "legacy", None):
                continue
            dest = names[option]
            if option == "--grayscale" or option == "-g":
                continue
            flag = _common.FLAGS[dest]
            assert getattr(action, "shared", None) == dest, f"{command} {option}: not added through add_flag"
            assert action.dest == flag.dest, f"{command} {option}"
            assert _type_name(action) == getattr(flag.kwargs.get("type"), "__name__", flag.kwargs.get("type")), \
                f"{command} {option}"
            if action.help != argparse.SUPPRESS:
                assert action.help.startswith(flag.help), f"{command} {option}: {action.help!r}"
            used[dest] += 1
    assert used["out"] > 20 and used["batch_size"] > 10  # the walk did see the commands


def test_hidden_spellings_are_declared():
    """A hidden option is either a shared flag's older spelling or an ``add_legacy`` one, saying what it means."""
    hidden = {name for flag in _common.FLAGS.values() for name in flag.hidden}
    for command, action in _options():
        if action.help != argparse.SUPPRESS:
            continue
        assert getattr(action, "legacy", None) or set(action.option_strings) <= hidden, (command, action.option_strings)


def test_docs_table_lists_every_shared_flag():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for flag in _common.FLAGS.values():
        assert f"`{flag.names[0]}" in text, flag.names[0]


def _parse(argv):
    return build_parser().parse_args(argv)


@pytest.mark.parametrize("argv, expected", [
    # GANDCTAnalysis' spellings
    (["train", "log2", "d_train_tf", "d_val_tf", "--image_size", "32", "--batch_size", "16", "--early_stopping", "2"],
     {"size": 32, "batch_size": 16, "early_stopping": 2, "val": "d_val_tf"}),
    (["prepare", "src", "out", "-rln"], {"raw": True, "log": True, "normalize": True, "out": "out"}),
    (["prepare", "src", "out", "-lc", "--compat", "gandct"], {"log": True, "color": True, "compat": "gandct"}),
    (["perturb", "cropping", "src", "out", "--size", "10"], {"kind": "cropping", "limit": 10}),
    (["classify", "m.keras", "imgs", "-s", "5", "-b", "8", "-r"], {"limit": 5, "batch_size": 8, "recursive": True}),
    # the 004 project's
    (["train", "nn", "d", "--epoch", "3", "--hidden_layer", "64"], {"epochs": 3, "hidden_units": 64}),
    (["resize", "a", "b", "--image-size", "64"], {"size": 64, "out": "b"}),
    # tfforensics' earlier spellings
    (["stats", "a", "b", "--amount", "7", "-o", "spectra/x"], {"limit": 7, "out": "spectra/x"}),
    (["stats", "a", "-n", "7"], {"limit": 7, "out": "spectra"}),
    (["mean-var", "a", "--amount", "7", "--grayscale"], {"limit": 7, "color": False}),
    (["test", "m", "d", "--split", "val"], {"subset": "val"}),
    (["attribute", "test", "m", "d", "--split", "train"], {"subset": "train"}),
    (["lgrad", "test", "m", "r", "--split", "val", "--output", "m.json", "--families", "a,b"],
     {"subset": "val", "out": "m.json", "families": ["a", "b"]}),
    (["lgrad", "train", "r", "o", "--classes", "horse,car"], {"classes": ["horse", "car"], "out": "o"}),
    (["lgrad", "train", "r", "--out", "o", "--classes", "horse", "car"], {"classes": ["horse", "car"], "out": "o"}),
    (["img2grad", "a", "b", "--pkl", "p", "--resample", "bilinear"], {"filter": "bilinear", "out": "b"}),
    (["baselines", "test", "knn", "-d", "x", "--out", "o", "--workers", "3"], {"n_jobs": 3}),
    (["train", "log", "d", "--classes", "2"], {"num_classes": 2}),
    (["attribute", "train", "s", "--model", "visnet"], {"arch": "visnet"}),
    (["lgrad", "train", "r", "o", "--niter", "5", "--delr_freq", "2", "--loadSize", "64", "--cropSize", "56",
      "--no_flip", "--class_bal", "--batch_size", "4"],
     {"epochs": 5, "decay_every": 2, "load_size": 64, "crop_size": 56, "no_flip": True, "class_bal": True,
      "batch_size": 4}),
    (["convert", "gandct", "m", "--out", "x.keras", "--class-names", "a,b", "--image-size", "64"],
     {"class_names": ["a", "b"], "size": 64}),
    (["regularize", "sweep", "p", "--out", "s", "--thresholds", "1-5"], {"thresholds": ["1-5"]}),
    # the one vocabulary
    (["crop", "celeba", "a", "--out", "b", "--limit", "3"], {"out": "b", "limit": 3}),
    (["gan", "sample", "--pkl", "g.pkl", "--count", "2", "fakes"], {"family": "fakes", "out": None}),
    (["gan", "sample", "nearest", "fakes", "--count", "2"], {"family": "nearest", "out": "fakes"}),
])
def test_old_and_new_spellings_parse(argv, expected):
    args = _parse(argv)
    for key, value in expected.items():
        assert getattr(args, key) == value, (key, getattr(args, key))


def test_out_given_twice_or_missing_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse(["prepare", "src", "out1", "--out", "out2"])
    assert exit_info.value.code == 2
    assert "OUT given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["prepare", "src"])
    assert "required: OUT" in capsys.readouterr().err
    assert _parse(["prepare", "src", "same", "--out", "same"]).out == "same"


def test_list_values_split_on_commas_and_spaces():
    assert _parse(["train", "log", "d", "--class-names", "real, fake", "gan"]).class_names == ["real", "fake", "gan"]
