"""Volume agreement: ICC against Shrout & Fleiss (1979) Table 2 and pingouin's documented example, Bland-Altman,
errors and within-subject CV by hand, table reading and pairing, and ``discnet agreement --volumes``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from discnet.cli import main
from discnet.errors import InputError
from discnet.evaluation.volume_agreement import (
    STATS,
    agreement_stats,
    icc,
    paired_volumes,
    read_volume_table,
    session_pairs,
    within_subject_cv,
)

#: Shrout & Fleiss 1979, Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])


def test_icc_reproduces_shrout_and_fleiss_table_2():
    result = icc(SHROUT_FLEISS)
    assert round(result["icc21"], 2) == 0.29 and round(result["icc31"], 2) == 0.71
    assert result["icc21_low"] < result["icc21"] < result["icc21_high"]


def test_icc_reproduces_pingouins_documented_wine_example():
    pingouin = pytest.importorskip("pingouin")
    data = pingouin.read_dataset("icc")  # 8 wines x 4 judges; documented ICC(A,1) 0.728, ICC(C,1) 0.729
    values = data.pivot(index="Wine", columns="Judge", values="Scores").to_numpy()
    result = icc(values)
    assert result["icc21"] == pytest.approx(0.728, abs=5e-4) and result["icc31"] == pytest.approx(0.729, abs=5e-4)
    assert (result["icc21_low"], result["icc21_high"]) == (0.43, 0.93)


@pytest.mark.parametrize("values", [np.ones((5, 2)), np.arange(4.0).reshape(2, 2)], ids=["constant", "two-targets"])
def test_icc_is_nan_without_variation_or_targets(values):
    assert all(np.isnan(v) for v in icc(values).values())


def test_bland_altman_errors_and_wcv_by_hand():
    pairs = pd.DataFrame({"level": "L4-L5", "a": [10.0, 22.0, 27.0, 41.0], "b": [12.0, 20.0, 30.0, 40.0]})
    row = agreement_stats(pairs).set_index("level").loc["L4-L5"]
    diff = np.array([-2.0, 2.0, -3.0, 1.0])
    assert row["n"] == 4 and row["bias_mm3"] == pytest.approx(-0.5)
    assert row["sd_diff_mm3"] == pytest.approx(diff.std(ddof=1))
    assert row["loa_low_mm3"] == pytest.approx(-0.5 - 1.96 * diff.std(ddof=1))
    assert row["loa_high_mm3"] == pytest.approx(-0.5 + 1.96 * diff.std(ddof=1))
    assert row["mae_mm3"] == pytest.approx(2.0)
    assert row["mean_relative_error"] == pytest.approx(np.mean([2 / 12, 2 / 20, 3 / 30, 1 / 40]))
    sd_over_mean = np.abs(diff) / np.sqrt(2) / np.array([11.0, 21.0, 28.5, 40.5])
    assert row["wcv"] == pytest.approx(np.sqrt(np.mean(sd_over_mean**2)))


def test_within_subject_cv_of_three_sessions():
    values = np.array([[9.0, 10.0, 11.0], [20.0, 20.0, 20.0]])
    assert within_subject_cv(values) == pytest.approx(np.sqrt((0.1**2 + 0.0) / 2))


def test_stats_have_all_and_levels_superior_to_inferior():
    pairs = pd.DataFrame({"level": ["L5-S1", "L1-L2", "L5-S1"], "a": [1.0, 2.0, 3.0], "b": [1.5, 2.0, 2.0]})
    stats = agreement_stats(pairs)
    assert stats["level"].tolist() == ["all", "L1-L2", "L5-S1"] and stats.columns.tolist() == ["level", *STATS]
    assert stats["n"].tolist() == [3, 1, 2]


def test_tables_long_wide_sessions_and_names(tmp_path):
    long = tmp_path / "pred.csv"
    rows = {"subject": ["sub11_T2w", "sub11_T2w"], "level": ["L4-L5", "L5-S1"], "volume_mm3": [6000.0, 5000.0]}
    pd.DataFrame(rows).to_csv(long, index=False)
    wide = tmp_path / "manual.csv"
    pd.DataFrame({"subject": ["sub11"], "file": ["x"], "L5-S1": [5.5], "L4-L5": [6.5]}).to_csv(wide, index=False)
    pairs = paired_volumes(read_volume_table(long), read_volume_table(wide))
    assert pairs.sort_values("level")[["subject", "session", "level", "a", "b"]].values.tolist() == [
        ["sub11", 1, "L4-L5", 6000.0, 6500.0],
        ["sub11", 1, "L5-S1", 5000.0, 5500.0],
    ]
    sessions = pd.DataFrame(
        {"subject": ["a"] * 3, "level": "L5-S1", "session": [2, 3, 1], "volume_mm3": [2.0, 3.0, 1.0]}
    )
    assert session_pairs(sessions)[["session", "a", "b"]].values.tolist() == [[1, 1.0, 2.0]]
    twice = tmp_path / "twice.csv"
    pd.DataFrame({"subject": ["a", "a"], "level": "L5-S1", "volume_mm3": [1.0, 2.0]}).to_csv(twice, index=False)
    with pytest.raises(InputError, match="twice"):
        read_volume_table(twice)


def _write_tables(tmp_path, n=6):
    rng = np.random.default_rng(0)
    truth = rng.uniform(4000, 9000, size=(n, 5))
    subjects = [f"s{i}" for i in range(n)]
    levels = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    manual = pd.DataFrame(truth / 1000.0, columns=levels).assign(subject=subjects)
    pred = pd.DataFrame(
        [(s, lv, truth[i, j] * 1.05 + 100) for i, s in enumerate(subjects) for j, lv in enumerate(levels)],
        columns=["subject", "level", "volume_mm3"],
    )
    manual.to_csv(tmp_path / "manual.csv", index=False)
    pred.to_csv(tmp_path / "pred.csv", index=False)
    return tmp_path / "pred.csv", tmp_path / "manual.csv", truth


def test_cli_prints_and_writes_stats_and_bland_altman(tmp_path, capsys):
    pred, manual, truth = _write_tables(tmp_path)
    out = tmp_path / "agreement.csv"
    assert main(["agreement", "--volumes", str(pred), str(manual), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ICC(2,1)" in text and "30 disc pair(s)" in text
    stats = pd.read_csv(out).set_index("level")
    assert stats.loc["all", "bias_mm3"] == pytest.approx((truth * 0.05 + 100).mean())
    assert stats.loc["all", "icc31"] > stats.loc["all", "icc21"]  # a systematic bias hurts absolute agreement
    png = tmp_path / "agreement_bland_altman.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_sessions_of_one_table(tmp_path, capsys):
    rows = [
        (s, lv, ses, 5000.0 + 100 * i + 10 * ses) for i, s in enumerate("abcd") for lv in ("L4-L5",) for ses in (1, 2)
    ]
    table = tmp_path / "sessions.csv"
    pd.DataFrame(rows, columns=["subject", "level", "session", "volume_mm3"]).to_csv(table, index=False)
    assert main(["agreement", "--volumes", str(table)]) == 0
    assert "session 1 - session 2, 4 disc pair(s)" in capsys.readouterr().out


def test_cli_refuses_tables_without_common_discs(tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame({"subject": ["x"], "level": ["L5-S1"], "volume_mm3": [1.0]}).to_csv(a, index=False)
    pd.DataFrame({"subject": ["y"], "level": ["L5-S1"], "volume_mm3": [1.0]}).to_csv(b, index=False)
    assert main(["agreement", "--volumes", str(a), str(b), "-o", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "a.csv" in err and not (tmp_path / "o.csv").exists()


def test_measured_ivd_volumes_agree_with_the_published_table(shared_dir, tmp_path, capsys):
    data = shared_dir / "data" / "ivd-volumes"
    measured = tmp_path / "measured.csv"
    assert main(["volumes", str(data), "--levels", str(data / "levels.csv"), "-o", str(measured)]) == 0
    out = tmp_path / "stats.csv"
    assert main(["agreement", "--volumes", str(measured), str(data / "reference_volumes_cm3.csv"), "-o", str(out)]) == 0
    stats = pd.read_csv(out).set_index("level")
    assert stats.loc["all", "n"] == 50 and stats.loc["all", "icc21"] > 0.9999
    assert abs(stats.loc["all", "bias_mm3"]) < 1e-3 and stats.loc["all", "mean_relative_error"] < 1e-6
