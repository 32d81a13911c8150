"""Training runs as one long table (one row per run and validation subject), and leaderboards.

A sweep writes one folder per run (``multirun/train/<version>/<overrides>/``) holding the run's
``summary.json`` (see :mod:`discnet.training`). :func:`load_runs` finds every ``summary.json`` below
the given folders and keeps the complete runs; each row is one validation subject of one run:

    version, round, params, input, seed, subject, dsc, dsc_orphan_removed, run

``dsc`` is the subject's Dice at the run's best epoch (``summary["subjects"]``), ``dsc_orphan_removed``
the same after orphan removal (``summary["subjects_orphan_removed"]``, empty when absent) and ``run`` the
run's folder. :func:`read_table` reads the same long table from a CSV (``version,seed,subject,dsc`` and
any factor columns), so results from elsewhere can be analysed too.

A run's score is its mean Dice across subjects, which is the ``best_val_dsc`` it logged (to W&B too).

Example:
    >>> long = pd.DataFrame({"version": ["a", "a", "b", "b"], "seed": [0, 0, 0, 0],
    ...                      "subject": ["s1", "s2", "s1", "s2"], "dsc": [0.8, 0.9, 0.7, 0.7]})
    >>> leaderboard(long)[["rank", "version", "seed", "dsc"]].round(3).values.tolist()
    [[1, 'a', 0, 0.85], [2, 'b', 0, 0.7]]
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from discnet.errors import InputError

SUMMARY = "summary.json"
FACTORS = ["version", "round", "params", "input"]
COLUMNS = [*FACTORS, "seed", "subject", "dsc", "dsc_orphan_removed", "run"]
#: Response columns: Dice as trained, and after orphan removal (paper 2.6).
RESPONSES = ("dsc", "dsc_orphan_removed")
REQUIRED = ("version", "seed", "subject", "dsc")


def natural_key(text) -> tuple:
    """Sort key ordering digits by value: ``model2`` before ``model10``.

    Example:
        >>> sorted(["m10", "m2", "m1"], key=natural_key)
        ['m1', 'm2', 'm10']
    """
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(text)))


def find_summaries(folders: Sequence[str | Path]) -> list[Path]:
    """Every ``summary.json`` at or below ``folders`` (each file once, in natural order)."""
    found: dict[Path, Path] = {}
    for folder in folders:
        folder = Path(folder)
        if folder.is_file() and folder.name == SUMMARY:
            paths = [folder]
        elif folder.is_dir():
            paths = list(folder.rglob(SUMMARY))
        else:
            raise InputError(folder, "is not a folder", "give sweep output folders, e.g. multirun/train")
        for path in paths:
            found.setdefault(path.resolve(), path)
    return sorted(found.values(), key=lambda p: natural_key(str(p)))


def summary_rows(summary: dict, run: str) -> list[dict]:
    """Long-table rows of one run's summary (raises ValueError saying why a run is not usable).

    Example:
        >>> summary_rows({"status": "complete", "version": "v", "seed": 1, "subjects": {"s1": 0.9}}, "r")[0]["dsc"]
        0.9
    """
    if summary.get("status") != "complete":
        error = f" ({summary['error']})" if summary.get("error") else ""
        raise ValueError(f"status {summary.get('status')!r}{error}")
    subjects = summary.get("subjects")
    if not isinstance(subjects, dict) or not subjects:
        raise ValueError("no validation Dice per subject")
    if summary.get("version") is None or summary.get("seed") is None:
        raise ValueError("no version or seed")
    orphans = summary.get("subjects_orphan_removed") or {}
    base = {key: summary.get(key) for key in FACTORS}
    return [
        {
            **base,
            "seed": summary["seed"],
            "subject": str(subject),
            "dsc": float(dsc) if dsc is not None else math.nan,
            "dsc_orphan_removed": float(orphans[subject]) if orphans.get(subject) is not None else math.nan,
            "run": run,
        }
        for subject, dsc in subjects.items()
    ]


def load_runs(folders: Sequence[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """Long table of the complete runs below ``folders`` and notes on the runs skipped.

    Example:
        >>> import tempfile; d = Path(tempfile.mkdtemp())
        >>> _ = (d / SUMMARY).write_text('{"status": "failed", "error": "boom"}')
        >>> load_runs([d])[1]
        [".../summary.json: skipped: status 'failed' (boom)"]
    """
    rows, notes = [], []
    for path in find_summaries(folders):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            rows += summary_rows(summary, str(path.parent))
        except (OSError, ValueError, TypeError, AttributeError) as err:
            notes.append(f"{path}: skipped: {err}")
    return _typed(pd.DataFrame(rows, columns=COLUMNS)), notes


def _typed(long: pd.DataFrame) -> pd.DataFrame:
    long = long.copy()
    for column in ("dsc", "dsc_orphan_removed", "params"):
        if column in long:
            long[column] = pd.to_numeric(long[column], errors="coerce").astype(float)
    for column in ("version", "subject", "run", "input"):
        if column in long:
            long[column] = long[column].astype(object).where(long[column].isna(), long[column].astype(str))
    return long


def read_table(path: str | Path) -> pd.DataFrame:
    """The long table from a CSV with columns ``version,seed,subject,dsc`` (+ optional factor columns).

    A missing ``run`` column is made from version and seed (``version/seed=S``).
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"version": str, "subject": str, "input": str, "run": str})
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot be read as CSV ({err})", "give a CSV file with a header row") from err
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise InputError(path, f"has no column(s) {', '.join(missing)}", f"give columns {', '.join(REQUIRED)}")
    for column in ("dsc", "dsc_orphan_removed"):
        if column in table and pd.to_numeric(table[column], errors="coerce").isna().sum() > table[column].isna().sum():
            raise InputError(path, f"column {column} holds non-numbers", "give Dice as numbers between 0 and 1")
    table = with_run(table)
    if table.duplicated(["run", "subject"]).any():
        raise InputError(path, "a subject appears twice for the same run", "give one row per run and subject")
    for column in COLUMNS:
        if column not in table:
            table[column] = math.nan
    return _typed(table[COLUMNS + [c for c in table.columns if c not in COLUMNS]])


