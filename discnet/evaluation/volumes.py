"""Per-level disc volumes of label files, robust to files that use other label values than the levels file.

Voxel volume is ``|det(affine[:3, :3])|`` (:attr:`discnet.io.Volume.voxel_volume`), which stays right when a
header mislabels its axes. Which label value is which level follows :func:`match_labels`:

1. If every non-zero value in the file is a value of the levels file (some may be missing), they are used
   as they are.
2. Otherwise labels with fewer than ``MIN_FRACTION`` (1%) of the voxels of the median of the file's
   ``len(levels)`` largest labels are set aside as stray (with a warning). If exactly ``len(levels)`` large
   labels remain, they are matched by sorted value to the levels sorted by value (smallest to smallest),
   with a warning naming the mapping. Any other count is an :class:`InputError`.

Example:
    >>> match_labels({4: 900, 7: 1000, 255: 3}, {51: "L5-S1", 102: "L4-L5"})[0]
    {4: 51, 7: 102}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.errors import InputError
from discnet.io import read_volume
from discnet.postprocess.level_check import LevelOrderWarning, check_level_order
from discnet.spine import ordered_levels

#: A label is stray when it has fewer voxels than this fraction of the median large label.
MIN_FRACTION = 0.01
COLUMNS = ["subject", "level", "label", "voxels", "volume_mm3", "volume_cm3", "file", "note"]
#: The row of a file without any disc: level ``none``, no volume, this note.
NO_DISC = "no disc found"


class LabelMappingWarning(UserWarning):
    """A file's label values were matched to the levels by rule 2 (see the module docstring)."""


def label_counts(array: np.ndarray) -> dict[int, int]:
    """Voxel count of every non-zero label value present in ``array`` (non-negative integers).

    Example:
        >>> label_counts(np.array([0, 3, 3, 5]))
        {3: 2, 5: 1}
    """
    flat = np.asarray(array).ravel()
    if flat.size and flat.dtype.kind in "iub" and int(flat.max()) < 2**16:
        counts = np.bincount(flat.astype(np.int64, copy=False))
        values = np.flatnonzero(counts)
        return {int(v): int(counts[v]) for v in values if v != 0}
    values, counts = np.unique(flat, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True) if v != 0}


def match_labels(
    counts: Mapping[int, int], levels: Mapping[int, str], where: str | Path | None = None
) -> tuple[dict[int, int], list[str]]:
    """Map the file's label values to the levels file's values; return the mapping and warning lines.

    ``counts`` is :func:`label_counts` of the file. The mapping holds the labels that count as discs
    (file value -> levels value); rule 1 or 2 of the module docstring decides it.

    Example:
        >>> match_labels({51: 10, 102: 12}, {51: "L5-S1", 102: "L4-L5", 153: "L3-L4"})
        ({51: 51, 102: 102}, [])
    """
    if set(counts) <= set(levels):
        return {value: value for value in sorted(counts)}, []
    largest = sorted(counts.values(), reverse=True)[: len(levels)]
    threshold = MIN_FRACTION * float(np.median(largest)) if largest else 0.0
    large = sorted(value for value, n in counts.items() if n >= threshold)
    stray = sorted(value for value, n in counts.items() if n < threshold)
    if len(large) != len(levels):
        raise InputError(
            where,
            f"label values {sorted(counts)} are not the levels file's values {sorted(levels)}, and its "
            f"{len(large)} large label(s) cannot be matched one-to-one to the {len(levels)} levels",
            "give --levels naming this file's label values",
        )
    mapping = dict(zip(large, sorted(levels), strict=True))
    lines = []
    if stray:
        ignored = ", ".join(f"{value} ({counts[value]} voxels)" for value in stray)
        lines.append(f"{where}: ignored stray label(s) {ignored}, below {MIN_FRACTION:.0%} of a disc's size")
    named = ", ".join(f"{value}={levels[mapping[value]]}" for value in large)
    lines.append(f"{where}: label values are not the levels file's; matched by sorted value: {named}")
    return mapping, lines


def volume_rows(counts: Mapping[int, int], voxel_volume: float, levels: Mapping[int, str], where=None) -> list[dict]:
    """One row per level present, superior to inferior: level, label (the file's value), voxels, volumes.

    Warning lines of :func:`match_labels` are issued as :class:`LabelMappingWarning`.

    Example:
        >>> volume_rows({1: 2, 2: 1}, 0.5, {1: "L5-S1", 2: "L4-L5"})[0]
        {'level': 'L4-L5', 'label': 2, 'voxels': 1, 'volume_mm3': 0.5, 'volume_cm3': 0.0005}
    """
    mapping, lines = match_labels(counts, levels, where)
    for line in lines:
        warnings.warn(line, LabelMappingWarning, stacklevel=2)
    by_level = {mapping[value]: value for value in mapping}
    rows = []
    for level_value, name in ordered_levels(levels).items():
        if level_value in by_level:
            value = by_level[level_value]
            mm3 = counts[value] * voxel_volume
            rows.append({"level": name, "label": value, "voxels": counts[value], "volume_mm3": mm3})
            rows[-1]["volume_cm3"] = mm3 / 1000.0
    return rows


def no_disc_row(subject: str, file: str | Path) -> dict:
    """The row saying that ``file`` (of ``subject``) holds no disc, so that it does not vanish from a table.

    Example:
        >>> no_disc_row("a", "a_discs.nii.gz")["note"]
        'no disc found'
    """
    empty = {"label": None, "voxels": 0, "volume_mm3": np.nan, "volume_cm3": np.nan}
    return {"subject": subject, "level": "none", **empty, "file": str(file), "note": NO_DISC}


def volumes_table(
    files: Mapping[str, str | Path], levels: Mapping[int, str], ignore_level_order: bool = False
) -> pd.DataFrame:
    """Disc volumes of label files given as ``{subject: path}``; columns :data:`COLUMNS`.

    A file without any disc gives one :func:`no_disc_row`. A file whose level names contradict its discs' world order is an InputError
    (:func:`discnet.postprocess.level_check.check_level_order`), a :class:`LevelOrderWarning` with ``ignore_level_order``.

    Example:
        >>> volumes_table({}, {1: "L5-S1"}).columns.tolist()
        ['subject', 'level', 'label', 'voxels', 'volume_mm3', 'volume_cm3', 'file', 'note']
    """
    rows = []
    for subject, path in files.items():
        volume = read_volume(path, kind="label")
        found = volume_rows(label_counts(volume.array), volume.voxel_volume, levels, where=path)
        line = check_level_order(volume, {row["label"]: row["level"] for row in found}, ignore_level_order)
        if line:
            warnings.warn(line, LevelOrderWarning, stacklevel=2)
        rows += [{"subject": subject, **row, "file": str(path)} for row in found] or [no_disc_row(subject, path)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["label"] = pd.array(table["label"], dtype="Int64")
    return table
