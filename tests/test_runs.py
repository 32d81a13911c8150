"""Collecting runs (summary.json files or a long CSV) and the leaderboards, library and ``discnet leaderboard``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from discnet.cli import main
from discnet.errors import InputError
from discnet.runs import collect, leaderboard, load_runs, read_table, run_means, version_summary

SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-04"]


def write_summary(folder: Path, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    path.write_text(json.dumps(fields))
    return path


def write_sweep(root: Path, means: dict[str, float], seeds=3, orphan_gain: dict | None = None, round_=2) -> Path:
    """A fake sweep: ``root/<version>/seed=<s>/summary.json``; Dice = mean + seed and subject offsets."""
    rng = np.random.default_rng(0)
    offsets = dict(zip(SUBJECTS, [-0.02, -0.005, 0.01, 0.015], strict=True))
    for version, mean in means.items():
        for seed in range(seeds):
            run = mean + 0.004 * (seed - 1)
            subjects = {s: run + o + float(rng.normal(0, 0.004)) for s, o in offsets.items()}
            fields = {
                "status": "complete",
                "version": version,
                "round": round_,
                "seed": seed,
                "params": 0.75,
                "input": "stretched",
                "subjects": subjects,
                "best_val_dsc": sum(subjects.values()) / len(subjects),
            }
            if orphan_gain is not None:
                gain = orphan_gain[version]
                fields["subjects_orphan_removed"] = {s: d + gain + 0.001 * seed for s, d in subjects.items()}
            write_summary(root / version / f"seed={seed}", **fields)
    return root


def test_load_runs_keeps_complete_runs_and_notes_the_others(tmp_path):
    sweep = write_sweep(tmp_path / "multirun", {"r2-a": 0.9, "r2-b": 0.8}, seeds=2)
    write_summary(sweep / "r2-a" / "seed=9", status="failed", version="r2-a", seed=9, error="ValueError: boom")
    write_summary(sweep / "r2-a" / "seed=8", status="complete", version="r2-a", seed=8, subjects={})
    (sweep / "r2-b" / "seed=7").mkdir()
    (sweep / "r2-b" / "seed=7" / "summary.json").write_text("{not json")
    long, notes = load_runs([sweep, sweep / "r2-a"])  # nested folders: each run once
    assert len(long) == 2 * 2 * len(SUBJECTS)
    assert long["run"].nunique() == 4
    assert set(long.columns) >= {"version", "round", "params", "input", "seed", "subject", "dsc", "run"}
    assert long["dsc_orphan_removed"].isna().all()
    assert len(notes) == 3
    assert any("status 'failed' (ValueError: boom)" in n for n in notes)
    assert any("no validation Dice per subject" in n for n in notes)


def test_run_mean_is_the_logged_best_val_dsc(tmp_path):
    sweep = write_sweep(tmp_path, {"v": 0.9}, seeds=2)
    long, _ = load_runs([sweep])
    means = run_means(long).set_index("run")["dsc"]
    for path in sweep.rglob("summary.json"):
        assert math.isclose(means[str(path.parent)], json.loads(path.read_text())["best_val_dsc"])


def test_orphan_removed_column_when_present(tmp_path):
    sweep = write_sweep(tmp_path, {"a": 0.9, "b": 0.9}, seeds=3, orphan_gain={"a": 0.01, "b": 0.002})
    long, notes = load_runs([sweep])
    assert not notes and long["dsc_orphan_removed"].notna().all()
    summary = version_summary(long, "dsc_orphan_removed").set_index("version")
    assert summary.loc["a", "gain_mean"] == pytest.approx(0.011)
    assert summary.loc["a", "gain_sd"] == pytest.approx(0.001)
    assert summary.loc["b", "gain_mean"] == pytest.approx(0.003)


def test_read_table_and_errors(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("version,seed,subject,dsc,params\nv1,0,s1,0.9,0.5\nv1,0,s2,0.8,0.5\nv2,1,s1,0.7,1.0\n")
    table = read_table(path)
    assert table["run"].tolist() == ["v1/seed=0", "v1/seed=0", "v2/seed=1"]
    assert table["params"].tolist() == [0.5, 0.5, 1.0] and table["dsc_orphan_removed"].isna().all()
    bad = tmp_path / "bad.csv"
    bad.write_text("version,subject,dsc\nv1,s1,0.9\n")
    with pytest.raises(InputError, match="no column"):
        read_table(bad)
    bad.write_text("version,seed,subject,dsc\nv1,0,s1,0.9\nv1,0,s1,0.8\n")
    with pytest.raises(InputError, match="twice"):
        read_table(bad)
    bad.write_text("version,seed,subject,dsc\nv1,0,s1,high\n")
    with pytest.raises(InputError, match="non-numbers"):
        read_table(bad)
    with pytest.raises(InputError, match="no runs given"):
        collect([], None)
    with pytest.raises(InputError, match="no complete run"):
        collect([tmp_path], None)


def test_leaderboard_and_version_summary():
    long = pd.DataFrame(
        {
            "version": ["a"] * 4 + ["b"] * 4,
            "seed": [0, 0, 1, 1] * 2,
            "subject": ["s1", "s2"] * 4,
            "dsc": [0.90, 0.92, 0.80, 0.82, 0.95, 0.93, 0.70, 0.72],
        }
    )
    board = leaderboard(long, 3)
    assert board[["version", "seed"]].values.tolist() == [["b", 0], ["a", 0], ["a", 1]]
    assert board["dsc"].round(3).tolist() == [0.94, 0.91, 0.81]
    assert board["rank"].tolist() == [1, 2, 3] and (board["n_subjects"] == 2).all()
    summary = version_summary(long).set_index("version")
    assert summary.loc["a", "mean"] == pytest.approx(0.86)
    assert summary.loc["a", "sd"] == pytest.approx(np.std([0.91, 0.81], ddof=1))
    assert summary.loc["b", "best_seed"] == 0 and summary.loc["b", "runs"] == 2


def test_leaderboard_cli(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "sweep", {"r2-a": 0.92, "r2-b": 0.90})
    write_sweep(tmp_path / "sweep", {"r1-x": 0.5}, round_=1)
    out = tmp_path / "lb"
    assert main(["leaderboard", str(sweep), "--round", "2", "-n", "4", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Top 4 of 6 runs" in text and "r2-a" in text and "r1-x" not in text
    assert "orphan removal" not in text
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 4 and board["rank"].tolist() == [1, 2, 3, 4]
    assert board.columns.tolist()[:4] == ["rank", "version", "seed", "dsc"]
    assert board["version"].iloc[0] == "r2-a"
    versions = pd.read_csv(out / "leaderboard_versions.csv")
    assert versions["runs"].tolist() == [3, 3]
    assert sorted(p.name for p in out.iterdir()) == ["leaderboard.csv", "leaderboard.png", "leaderboard_versions.csv"]


def test_leaderboard_cli_orphan_removed(tmp_path, capsys):
    sweep = write_sweep(tmp_path, {"r2-a": 0.92, "r2-b": 0.90}, orphan_gain={"r2-a": 0.0, "r2-b": 0.03})
    assert main(["leaderboard", str(sweep), "-n", "2"]) == 0
    text = capsys.readouterr().out
    orphan = text[text.index("with orphan removal") :]
    assert orphan.index("r2-b") < orphan.index("r2-a")
    assert "gain from orphan removal" in text and "+0.031" in text


def test_leaderboard_cli_table_and_errors(tmp_path, capsys):
    table = tmp_path / "runs.csv"
    table.write_text("version,seed,subject,dsc\nv1,0,s1,0.9\nv1,0,s2,0.8\nv2,0,s1,0.95\nv2,0,s2,0.9\n")
    assert main(["leaderboard", "--table", str(table)]) == 0
    assert "v2" in capsys.readouterr().out
    assert main(["leaderboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("discnet leaderboard: error:") and len(err.strip().splitlines()) == 1
    assert main(["leaderboard", "--table", str(table), "-n", "0"]) == 2
    assert main(["leaderboard", "--table", str(table), "--round", "1"]) == 2
    assert main(["leaderboard", str(tmp_path / "missing")]) == 2
