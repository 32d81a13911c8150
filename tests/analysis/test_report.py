"""``discnet report``: the expected figures (readable sizes), statistics and leaderboards in one folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from discnet.analysis.report import fmt_p, p_text
from discnet.cli import main
from tests.analysis.test_runs import write_sweep
from tests.analysis.test_stats import disc_table


def agreement_table() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    rows = []
    pairs = [("ann", "ben"), ("ann", "cid"), ("ben", "cid")]
    for s in range(5):
        grades = rng.integers(1, 5, 5)
        for a, b in pairs:
            for level, grade in zip(["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"], grades, strict=True):
                dice = 0.95 - 0.02 * grade + rng.normal(0, 0.01)
                rows.append(
                    {"reader_a": a, "reader_b": b, "subject": f"s{s}", "level": level, "dice": dice, "grade": grade}
                )
            rows.append({"reader_a": a, "reader_b": b, "subject": f"s{s}", "level": "all", "dice": 0.9, "grade": None})
    return pd.DataFrame(rows)


def test_report_writes_figures_statistics_and_leaderboards(tmp_path, capsys):
    means = {"r2-baseline": 0.918, "r2-batchnorm": 0.915, "r2-dropout": 0.916, "r2-dilated": 0.85}
    sweep = write_sweep(
        tmp_path / "sweep", means, orphan_gain=dict(zip(means, [0.005, 0.003, 0.011, 0.006], strict=True))
    )
    epochs = [{"epoch": e, "val/dsc": 0.5, "s1": 0.4 + 0.1 * e, "orphan_removed/s1": 0.5 + 0.1 * e} for e in range(2)]
    pd.DataFrame(epochs).to_csv(sweep / "r2-dropout" / "seed=1" / "val_scores.csv", index=False)
    metrics, agreement = tmp_path / "metrics.csv", tmp_path / "agreement.csv"
    disc_table().to_csv(metrics, index=False)
    agreement_table().to_csv(agreement, index=False)
    out = tmp_path / "report"
    args = [
        "report",
        str(sweep),
        "--out-dir",
        str(out),
        "-n",
        "5",
        "--metrics",
        str(metrics),
        "--agreement",
        str(agreement),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "Final model" in printed
    figures = {
        "dice_by_version.png",
        "dice_by_version_orphan_removed.png",
        "orphan_removal.png",
        "leaderboard.png",
        "leaderboard_orphan_removed.png",
        "discs_by_level_grade.png",
        "agreement.png",
    }
    assert figures <= {p.name for p in out.iterdir()}
    for name in figures:
        height, width = imread(out / name).shape[:2]
        assert 400 <= width <= 2400 and 300 <= height <= 2000, (name, width, height)
    tables = {"stats.md", "lmm.csv", "pairwise.csv", "letters.csv", "kruskal.csv", "leaderboard.csv"}
    assert tables <= {p.name for p in out.iterdir()}
    assert len(pd.read_csv(out / "leaderboard.csv")) == 5
    again = tmp_path / "again"  # runs.csv is the long table: the report can be redone from it alone
    assert main(["report", "--table", str(out / "runs.csv"), "--out-dir", str(again), "-n", "5"]) == 0
    assert (again / "leaderboard.csv").read_text() == (out / "leaderboard.csv").read_text()
    stats = (out / "stats.md").read_text(encoding="utf-8")
    assert "## Model versions: validation Dice (last epoch) by version" in stats and "Final model" in stats
    assert json.loads((out / "final_model.json").read_text())["version"] == "r2-dropout"  # best orphan-removed mean
    per_epoch = pd.read_csv(out / "epochs.csv")
    assert per_epoch[["epoch", "subject", "dsc", "dsc_orphan_removed"]].values.tolist() == [
        [0, "s1", 0.4, 0.5],
        [1, "s1", 0.5, 0.6],
    ]
    assert set(pd.read_csv(out / "runs.csv")["score"]) == {"last"}
    with pytest.raises(SystemExit):
        main(["report", "--table", str(out / "runs.csv"), "--out-dir", str(again), "--score", "worst"])
    assert main(["report", "--table", str(out / "runs.csv"), "--out-dir", str(again), "--score", "best"]) == 2
    analyses = set(pd.read_csv(out / "letters.csv")["analysis"])
    assert analyses == {"versions", "discs", "agreement"}
    assert not list(out.glob(".*tmp*")), "temporary files left behind"


def test_report_runs_only_and_errors(tmp_path, capsys):
    table = tmp_path / "runs.csv"
    rows = [
        f"v{v},{s},s{j},{0.8 + 0.05 * v + 0.01 * s + 0.002 * j}" for v in range(2) for s in range(3) for j in range(3)
    ]
    table.write_text("version,seed,subject,dsc\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main(["report", "--table", str(table), "--out-dir", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"dice_by_version.png", "leaderboard.png", "stats.md"} <= names
    assert not names & {"orphan_removal.png", "agreement.png", "discs_by_level_grade.png", "kruskal.csv"}
    (tmp_path / "file").write_text("")
    assert main(["report", "--table", str(table), "--out-dir", str(tmp_path / "file")]) == 2
    assert main(["report", "--table", str(tmp_path / "none.csv"), "--out-dir", str(out)]) == 2
    assert capsys.readouterr().err.count("error") == 2


def test_p_value_text():
    assert fmt_p(0.05) == "0.050" and fmt_p(2e-5) == "2.0e-05" and fmt_p(0.0) == "< 1e-16"
    assert p_text(0.2) == "p = 0.200" and p_text(1e-20) == "p < 1e-16"


def test_stats_tables_written_for_a_single_version(tmp_path, capsys):
    table = tmp_path / "runs.csv"
    table.write_text("version,seed,subject,dsc\nv1,0,s1,0.9\nv1,0,s2,0.8\nv1,1,s1,0.85\nv1,1,s2,0.82\n")
    assert main(["stats", "--table", str(table), "--out-dir", str(tmp_path / "out")]) == 0
    assert "single level" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "out" / "lmm.csv").empty and pd.read_csv(tmp_path / "out" / "pairwise.csv").empty
    assert pd.read_csv(tmp_path / "out" / "letters.csv")["letters"].tolist() == ["a"]
