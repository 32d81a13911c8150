"""Semi-random split (paper section 2.3), its Table-1 summary, and the ``discnet split`` verb."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from discnet.cli import main
from discnet.data.manifest import load_manifest, load_manifest_and_style, save_manifest
from discnet.data.split import format_split_summary, semi_random_split, split_distance, split_summary
from discnet.errors import InputError
from discnet.spine import LEVELS

GRADE_COLUMNS = [f"grade_{level}" for level in LEVELS]


def _cohort(n=35, sessions=4, seed=7):
    """Subjects whose grades rise with age and towards L5-S1; a few older ones have a grade V disc."""
    rng = np.random.default_rng(seed)
    ages = rng.uniform(23, 83, n).round()
    rows = []
    for i, age in enumerate(ages):
        grades = np.clip(np.round(1 + (age - 23) / 18 + np.linspace(-0.5, 0.7, 5) + rng.normal(0, 0.5, 5)), 1, 5)
        for session in range(1, sessions + 1):
            rows.append({"subject": f"s{i:02d}", "image": f"s{i:02d}_{session}.nii.gz", "session": session, "age": age})
            rows[-1].update(dict(zip(GRADE_COLUMNS, grades.astype(int), strict=True)))
    df = pd.DataFrame(rows)
    for column in GRADE_COLUMNS:
        df[column] = df[column].astype("Int64")
    return df


def _grade_v(df):
    return set(df.loc[(df[GRADE_COLUMNS] == 5).any(axis=1), "subject"])


def test_sessions_together_grade_v_in_training():
    df = _cohort()
    out = semi_random_split(df, 8, seed=0)
    assert df.columns.tolist() + ["split"] == out.columns.tolist() and "split" not in df.columns
    per_subject = out.groupby("subject")["split"].nunique()
    assert (per_subject == 1).all()
    splits = out.groupby("subject")["split"].first()
    assert (splits == "val").sum() == 8 and (splits == "train").sum() == 27
    assert _grade_v(df) and all(splits[s] == "train" for s in _grade_v(df))


def test_deterministic_per_seed_and_different_for_another_seed():
    df = _cohort()

    def val(seed):
        return set(semi_random_split(df, 8, seed=seed).query("split == 'val'")["subject"])

    assert val(0) == val(0)
    assert val(0) != val(1)


def test_balances_better_than_naive_random_split():
    df = _cohort()
    eligible = sorted(set(df["subject"]) - _grade_v(df))

    def naive(seed):
        chosen = set(np.random.default_rng(seed).choice(eligible, 8, replace=False))
        return df.assign(split=np.where(df["subject"].isin(chosen), "val", "train"))

    naive_grade = [split_distance(naive(s), age_weight=0) for s in range(50)]
    naive_cost = [split_distance(naive(s)) for s in range(50)]
    split = semi_random_split(df, 8, seed=0)
    assert split_distance(split) < np.percentile(naive_cost, 5)
    assert split_distance(split, age_weight=0) < np.percentile(naive_grade, 10)


def test_small_pool_searched_exhaustively_and_test_subjects_kept():
    df = _cohort(n=9, sessions=1, seed=3).assign(split="")
    df.loc[0, "split"] = "test"
    out = semi_random_split(df, 2, seed=5)
    assert out.loc[0, "split"] == "test" and (out["split"] == "val").sum() == 2
    pool = [s for s in df["subject"][1:] if s not in _grade_v(df)]
    costs = [
        split_distance(df.assign(split=np.where(df["subject"].isin(c), "val", df["split"].replace("", "train"))))
        for c in itertools.combinations(pool, 2)
    ]
    assert split_distance(out) == pytest.approx(min(costs))


def test_too_many_validation_subjects_is_an_input_error():
    df = _cohort(n=10, sessions=2)
    n_eligible = 10 - len(_grade_v(df))
    with pytest.raises(InputError, match=f"--val {n_eligible + 1} is more than the {n_eligible} subjects eligible"):
        semi_random_split(df, n_eligible + 1)
    with pytest.raises(InputError, match="at least one"):
        semi_random_split(df, 0)
    young = df.assign(**{c: 1 for c in GRADE_COLUMNS})
    with pytest.raises(InputError, match="no subject for training"):
        semi_random_split(young, 10)


def _table1_cohort():
    """35 subjects whose discs add up to the paper's Table 1 (training and validation sets)."""
    rows = {
        ("train", 40): [23, 45, 7, 10, 0],
        ("train", 70): [0, 3, 18, 24, 5],
        ("val", 40): [8, 7, 2, 3, 0],
        ("val", 70): [0, 2, 8, 10, 0],
    }
    subjects = []
    for (split, age), counts in rows.items():
        grades = np.repeat(np.arange(1, 6), counts)
        for chunk in grades.reshape(-1, 5):
            subjects.append(
                {"subject": f"s{len(subjects):02d}", "age": age, "split": split}
                | dict(zip(GRADE_COLUMNS, chunk, strict=True))
            )
    return pd.DataFrame(subjects)


