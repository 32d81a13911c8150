"""The command line behaves alike across verbs: --version, --debug before or after the verb."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import discnet
from discnet.cli import VERBS, build_parser, main
from discnet.errors import InputError


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"discnet {discnet.__version__}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_verb_shows_the_traceback(where, tmp_path, capsys):
    args = ["volumes", str(tmp_path / "missing.nii.gz"), "-o", str(tmp_path / "v.csv")]
    assert main(args) == 2 and "not found" in capsys.readouterr().err
    with pytest.raises(InputError, match="not found"):
        main(["--debug", *args] if where == "before" else [*args, "--debug"])


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "train"])
def test_every_verb_takes_debug_after_it(verb):
    parser = build_parser(verb)
    action = next(
        a for a in parser._subparsers._group_actions[0].choices[verb]._actions if "--debug" in a.option_strings
    )
    assert action.dest == "debug"


@pytest.mark.parametrize("flag", ["--slice-count", "--slices"])
def test_synth_names_its_slice_count_apart_from_the_slices_overlay_draws(flag):
    args = build_parser("synth").parse_args(["synth", "out", flag, "12", "14"])
    assert args.slices == [12, 14]
    overlay = build_parser("overlay").parse_args(["overlay", "a.nii", "b.nii", "-o", "o.png", "--slices", "3,5"])
    assert overlay.slices == "3,5" or list(overlay.slices) == [3, 5]


FOLDER_VERBS = ("predict", "measure", "leaderboard", "stats", "report")


def _actions(verb):
    return build_parser(verb)._subparsers._group_actions[0].choices[verb]._actions


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "train"])
def test_o_names_a_file_and_out_dir_a_folder_on_every_verb(verb):
    flags = {s: a for a in _actions(verb) for s in a.option_strings}
    if verb in FOLDER_VERBS:
        assert flags["--out-dir"].metavar == "DIR" and flags["-o"].help == argparse.SUPPRESS  # a deprecated alias
    else:
        assert "--out-dir" not in flags
        if "-o" in flags:
            assert flags["-o"].metavar not in ("DIR", "OUT_DIR")


@pytest.mark.parametrize("verb", FOLDER_VERBS)
def test_the_old_o_of_a_folder_verb_still_works_with_a_note(verb, capsys):
    parser, rest = build_parser(verb), ["scan.nii.gz", "--ckpt", "m.ckpt"] if verb == "predict" else []
    old = parser.parse_args([verb, *rest, "-o", "somewhere"]).output
    assert old == parser.parse_args([verb, *rest, "--out-dir", "somewhere"]).output == Path("somewhere")
    assert "--out-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args([verb, *rest, "-o", "a", "--out-dir", "b"])  # one or the other