def with_run(long: pd.DataFrame) -> pd.DataFrame:
    """``long`` with a ``run`` column (``version/seed=S`` when it had none).

    Example:
        >>> with_run(pd.DataFrame({"version": ["v"], "seed": [3]}))["run"].tolist()
        ['v/seed=3']
    """
    if "run" in long:
        return long
    return long.assign(run=long["version"].astype(str) + "/seed=" + long["seed"].astype(str))


def collect(folders: Sequence[str | Path] = (), table: str | Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Runs from sweep folders and/or a long-table CSV; raises InputError when there are none."""
    if not folders and table is None:
        raise InputError(None, "no runs given", "give sweep output folders (e.g. multirun/train) or --table runs.csv")
    parts, notes = [], []
    if folders:
        long, notes = load_runs(folders)
        parts.append(long)
    if table is not None:
        parts.append(read_table(table))
    parts = [p for p in parts if not p.empty]
    if not parts:
        where = ", ".join(str(f) for f in folders) or table
        raise InputError(where, "holds no complete run with validation Dice", "train the sweep first")
    long = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return long, notes


def has_response(long: pd.DataFrame, response: str) -> bool:
    """True when ``response`` is a column with at least one value."""
    return response in long and long[response].notna().any()


def run_means(long: pd.DataFrame, response: str = "dsc") -> pd.DataFrame:
    """One row per run: factors, seed, run, ``n_subjects``, mean (column ``response``) and SD across subjects."""
    long = with_run(long)
    data = long.dropna(subset=[response])
    keys = [c for c in long.columns if c not in ("subject", *RESPONSES) and c != "run"]
    first = data.groupby("run", sort=False)[keys].first()
    stats = data.groupby("run", sort=False)[response].agg(n_subjects="count", mean="mean", sd="std")
    stats = stats.rename(columns={"mean": response})
    return first.join(stats).reset_index()[[*keys, "run", "n_subjects", response, "sd"]]


def leaderboard(long: pd.DataFrame, n: int | None = None, response: str = "dsc") -> pd.DataFrame:
    """The top ``n`` runs by mean ``response`` across subjects: rank, version, seed, dsc, sd, run, ...

    Ties keep natural order of version then seed.
    """
    runs = run_means(long, response)
    runs = runs.sort_values(["version", "seed"], key=lambda s: s.map(natural_key), kind="stable")
    runs = runs.sort_values(response, ascending=False, kind="stable").reset_index(drop=True)
    runs.insert(0, "rank", range(1, len(runs) + 1))
    return runs.head(n) if n else runs


def version_summary(long: pd.DataFrame, response: str = "dsc") -> pd.DataFrame:
    """Per version: runs, mean and SD across runs of the run means, best and worst run, best seed.

    With orphan-removed Dice also the gain from orphan removal (mean and SD across runs), as paper 3.3.
    """
    runs = run_means(long, response)
    rows = []
    for version, group in runs.groupby("version", sort=False):
        scores = group[response]
        best = group.loc[scores.idxmax()]
        rows.append(
            {
                "version": version,
                "runs": len(group),
                "mean": scores.mean(),
                "sd": scores.std(),
                "best": best[response],
                "worst": scores.min(),
                "best_seed": best["seed"],
            }
        )
    table = pd.DataFrame(rows, columns=["version", "runs", "mean", "sd", "best", "worst", "best_seed"])
    if response == "dsc_orphan_removed" and has_response(long, "dsc"):
        raw = run_means(long.dropna(subset=[response]), "dsc")[["run", "version", "dsc"]]
        gain = raw.merge(runs[["run", response]], on="run")
        gain["gain"] = gain[response] - gain["dsc"]
        stats = gain.groupby("version")["gain"].agg(gain_mean="mean", gain_sd="std").reset_index()
        table = table.merge(stats, on="version", how="left")
    table = table.sort_values("version", key=lambda s: s.map(natural_key), kind="stable")
    return table.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def subject_sets_differ(long: pd.DataFrame) -> bool:
    """True when the runs were not all validated on the same subjects."""
    sets = with_run(long).dropna(subset=["dsc"]).groupby("run")["subject"].agg(frozenset)
    return sets.nunique() > 1
