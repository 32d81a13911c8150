"""Inter-reader agreement (paper section 2.2): Dice between every two readers' segmentations.

Each reader labels every disc level, so the per-level Dice of readers A and B is simply
``dice(A == v, B == v)`` for the level's label value ``v``, and the whole-spine Dice is
``dice(A > 0, B > 0)``. A level that neither reader labelled gets no row.

Example:
    >>> a = np.array([[[1, 1, 2, 0]]]); b = np.array([[[1, 0, 2, 2]]])
    >>> [(r["level"], round(r["dice"], 3)) for r in agreement_rows(a, b, {1: "L5-S1", 2: "L4-L5"})]
    [('all', 0.667), ('L4-L5', 0.667), ('L5-S1', 0.667)]
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.errors import InputError
from discnet.evaluation.evaluate import check_levels_named, check_same_grid, clinical_table, describe
from discnet.evaluation.metrics import dice
from discnet.io import read_volume
from discnet.spine import level_sort_key, ordered_levels

COLUMNS = ["reader_a", "reader_b", "subject", "level", "label", "dice", "voxels_a", "voxels_b"]


def agreement_rows(a: np.ndarray, b: np.ndarray, levels: Mapping[int, str]) -> list[dict]:
    """Whole-spine row (``level = "all"``) and one row per level labelled by either reader.

    Example:
        >>> agreement_rows(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)), {1: "L5-S1"})
        [{'level': 'all', 'label': None, 'dice': 1.0, 'voxels_a': 0, 'voxels_b': 0}]
    """
    a, b = np.asarray(a), np.asarray(b)
    rows = [{"level": "all", "label": None, "dice": dice(a, b)}]
    rows[0] |= {"voxels_a": int(np.count_nonzero(a)), "voxels_b": int(np.count_nonzero(b))}
    for value, name in ordered_levels(levels).items():
        in_a, in_b = a == value, b == value
        n_a, n_b = int(np.count_nonzero(in_a)), int(np.count_nonzero(in_b))
        if n_a or n_b:
            rows.append({"level": name, "label": value, "dice": dice(in_a, in_b), "voxels_a": n_a, "voxels_b": n_b})
    return rows


def agreement_table(
    readers: Mapping[str, Mapping[str, str | Path]],
    levels: Mapping[int, str],
    manifest: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Dice of every two readers on every subject both labelled; ``readers`` is ``{reader: {subject: path}}``.

    Columns :data:`COLUMNS` (plus ``grade`` and ``age`` when ``manifest`` is given). Each file is read once.

    Example:
        >>> agreement_table({"A": {}, "B": {}}, {1: "L5-S1"}).columns.tolist()[:4]
        ['reader_a', 'reader_b', 'subject', 'level']
    """
    if len(readers) < 2:
        raise InputError(None, f"agreement needs at least two readers, got {len(readers)}", "give two or more folders")
    subjects = list(dict.fromkeys(s for files in readers.values() for s in files))
    rows = []
    for subject in subjects:
        volumes = {}
        for reader, files in readers.items():
            if subject in files:
                volumes[reader] = read_volume(files[subject], kind="label")
                check_levels_named(volumes[reader], levels)
        for reader_a, reader_b in combinations(volumes, 2):
            check_same_grid(volumes[reader_b], volumes[reader_a], what=f"reader {reader_a} map")
            for row in agreement_rows(volumes[reader_a].array, volumes[reader_b].array, levels):
                rows.append({"reader_a": reader_a, "reader_b": reader_b, "subject": subject, **row})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["label"] = pd.array(table["label"], dtype="Int64")
    if manifest is not None:
        table = table.merge(clinical_table(manifest), on=["subject", "level"], how="left")
    return table


def agreement_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Dice n, mean, SD, min and max over reader pairs and subjects, for ``all`` and each level.

    Example:
        >>> df = pd.DataFrame({"level": ["all", "all", "L5-S1"], "dice": [0.9, 0.95, 0.8]})
        >>> agreement_summary(df)[["level", "n", "mean"]].values.tolist()
        [['all', 2, 0.925], ['L5-S1', 1, 0.8]]
    """
    groups = sorted(pd.unique(table["level"]), key=lambda g: (g != "all", level_sort_key(str(g))))
    rows = [{"level": g} | describe(table.loc[table["level"] == g, "dice"]) for g in groups]
    return pd.DataFrame(rows, columns=["level", "n", "mean", "sd", "min", "max"])