def test_summary_reproduces_table_1():
    summary = split_summary(_table1_cohort())
    assert summary.columns.tolist() == ["subjects", "discs", "I", "II", "III", "IV", "V"]
    assert summary.loc[("Training set", "Young")].tolist() == [17, 85, 23, 45, 7, 10, 0]
    assert summary.loc[("Training set", "Older")].tolist() == [10, 50, 0, 3, 18, 24, 5]
    assert summary.loc[("Training set", "All")].tolist() == [27, 135, 23, 48, 25, 34, 5]
    assert summary.loc[("Validation set", "All")].tolist() == [8, 40, 8, 9, 10, 13, 0]
    text = format_split_summary(summary)
    assert all(cell in text for cell in ["23 (27)", "45 (53)", "25 (19)", "5 (4)", "13 (33)"])
    assert text.splitlines()[1].startswith("Training set")


def test_summary_counts_first_session_unknown_grades_and_ages():
    df = pd.DataFrame(
        {
            "subject": ["a", "a", "b", "c"],
            "session": [1, 2, 1, 1],
            "age": [30.0, 30.0, 65.0, np.nan],
            "split": ["train", "train", "train", "val"],
            "grade_L4-L5": pd.array([2, 2, 5, None], dtype="Int64"),
            "grade_L5-S1": pd.array([3, 3, 4, 1], dtype="Int64"),
        }
    )
    summary = split_summary(df)
    assert summary.columns.tolist() == ["subjects", "discs", "I", "II", "III", "IV", "V", "unknown"]
    assert summary.loc[("Training set", "All")].tolist() == [2, 10, 0, 1, 1, 1, 1, 6]
    assert summary.loc[("Training set", "Young")].tolist() == [1, 5, 0, 1, 1, 0, 0, 3]
    assert summary.loc[("Validation set", "Unknown age")].tolist() == [1, 5, 1, 0, 0, 0, 0, 4]
    assert summary.loc[("Validation set", "Older")].tolist() == [0, 0, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="no 'split' column"):
        split_summary(df.drop(columns="split"))


def _write_cohort(folder, n=12):
    df = _cohort(n=n, sessions=2)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "subjects.csv"
    df.to_csv(path, index=False)
    return path


def test_cli_writes_split_in_place(tmp_path, capsys):
    path = _write_cohort(tmp_path / "study")
    assert main(["split", str(path), "--val", "3", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "Training set" in out and "Validation set" in out and str(path) in out
    df = load_manifest(path, require_labels=False, check_files=False)
    assert df.groupby("subject")["split"].first().value_counts().to_dict() == {"train": 9, "val": 3}
    assert df["image"].iloc[0] == str(tmp_path / "study" / "s00_1.nii.gz")
    assert not list((tmp_path / "study").glob(".*"))


def test_cli_output_file_leaves_input_untouched(tmp_path, capsys):
    path = _write_cohort(tmp_path / "study")
    before = path.read_bytes()
    out = tmp_path / "splits" / "seed1.csv"
    assert main(["split", str(path), "--val", "3", "--seed", "1", "-o", str(out)]) == 0
    assert path.read_bytes() == before
    df = load_manifest(out, require_labels=False, check_files=False)
    assert (df["split"] == "val").sum() == 3 * 2
    assert df["image"].iloc[0] == str(tmp_path / "study" / "s00_1.nii.gz")
    assert "../study/s00_1.nii.gz" in out.read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--val", "40"], "--val 40 is more than"), (["--val", "2", "--candidates", "0"], "--candidates 0")],
)
def test_cli_bad_input_exit_2_one_line(tmp_path, capsys, extra, message):
    path = _write_cohort(tmp_path)
    before = path.read_bytes()
    assert main(["split", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("discnet split: error:") and message in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before


def test_cli_bad_manifest_exit_2(tmp_path, capsys):
    path = tmp_path / "subjects.csv"
    path.write_text("subject,image,grade_L4-L5\na,a.nii,VII\n")
    assert main(["split", str(path), "--val", "1"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "row 1 (subject 'a')" in err and len(err.strip().splitlines()) == 1
    assert main(["split", str(tmp_path / "missing.csv"), "--val", "1"]) == 2
    assert "manifest not found" in capsys.readouterr().err


def test_save_after_split_round_trips(tmp_path):
    path = _write_cohort(tmp_path)
    df, style = load_manifest_and_style(path, require_labels=False, check_files=False)
    save_manifest(semi_random_split(df, 2, seed=0), path, style)
    assert load_manifest(path, require_labels=False, check_files=False)["split"].notna().all()
