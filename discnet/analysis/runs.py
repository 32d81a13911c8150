"""Training runs as one long table (one row per run and validation subject), and each run's mean.

A sweep writes one folder per run (``multirun/train/<version>/<overrides>/``) holding the run's
``summary.json`` (see :mod:`discnet.training.run`). :func:`load_runs` finds every ``summary.json`` below
the given folders and keeps the complete runs; each row is one validation subject of one run:

    version, round, params, input, seed, subject, dsc, dsc_orphan_removed, score, epoch, run

``dsc`` is the subject's Dice at the run's last epoch (``score="last"``, the default) or best epoch
(``score="best"``; see :mod:`discnet.training.run_scores`), ``dsc_orphan_removed`` the same after orphan removal
(empty when not recorded), ``epoch`` the epoch scored and ``run`` the run's folder. Runs are pooled into
a version only when their configs differ in nothing but the seed (:mod:`discnet.analysis.versions`); runs
trained on their validation subjects (``data.train_on_val``) are left out with a note. :func:`read_table`
reads the same long table from a CSV (``version,seed,subject,dsc`` and any factor columns), so results
from elsewhere can be analysed too.

A run's score is its mean Dice across subjects: the ``last_val_dsc`` (or ``best_val_dsc``) it logged.
:mod:`discnet.analysis.leaderboard` ranks them and picks the paper's final model from a round.

Example:
    >>> long = pd.DataFrame({"version": ["a", "a", "b", "b"], "seed": [0, 0, 0, 0],
    ...                      "subject": ["s1", "s2", "s1", "s2"], "dsc": [0.8, 0.9, 0.7, 0.7]})
    >>> run_means(long)[["version", "seed", "dsc"]].round(3).values.tolist()
    [['a', 0, 0.85], ['b', 0, 0.7]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from discnet.analysis.versions import read_config, version_config, version_names
from discnet.errors import InputError
from discnet.models.run_folder import SUMMARY, read_summary
from discnet.spine import natural_key
from discnet.training.run_scores import EPOCH_CHOICES, SCORE_NAMES, MissingScores, run_scores

FACTORS = ["version", "round", "params", "input"]
COLUMNS = [*FACTORS, "seed", "subject", "dsc", "dsc_orphan_removed", "score", "epoch", "run"]
#: Response columns: Dice as trained, and after orphan removal (paper 2.6).
RESPONSES = ("dsc", "dsc_orphan_removed")
REQUIRED = ("version", "seed", "subject", "dsc")


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


def summary_rows(summary: dict, run: str, score: str = "last") -> list[dict]:
    """Long-table rows of one run's summary at its ``score`` epoch (raises ValueError saying why a run is
    not usable, MissingScores when that epoch's Dice per subject was not recorded).

    Example:
        >>> summary = {"status": "complete", "version": "v", "seed": 1, "subjects": {"s1": 0.9}}
        >>> summary_rows(summary, "r", "best")[0]["dsc"]
        0.9
    """
    if summary.get("status") != "complete":
        error = f" ({summary['error']})" if summary.get("error") else ""
        raise ValueError(f"status {summary.get('status')!r}{error}")
    if summary.get("version") is None or summary.get("seed") is None:
        raise ValueError("no version or seed")
    block = run_scores(summary, run, score)
    subjects = block.get("subjects")
    if not isinstance(subjects, dict) or not subjects:
        raise ValueError("no validation Dice per subject")
    orphans = block.get("subjects_orphan_removed") or {}
    base = {key: summary.get(key) for key in FACTORS} | {"score": score, "epoch": block.get("epoch")}
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


def _check_score(score: str) -> None:
    if score not in EPOCH_CHOICES:
        raise InputError(None, f"--score {score} is not one of {', '.join(EPOCH_CHOICES)}", "give --score last or best")


def load_runs(folders: Sequence[str | Path], score: str = "last") -> tuple[pd.DataFrame, list[str]]:
    """Long table of the complete runs below ``folders`` at their ``score`` epoch, and notes on the runs
    skipped, left out or split into versions. Raises InputError when a run has no Dice per subject for
    ``score="last"`` (an older summary without its ``val_scores.csv``).

    Example:
        >>> import tempfile; d = Path(tempfile.mkdtemp())
        >>> _ = (d / SUMMARY).write_text('{"status": "failed", "error": "boom"}')
        >>> load_runs([d])[1]
        [".../summary.json: skipped: status 'failed' (boom)"]
    """
    _check_score(score)
    runs, labels, notes, missing = [], [], [], []
    for path in find_summaries(folders):
        try:
            summary = read_summary(path.parent, strict=True)
            config = read_config(path.parent)
            if isinstance(summary, dict) and (summary.get("train_on_val") or (config or {}).get("data.train_on_val")):
                notes.append(
                    f"{path}: left out: trained on its validation subjects (data.train_on_val=true), "
                    "so its Dice is a training fit, not a validation"
                )
                continue
            runs.append(summary_rows(summary, str(path.parent), score))
            labels.append((str(summary["version"]), version_config(config)))
        except MissingScores:
            missing.append(path)
        except (OSError, ValueError, TypeError, AttributeError) as err:
            notes.append(f"{path}: skipped: {err}")
    if missing:
        others = f" (and {len(missing) - 1} other run(s))" if len(missing) > 1 else ""
        raise InputError(
            missing[0],
            f"has no last-epoch Dice per subject{others}: written before summary.json recorded them, "
            "and no val_scores.csv beside it",
            "use --score best (the best epoch's Dice), or re-run these runs",
        )
    names, split = version_names(labels)
    rows = [row | {"version": name} for run, name in zip(runs, names, strict=True) for row in run]
    long = _typed(pd.DataFrame(rows, columns=COLUMNS))
    return long, notes + split + _notes_on(long, score)


def _notes_on(long: pd.DataFrame, score: str) -> list[str]:
    """Notes on runs sharing version and seed, and on runs without orphan-removed Dice at the last epoch."""
    notes = []
    runs = long.drop_duplicates("run")
    for (version, seed), group in runs.groupby(["version", "seed"], sort=False):
        if len(group) > 1:
            notes.append(f"version {version} has {len(group)} runs with seed {seed}: {', '.join(group['run'])}")
    blank = long.groupby("run")["dsc_orphan_removed"].apply(lambda s: s.isna().all())
    if score == "last" and 0 < blank.sum() < len(blank):
        notes.append(
            f"{int(blank.sum())} run(s) recorded no orphan-removed Dice per subject at the last epoch "
            "(older val_scores.csv); the orphan-removed analysis leaves them out"
        )
    return notes


def _typed(long: pd.DataFrame) -> pd.DataFrame:
    long = long.copy()
    for column in ("dsc", "dsc_orphan_removed", "params"):
        if column in long:
            long[column] = pd.to_numeric(long[column], errors="coerce").astype(float)
    for column in ("version", "subject", "run", "input"):
        if column in long:
            long[column] = long[column].astype(object).where(long[column].isna(), long[column].astype(str))
    return long


def read_table(path: str | Path, score: str | None = None) -> pd.DataFrame:
    """The long table from a CSV with columns ``version,seed,subject,dsc`` (+ optional factor columns).

    A missing ``run`` column is made from version and seed (``version/seed=S``). A ``score`` column
    (``last``/``best``) says which epoch the Dice are from; a ``score`` that contradicts it is refused;
    without the column the Dice are taken as ``score``'s.
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
    if score is not None:
        _check_score(score)
        held = set(table["score"].dropna().astype(str)) if "score" in table else set()
        if held - {score}:
            raise InputError(
                path, f"holds {'/'.join(sorted(held))}-epoch Dice, not {score}", "leave out --score or give that one"
            )
        table["score"] = table["score"].fillna(score) if "score" in table else score
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


