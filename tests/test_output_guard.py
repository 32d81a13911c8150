"""Verbs whose output names the code chooses (report, leaderboard) never replace an input they read."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from discnet.errors import InputError
from discnet.io import guard
from discnet.io.atomic import atomic_path
from tests.paths import REPO
from tests.test_bad_input import run_cli

RUNS = REPO / "experiments" / "round2" / "results-cpu" / "runs.csv"


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    monkeypatch.setattr(guard, "_PROTECTED", [])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("verb", ["report", "leaderboard"])
def test_a_table_read_is_never_replaced_by_the_verbs_own_runs_csv(verb, tmp_path, capsys):
    table = tmp_path / "runs.csv"
    shutil.copyfile(RUNS, table)
    before = _sha(table)
    code, err = run_cli(capsys, verb, "--table", table, "--out-dir", tmp_path)
    if verb == "leaderboard":  # writes leaderboard files only: nothing to refuse
        assert code == 0 and _sha(table) == before
        return
    assert code == 2 and "runs.csv" in err and len(err.strip().splitlines()) == 1
    assert _sha(table) == before


def test_atomic_writes_refuse_a_protected_file_through_a_symlink(tmp_path):
    source = tmp_path / "truth.csv"
    source.write_text("a\n1\n", encoding="utf-8")
    (tmp_path / "link.csv").symlink_to(source)
    guard.protect([source])
    with pytest.raises(InputError, match="output path equals"), atomic_path(tmp_path / "link.csv") as tmp:
        tmp.write_text("overwritten", encoding="utf-8")
    assert source.read_text(encoding="utf-8") == "a\n1\n"
