"""Collecting runs (summary.json files or a long CSV) and the leaderboards, library and ``discnet leaderboard``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from discnet.analysis.leaderboard import final_model, leaderboard, version_summary
from discnet.analysis.runs import collect, load_runs, read_table, run_means
from discnet.cli import main
from discnet.errors import InputError

SUBJECTS = ["sub-01", "sub-02", "sub-03", "sub-04"]


def write_summary(folder: Path, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "summary.json"
    path.write_text(json.dumps(fields))
    return path


def write_sweep(
    root: Path, means: dict[str, float], seeds=3, orphan_gain: dict | None = None, round_=2, legacy=False
) -> Path:
    """A fake sweep: ``root/<version>/seed=<s>/summary.json``; Dice = mean + seed and subject offsets at the
    best epoch (9), 0.01 lower at the last (10). ``legacy``: the summary of older runs (best epoch only)."""
    rng = np.random.default_rng(0)
    offsets = dict(zip(SUBJECTS, [-0.02, -0.005, 0.01, 0.015], strict=True))
    for version, mean in means.items():
        for seed in range(seeds):
            run = mean + 0.004 * (seed - 1)
            best = {"epoch": 9, "subjects": {s: run + o + float(rng.normal(0, 0.004)) for s, o in offsets.items()}}
            last = {"epoch": 10, "subjects": {s: d - 0.01 for s, d in best["subjects"].items()}}
            if orphan_gain is not None:
                for block in (best, last):
                    gain = orphan_gain[version] + 0.001 * seed
                    block["subjects_orphan_removed"] = {s: d + gain for s, d in block["subjects"].items()}
            fields = {
                "status": "complete",
                "version": version,
                "round": round_,
                "seed": seed,
                "params": 0.75,
                "input": "stretched",
                "subjects": best["subjects"],
                "subjects_orphan_removed": best.get("subjects_orphan_removed", {}),
                "best_epoch": 9,
                "best_val_dsc": float(np.mean(list(best["subjects"].values()))),
                "last_val_dsc": float(np.mean(list(last["subjects"].values()))),
            }
            if not legacy:
                fields |= {"best": best, "last": last, "train_on_val": False}
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


@pytest.mark.parametrize("score", ["last", "best"])
def test_run_mean_is_the_logged_val_dsc_of_the_scored_epoch(tmp_path, score):
    sweep = write_sweep(tmp_path, {"v": 0.9}, seeds=2)
    long, _ = load_runs([sweep], score)
    assert set(long["score"]) == {score} and set(long["epoch"]) == {10 if score == "last" else 9}
    means = run_means(long).set_index("run")["dsc"]
    for path in sweep.rglob("summary.json"):
        assert math.isclose(means[str(path.parent)], json.loads(path.read_text())[f"{score}_val_dsc"])


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
    assert main(["leaderboard", str(sweep), "--round", "2", "-n", "4", "--out-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Top 4 of 6 runs" in text and "r2-a" in text and "r1-x" not in text
    assert "orphan removal" not in text
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 4 and board["rank"].tolist() == [1, 2, 3, 4]
    assert board.columns.tolist()[:4] == ["rank", "version", "seed", "dsc"]
    assert board["version"].iloc[0] == "r2-a"
    versions = pd.read_csv(out / "leaderboard_versions.csv")
    assert versions["runs"].tolist() == [3, 3]
    names = ["final_model.json", "leaderboard.csv", "leaderboard.png", "leaderboard_versions.csv"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert "(last epoch)" in text and str(sweep / "r2-a" / "seed=2") in text  # each run's folder is shown


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


@pytest.mark.slow  # a real (tiny) training: about 10 s alone, a minute on a busy 2-core machine
def test_summary_records_last_and_best_epoch_and_the_reader_uses_them(tiny_dataset, tmp_path):
    from discnet.training.run import run_training
    from tests.train_helpers import tiny_config

    out = tmp_path / "run"
    summary = run_training(tiny_config(tiny_dataset, out, "trainer.max_epochs=3", "seed=3", "optim.lr=0.01"))
    epochs = pd.read_csv(out / "val_scores.csv")
    last, best = summary["last"], summary["best"]
    assert last["epoch"] == 2 and best["epoch"] == summary["best_epoch"] == int(epochs["val/dsc"].idxmax())
    for block in (last, best):
        row = epochs.loc[epochs["epoch"] == block["epoch"]].iloc[0]
        assert block["dsc"] == pytest.approx(row["val/dsc"]) and block["subjects"] == pytest.approx(
            {s: row[s] for s in block["subjects"]}
        )
        cleaned = block["subjects_orphan_removed"]
        assert cleaned == pytest.approx({s: row[f"orphan_removed/{s}"] for s in cleaned})
        assert block["dsc_orphan_removed"] == pytest.approx(row["val/dsc_orphan_removed"])
    assert summary["subjects"] == best["subjects"] and summary["train_on_val"] is False
    for score in ("last", "best"):
        long, _ = load_runs([out], score)
        assert long["dsc"].mean() == pytest.approx(summary[score]["dsc"])
        assert long["dsc_orphan_removed"].mean() == pytest.approx(summary[score]["dsc_orphan_removed"])


def test_older_summaries_last_epoch_from_val_scores_or_refused(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "old", {"v": 0.9}, seeds=2, legacy=True)
    with pytest.raises(InputError, match="no last-epoch Dice per subject .and 1 other run.*--score best"):
        load_runs([sweep], "last")
    assert main(["leaderboard", str(sweep)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--score best" in err
    best, _ = load_runs([sweep], "best")
    assert set(best["epoch"]) == {9} and set(best["score"]) == {"best"}
    folder = sweep / "v" / "seed=0"
    subjects = json.loads((folder / "summary.json").read_text())["subjects"]
    rows = [{"epoch": e, "val/dsc": 0.5, **{s: 0.5 + 0.1 * e for s in subjects}} for e in range(3)]
    pd.DataFrame(rows).to_csv(folder / "val_scores.csv", index=False)
    pd.DataFrame(rows).to_csv(sweep / "v" / "seed=1" / "val_scores.csv", index=False)
    last, notes = load_runs([sweep], "last")
    assert set(last["epoch"]) == {2} and last["dsc"].tolist() == pytest.approx([0.7] * len(last))
    assert last["dsc_orphan_removed"].isna().all() and not notes


def write_config(folder: Path, seed: int, dropout: float = 0.2, image_size: int = 64, train_on_val=False) -> None:
    config = {
        "version": "v",
        "seed": seed,
        "image_size": image_size,
        "model": {"net": {"dropout": dropout}},
        "data": {"seed": seed, "train_on_val": train_on_val, "cache_dir": f"/cache/{seed}"},
        "paths": {"output_dir": str(folder)},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))


def test_runs_are_pooled_only_when_their_configs_differ_in_the_seed_alone(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "s", {"v": 0.9, "w": 0.8}, seeds=3)
    for seed in range(3):
        write_config(sweep / "v" / f"seed={seed}", seed)  # paths and seeds differ: one version
    long, notes = load_runs([sweep])
    assert set(long["version"]) == {"v", "w"} and not notes
    write_config(sweep / "v" / "seed=2", 2, dropout=0.5)  # a dropout override: another version
    long, notes = load_runs([sweep])
    versions = long.drop_duplicates("run").groupby("version")["seed"].apply(sorted).to_dict()
    assert versions == {"v [model.net.dropout=0.2]": [0, 1], "v [model.net.dropout=0.5]": [2], "w": [0, 1, 2]}
    assert any("version v: its runs differ in model.net.dropout" in n for n in notes)
    write_config(sweep / "v" / "seed=1", 1, train_on_val=True)  # a training fit: left out
    long, notes = load_runs([sweep])
    assert long["run"].nunique() == 5 and any("left out: trained on its validation subjects" in n for n in notes)
    assert main(["leaderboard", str(sweep)]) == 0
    assert "note:" in capsys.readouterr().out


def test_final_model_is_the_best_versions_best_run_not_the_top_run(tmp_path, capsys):
    sweep = write_sweep(tmp_path, {"steady": 0.90, "noisy": 0.85}, seeds=3, orphan_gain={"steady": 0.0, "noisy": 0.0})
    lucky = json.loads((sweep / "noisy" / "seed=0" / "summary.json").read_text())
    lucky["last"]["subjects_orphan_removed"] = dict.fromkeys(SUBJECTS, 0.95)
    (sweep / "noisy" / "seed=0" / "summary.json").write_text(json.dumps(lucky))
    long, _ = load_runs([sweep])
    assert leaderboard(long, 1, "dsc_orphan_removed")["version"].item() == "noisy"  # the top single run
    choice = final_model(long)
    assert choice["version"] == "steady" and choice["seed"] == 2 and choice["response"] == "dsc_orphan_removed"
    assert choice["checkpoint"].endswith(str(Path("steady", "seed=2", "checkpoints", "last.ckpt")))
    assert "Final model" in choice["text"] and "last epoch" in choice["text"]
    out = tmp_path / "lb"
    assert main(["leaderboard", str(sweep), "--out-dir", str(out)]) == 0
    assert "Final model" in capsys.readouterr().out
    assert json.loads((out / "final_model.json").read_text())["run"] == choice["run"]
    best = final_model(load_runs([sweep], "best")[0])
    assert best["checkpoint"].endswith("best.ckpt") and "best epoch" in best["text"]
