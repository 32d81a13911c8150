"""The paper's semi-random train/validation split (section 2.3) and its Table-1-style summary.

Per subject (all sessions of a subject share one split): every subject with a grade V disc goes to
training; among the others, many random candidate validation sets of ``n_val`` subjects are drawn with
the seed (or all of them when there are few) and the one whose discs' grade distribution is closest to
the training discs' is kept. Closeness is the total variation distance between per-grade proportions
over I, II, III, IV and "unknown" (discs without a grade count as their own category; grade V is left
out because validation holds none by design), plus ``age_weight`` times the total variation distance
between the proportions of young (<60), older (>=60) and unknown-age subjects. Subjects already marked
``test`` stay test and take no part. Grades come from each subject's first session (see
:func:`~discnet.data.manifest.discs_table`).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"subject": list("abcd"), "session": 1, "age": [30.0, 70, 40, 65],
    ...                    "grade_L4-L5": pd.array([1, 3, 2, 5], dtype="Int64")})
    >>> semi_random_split(df, 1, seed=0)["split"].tolist().count("val")
    1
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.data.manifest import GRADES, discs_table
from discnet.errors import InputError

#: Categories compared between validation and training discs (grade V discs never go to validation).
BALANCE = (*GRADES[:4], "unknown")
#: Age groups of the paper's Table 1 (years).
OLDER_FROM = 60
_SETS = (("train", "Training set"), ("val", "Validation set"), ("test", "Test set"), (None, "Unassigned"))
_CHUNK = 1_000_000


def _subjects(df: pd.DataFrame) -> pd.DataFrame:
    """Per subject: disc counts per grade I-V and unknown, and one-hot age group (young, older, unknown)."""
    discs = discs_table(df)
    subjects = pd.unique(discs["subject"])
    rows = pd.Categorical(discs["subject"], categories=subjects).codes
    grades = discs["grade"].astype("float").fillna(0).to_numpy(dtype=int)
    counts = np.zeros((len(subjects), len(GRADES) + 1), dtype=int)
    np.add.at(counts, (rows, grades), 1)
    table = pd.DataFrame(counts, index=subjects, columns=["unknown", *GRADES])
    ages = discs.groupby("subject", sort=False)["age"].first().reindex(subjects)
    table["young"] = (ages < OLDER_FROM).astype(int).to_numpy()
    table["older"] = (ages >= OLDER_FROM).astype(int).to_numpy()
    table["unknown_age"] = ages.isna().astype(int).to_numpy()
    return table


def _tv(val: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Total variation distance between the proportions of count rows ``val`` and ``train``."""
    p = val / np.maximum(val.sum(axis=-1, keepdims=True), 1)
    q = train / np.maximum(train.sum(axis=-1, keepdims=True), 1)
    return 0.5 * np.abs(p - q).sum(axis=-1)


def _cost(val: np.ndarray, train: np.ndarray, age_weight: float) -> np.ndarray:
    grades, ages = slice(0, len(BALANCE)), slice(len(BALANCE), None)
    return _tv(val[..., grades], train[..., grades]) + age_weight * _tv(val[..., ages], train[..., ages])


def _matrix(counts: pd.DataFrame) -> np.ndarray:
    return counts[[*BALANCE, "young", "older", "unknown_age"]].to_numpy(dtype=float)


def split_distance(df: pd.DataFrame, age_weight: float = 0.25) -> float:
    """The balance cost of the ``split`` column of ``df`` (0 = identical distributions; lower is better).

    Example:
        >>> df = pd.DataFrame({"subject": ["a", "b"], "split": ["train", "val"], "grade_L1-L2": [1, 1]})
        >>> split_distance(df)
        0.0
    """
    counts = _subjects(df)
    split = df.groupby("subject", sort=False)["split"].first().reindex(counts.index)
    matrix = _matrix(counts)
    val, train = matrix[(split == "val").to_numpy()].sum(0), matrix[(split == "train").to_numpy()].sum(0)
    return float(_cost(val, train, age_weight))


