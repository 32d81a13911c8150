"""A run's validation Dice at its last or its best epoch, per subject, raw and after orphan removal.

The paper scores "the model resulting from each run": the last epoch (``score="last"``, the default of
the analysis). The best epoch (``score="best"``, the epoch ``best.ckpt`` holds) is a maximum over every
validation of the run, optimistic and more so for noisier versions. ``summary.json`` holds both blocks
(``last``, ``best``: ``epoch, dsc, dsc_orphan_removed, subjects, subjects_orphan_removed``); summaries
written before they existed hold the best epoch's ``subjects`` only, and :func:`run_scores` then takes
the last epoch from the run's ``val_scores.csv`` (one row per epoch, a column per subject and
``orphan_removed/<subject>``).

Example:
    >>> epoch_scores({"epoch": 9, "val/dsc": 0.8, "s1": 0.8, "orphan_removed/s1": 0.81})["subjects_orphan_removed"]
    {'s1': 0.81}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from discnet.models.run_folder import EPOCHS

EPOCH_CHOICES = ("last", "best")
SCORE_NAMES = {"last": "last epoch", "best": "best epoch"}
SCORE_KEYS = ("epoch", "dsc", "dsc_orphan_removed", "subjects", "subjects_orphan_removed")
ORPHANS = "orphan_removed/"


class MissingScores(ValueError):
    """The run recorded no per-subject Dice for the requested epoch."""


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def epoch_scores(row: Mapping) -> dict:
    """One epoch's scores from a ``val_scores.csv`` row (subject names never hold a ``/``)."""
    subjects = {str(k): _number(v) for k, v in row.items() if k != "epoch" and "/" not in str(k)}
    cleaned = {str(k)[len(ORPHANS) :]: _number(v) for k, v in row.items() if str(k).startswith(ORPHANS)}
    return {
        "epoch": int(row["epoch"]),
        "dsc": _number(row.get("val/dsc")),
        "dsc_orphan_removed": _number(row.get("val/dsc_orphan_removed")),
        "subjects": {k: v for k, v in subjects.items() if v is not None},
        "subjects_orphan_removed": {k: v for k, v in cleaned.items() if v is not None},
    }


def read_epochs(folder: str | Path) -> pd.DataFrame:
    """The run's ``val_scores.csv`` (empty when absent or unreadable)."""
    try:
        return pd.read_csv(Path(folder) / EPOCHS)
    except (OSError, ValueError):
        return pd.DataFrame()


def run_scores(summary: Mapping, folder: str | Path, score: str = "last") -> dict:
    """The ``score`` block (:data:`SCORE_KEYS`) of a run; raises MissingScores when it was not recorded."""
    block = summary.get(score)
    if isinstance(block, Mapping) and isinstance(block.get("subjects"), Mapping):
        return dict(block)
    if score == "best":
        return {
            "epoch": summary.get("best_epoch"),
            "dsc": summary.get("best_val_dsc"),
            "subjects": summary.get("subjects"),
            "subjects_orphan_removed": summary.get("subjects_orphan_removed") or {},
        }
    if not summary.get("subjects"):
        raise ValueError("no validation Dice per subject")
    epochs = read_epochs(folder)
    if epochs.empty or "epoch" not in epochs:
        raise MissingScores(f"no last-epoch Dice per subject (an older summary.json, and no {EPOCHS})")
    return epoch_scores(epochs.loc[epochs["epoch"].idxmax()].to_dict())


def epoch_table(runs: pd.DataFrame, keys: Sequence[str] = ("version", "seed")) -> pd.DataFrame:
    """Every epoch's Dice per subject of the ``runs`` (one row per run: ``run`` and ``keys`` columns):
    ``*keys, run, epoch, subject, dsc, dsc_orphan_removed``, from each run folder's ``val_scores.csv``."""
    rows = []
    for run in runs.drop_duplicates("run").itertuples(index=False):
        for record in read_epochs(run.run).to_dict("records"):
            scores = epoch_scores(record)
            for subject, dsc in scores["subjects"].items():
                rows.append(
                    [*(getattr(run, k) for k in keys), run.run, scores["epoch"], subject, dsc]
                    + [scores["subjects_orphan_removed"].get(subject, math.nan)]
                )
    return pd.DataFrame(rows, columns=[*keys, "run", "epoch", "subject", "dsc", "dsc_orphan_removed"])