def collect(
    folders: Sequence[str | Path] = (), table: str | Path | None = None, score: str = "last"
) -> tuple[pd.DataFrame, list[str]]:
    """Runs from sweep folders and/or a long-table CSV at their ``score`` epoch; raises InputError when
    there are none."""
    if not folders and table is None:
        raise InputError(None, "no runs given", "give sweep output folders (e.g. multirun/train) or --table runs.csv")
    parts, notes = [], []
    if folders:
        long, notes = load_runs(folders, score)
        parts.append(long)
    if table is not None:
        parts.append(read_table(table, score))
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


def subject_sets_differ(long: pd.DataFrame) -> bool:
    """True when the runs were not all validated on the same subjects."""
    sets = with_run(long).dropna(subset=["dsc"]).groupby("run")["subject"].agg(frozenset)
    return sets.nunique() > 1


def score_name(long: pd.DataFrame) -> str:
    """Which epoch the table's Dice are from: ``last epoch``, ``best epoch`` (or both, or unknown).

    Example:
        >>> score_name(pd.DataFrame({"score": ["best", "best"]}))
        'best epoch'
    """
    held = sorted(set(long["score"].dropna().astype(str))) if "score" in long else []
    return " and ".join(SCORE_NAMES.get(s, s) for s in held) or "epoch not recorded"