def _candidates(n_pool: int, n_val: int, count: int, rng: np.random.Generator):
    """Chunks of candidate validation sets (rows of pool indices): all of them in random order when there
    are at most ``count``, else ``count`` random draws."""
    if math.comb(n_pool, n_val) <= count:
        combos = np.array(list(itertools.combinations(range(n_pool), n_val)), dtype=np.int64).reshape(-1, n_val)
        yield combos[rng.permutation(len(combos))]
        return
    per_chunk = max(1, _CHUNK // n_pool)
    for start in range(0, count, per_chunk):
        keys = rng.random((min(per_chunk, count - start), n_pool))
        yield np.argsort(keys, axis=1)[:, :n_val]


def semi_random_split(
    df: pd.DataFrame,
    n_val: int,
    seed: int = 0,
    candidates: int = 10_000,
    age_weight: float = 0.25,
    where: str | Path | None = None,
) -> pd.DataFrame:
    """Copy of ``df`` with a ``split`` column: ``n_val`` validation subjects balanced as described above.

    Args:
        df: a manifest (see :func:`~discnet.data.manifest.load_manifest`).
        n_val: number of validation subjects.
        seed: random seed; the same seed gives the same split.
        candidates: number of random candidate validation sets scored.
        age_weight: weight of the age-group balance relative to the grade balance.
        where: the manifest file, named in error messages.
    """
    counts = _subjects(df)
    split = df.groupby("subject", sort=False)["split"].first() if "split" in df.columns else None
    test = split.reindex(counts.index).eq("test").to_numpy() if split is not None else np.zeros(len(counts), bool)
    pool = counts[~test]
    eligible = (pool["V"] == 0).to_numpy()
    n_eligible, n_grade_v = int(eligible.sum()), int((~eligible).sum())
    if n_val < 1:
        raise InputError(where, f"--val {n_val}: the validation set needs at least one subject", "give --val 1 or more")
    if n_val > n_eligible:
        raise InputError(
            where,
            f"--val {n_val} is more than the {n_eligible} subjects eligible for validation "
            f"({n_grade_v} of {len(pool)} non-test subjects have a grade V disc and stay in training)",
            f"give --val {n_eligible} or fewer",
        )
    if n_val == len(pool):
        raise InputError(where, f"--val {n_val} leaves no subject for training", f"give --val {len(pool) - 1} or fewer")
    matrix = _matrix(pool)
    eligible_rows, total = matrix[eligible], matrix.sum(0)
    rng = np.random.default_rng(seed)
    best, best_cost = None, np.inf
    for chunk in _candidates(n_eligible, n_val, candidates, rng):
        val = eligible_rows[chunk].sum(axis=1)
        costs = _cost(val, total - val, age_weight)
        i = int(np.argmin(costs))
        if costs[i] < best_cost:
            best, best_cost = chunk[i], costs[i]
    chosen = set(pool.index[eligible][best])
    assigned = {
        s: "test" if t else ("val" if s in chosen else "train") for s, t in zip(counts.index, test, strict=True)
    }
    out = df.copy()
    out["split"] = out["subject"].map(assigned).astype(object)
    return out


def split_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1 of the paper: subjects, discs and discs per grade, by split and age group.

    Discs are the five levels of each subject's first session. Rows are indexed by (set, age group) with
    age groups ``Young`` (<60), ``Older`` (>=60), ``Unknown age`` (only when some age is missing) and
    ``All``; an ``unknown`` grade column appears only when some grade is missing.

    Example:
        >>> df = pd.DataFrame({"subject": ["a", "b"], "age": [30.0, 70.0], "split": ["train", "val"],
        ...                    "grade_L1-L2": [1, 4]})
        >>> split_summary(df).loc[("Validation set", "Older"), ["subjects", "discs", "IV"]].tolist()
        [1, 5, 1]
    """
    if "split" not in df.columns:
        raise ValueError("the manifest has no 'split' column")
    discs = discs_table(df)
    grade_names = np.array(["unknown", *GRADES])
    discs["grade_name"] = grade_names[discs["grade"].astype("float").fillna(0).astype(int)]
    columns = [*GRADES, "unknown"] if discs["grade"].isna().any() else list(GRADES)
    groups = [("Young", discs["age"] < OLDER_FROM), ("Older", discs["age"] >= OLDER_FROM)]
    if discs["age"].isna().any():
        groups.append(("Unknown age", discs["age"].isna()))
    groups.append(("All", pd.Series(True, index=discs.index)))
    rows, index = [], []
    for value, label in _SETS:
        in_set = discs["split"].isna() if value is None else discs["split"].eq(value)
        if not in_set.any():
            continue
        for group, mask in groups:
            part = discs[in_set & mask]
            counts = part["grade_name"].value_counts().reindex(columns, fill_value=0)
            rows.append([part["subject"].nunique(), len(part), *counts.tolist()])
            index.append((label, group))
    return pd.DataFrame(
        rows,
        index=pd.MultiIndex.from_tuples(index, names=["set", "age group"]),
        columns=["subjects", "discs", *columns],
    )


def format_split_summary(summary: pd.DataFrame) -> str:
    """Plain-text Table 1: counts, and per grade ``number (percent of the row's discs, halves rounded up)``."""
    grades = list(summary.columns[2:])
    header = ["", "Subjects", "Discs", *grades]
    lines, current = [], None
    for (name, group), row in summary.iterrows():
        if name != current:
            lines.append([name] + [""] * (len(header) - 1))
            current = name
        cells = [f"{row[g]} ({int(100 * row[g] / row['discs'] + 0.5) if row['discs'] else 0})" for g in grades]
        lines.append([f"  {group}", str(row["subjects"]), str(row["discs"]), *cells])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [header, *lines]
    ]
    return "\n".join(line.rstrip() for line in text)
