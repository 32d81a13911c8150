"""Uncertainty of ensemble predictions: per-disc member volumes, their agreement, QC flags and their hit rate.

A *member* is one network on one test-time transform (:data:`~discnet.spine.FLIPS`). Every member's probability is
thresholded and cleaned like the ensemble's; each of its disc voxels then belongs to the nearest disc of
the ensemble's label map (in mm, as ``discnet evaluate`` assigns false positives), which gives each
member's volume of every ensemble disc. A disc's ``qc_flag`` is set when any of these rules fires
(``qc_reasons`` names them):

- ``members_disagree``: the members' volumes have a coefficient of variation above :data:`CV_MAX`
  (10%) or their mean pairwise Dice is below :data:`DICE_MIN` (0.80) (needs two members or more);
- ``disc_count``: the scan's disc count (fragments not counted) is not the expected one (5);
- ``border``: the disc touches the border of the image (first or last index along any axis);
- ``reference``: its volume is outside the range of that level in a reference table (:func:`read_reference`).

Example:
    >>> labels = np.zeros((3, 3, 8), np.uint8); labels[1, 1, 2:5] = 1
    >>> members = [np.flatnonzero(labels), np.flatnonzero(labels)[:2]]
    >>> row = member_disc_rows(labels, members, (1.0, 1.0, 1.0), 1.0, {1: "L5-S1"}, found=1, expected=1)[0]
    >>> row["member_1_mm3"], row["member_2_mm3"], round(row["mean_pairwise_dice"], 3), row["qc_reasons"]
    (3.0, 2.0, 0.8, 'members_disagree')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from discnet.errors import InputError
from discnet.spine import LEVELS, ordered_levels

CV_MAX = 0.10
DICE_MIN = 0.80
RULES = ("members_disagree", "disc_count", "border", "reference")
COLUMNS = ["subject", "level", "label", "volume_mm3", "members", "member_mean_mm3", "member_sd_mm3", "member_cv"]
COLUMNS += ["mean_pairwise_dice", "qc_flag", "qc_reasons"]


def voxel_uncertainty(members: np.ndarray, kind: str) -> np.ndarray:
    """Per-voxel uncertainty of member probabilities ``(m, ...)``: ``"entropy"`` of their mean (bits, 0-1)
    or their ``"variance"`` (population, 0-0.25).

    Example:
        >>> voxel_uncertainty(np.array([[0.0, 0.5], [1.0, 0.5]]), "entropy").tolist()
        [1.0, 1.0]
    """
    members = np.asarray(members, np.float64)
    if kind == "variance":
        return members.var(axis=0).astype(np.float32)
    if kind != "entropy":
        raise ValueError(f"uncertainty must be entropy or variance, not {kind!r}")
    p = np.clip(members.mean(axis=0), 1e-12, 1 - 1e-12)
    return (-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).astype(np.float32)


def nearest_disc_labels(labels: np.ndarray, voxel_sets: Sequence[np.ndarray], spacing) -> list[np.ndarray]:
    """For each array of flat voxel indices, the label of the nearest disc voxel of ``labels`` (mm distance).

    Example:
        >>> nearest_disc_labels(np.array([[[1, 0, 0, 2]]]), [np.array([1, 2])], (1, 1, 1))[0].tolist()
        [1, 2]
    """
    if not np.any(labels) or not any(len(v) for v in voxel_sets):
        return [np.zeros(len(v), labels.dtype) for v in voxel_sets]
    everything = np.concatenate([np.flatnonzero(labels), *voxel_sets])
    coords = np.unravel_index(everything, labels.shape)
    start = [int(c.min()) for c in coords]
    box = tuple(slice(s, int(c.max()) + 1) for s, c in zip(start, coords, strict=True))
    sub = labels[box]
    nearest = ndimage.distance_transform_edt(sub == 0, sampling=spacing, return_distances=False, return_indices=True)
    out = []
    for voxels in voxel_sets:
        local = tuple(c - s for c, s in zip(np.unravel_index(voxels, labels.shape), start, strict=True))
        out.append(sub[tuple(axis[local] for axis in nearest)])
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) and not len(b):
        return 1.0
    return 2.0 * len(np.intersect1d(a, b, assume_unique=True)) / (len(a) + len(b))


def _touches_border(voxels: np.ndarray, shape: tuple[int, ...]) -> bool:
    coords = np.unravel_index(voxels, shape)
    return any(int(c.min()) == 0 or int(c.max()) == n - 1 for c, n in zip(coords, shape, strict=True))


def member_disc_rows(
    labels: np.ndarray,
    member_voxels: Sequence[np.ndarray],
    spacing,
    voxel_volume: float,
    levels: Mapping[int, str],
    found: int,
    expected: int,
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> list[dict]:
    """One row per disc of ``labels`` (superior to inferior): :data:`COLUMNS` without ``subject``, then
    ``member_<k>_mm3`` for each member.

    ``member_voxels`` holds each member's disc voxels as flat indices into ``labels``; ``found`` and
    ``expected`` are the scan's disc counts; ``reference`` maps a level to its (min, max) volume in mm^3.
    """
    labels = np.asarray(labels)
    assigned = nearest_disc_labels(labels, member_voxels, spacing)
    m = len(member_voxels)
    rows = []
    for value, name in ordered_levels(levels).items():
        disc = np.flatnonzero(labels == value)
        if not len(disc):
            continue
        sets = [voxels[hit == value] for voxels, hit in zip(member_voxels, assigned, strict=True)]
        volumes = np.array([len(s) * voxel_volume for s in sets])
        mean = float(volumes.mean()) if m else float("nan")
        sd = float(volumes.std(ddof=1)) if m > 1 else float("nan")
        pairs = [_dice(a, b) for a, b in combinations(sets, 2)]
        row = {"level": name, "label": int(value), "volume_mm3": len(disc) * voxel_volume, "members": m}
        row |= {"member_mean_mm3": mean, "member_sd_mm3": sd, "member_cv": sd / mean if mean > 0 else float("nan")}
        row["mean_pairwise_dice"] = float(np.mean(pairs)) if pairs else float("nan")
        reasons = []
        if m > 1 and (row["member_cv"] > CV_MAX or row["mean_pairwise_dice"] < DICE_MIN):
            reasons.append("members_disagree")
        if found != expected:
            reasons.append("disc_count")
        if _touches_border(disc, labels.shape):
            reasons.append("border")
        if reference and name in reference and not reference[name][0] <= row["volume_mm3"] <= reference[name][1]:
            reasons.append("reference")
        row |= {"qc_flag": bool(reasons), "qc_reasons": ";".join(reasons)}
        rows.append(row | {f"member_{k + 1}_mm3": float(v) for k, v in enumerate(volumes)})
    return rows


def read_reference(path: str | Path) -> dict[str, tuple[float, float]]:
    """Per-level (min, max) disc volume in mm^3 from a reference table.

    Either long (a ``level`` column and ``volume_mm3`` or ``volume_cm3``: ``discnet volumes`` output) or
    wide (one column per level name, in cm^3, as ``../shared/data/ivd-volumes/reference_volumes_cm3.csv``).
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot be read as a CSV table ({err})", "give a volume table") from err
    if "level" in table.columns and ({"volume_mm3", "volume_cm3"} & set(table.columns)):
        mm3 = table["volume_mm3"] if "volume_mm3" in table.columns else table["volume_cm3"] * 1000.0
        values = pd.DataFrame({"level": table["level"].astype(str), "mm3": pd.to_numeric(mm3, errors="coerce")})
    else:
        wide = [level for level in LEVELS if level in table.columns]
        if not wide:
            raise InputError(
                path, "has neither level,volume_mm3 columns nor one column per level", "give a volume table"
            )
        values = table[wide].apply(pd.to_numeric, errors="coerce").melt(var_name="level", value_name="mm3")
        values["mm3"] *= 1000.0
    values = values.dropna()
    if values.empty:
        raise InputError(path, "has no numeric volumes", "give a volume table")
    ranges = values.groupby("level")["mm3"].agg(["min", "max"])
    return {str(level): (float(row["min"]), float(row["max"])) for level, row in ranges.iterrows()}


def flag_hit_rate(uncertainty: pd.DataFrame, metrics: pd.DataFrame, dice_below: float = 0.8) -> pd.DataFrame:
    """How well ``qc_flag`` finds the wrong discs: one row per rule and ``any``.

    ``uncertainty``: ``discnet predict``'s ``uncertainty.csv`` rows; ``metrics``: ``discnet evaluate``'s
    per-disc rows of the same scans (subjects matched by :func:`discnet.evaluation.evaluate.subject_key`, so
    ``sub11_T2w`` is ``sub11``). A disc is wrong when its Dice against the truth is below ``dice_below``. A
    true disc without a predicted one is wrong and counts as flagged by ``disc_count`` when another disc of
    its scan has that reason. Columns: rule, discs, wrong, flagged, caught (flagged and wrong), sensitivity
    (caught / wrong), precision (caught / flagged).

    Example:
        >>> u = pd.DataFrame({"subject": ["a", "a"], "level": ["L4-L5", "L5-S1"], "qc_reasons": ["", "border"]})
        >>> m = pd.DataFrame({"subject": ["a", "a"], "level": ["L4-L5", "L5-S1"], "dice": [0.9, 0.5]})
        >>> flag_hit_rate(u, m).iloc[0].to_dict()
        {'rule': 'any', 'discs': 2, 'wrong': 1, 'flagged': 1, 'caught': 1, 'sensitivity': 1.0, 'precision': 1.0}
    """
    from discnet.evaluation.evaluate import subject_key

    truth = metrics[metrics["level"].astype(str) != "all"][["subject", "level", "dice"]].copy()
    flags = uncertainty[["subject", "level", "qc_reasons"]].copy()
    for table in (truth, flags):
        table["subject"] = table["subject"].astype(str).map(subject_key)
    joined = truth.merge(flags, on=["subject", "level"], how="left")
    counted = set(flags.loc[flags["qc_reasons"].fillna("").str.contains("disc_count"), "subject"])
    missing = joined["qc_reasons"].isna()
    joined.loc[missing, "qc_reasons"] = ["disc_count" if s in counted else "" for s in joined.loc[missing, "subject"]]
    reasons = joined["qc_reasons"].fillna("").str.split(";")
    wrong = joined["dice"].fillna(0.0).to_numpy() < dice_below
    rows = []
    for rule in ("any", *RULES):
        flagged = np.array([bool(r != [""]) if rule == "any" else rule in r for r in reasons])
        caught = int((flagged & wrong).sum())
        rows.append(
            {
                "rule": rule,
                "discs": len(joined),
                "wrong": int(wrong.sum()),
                "flagged": int(flagged.sum()),
                "caught": caught,
                "sensitivity": caught / int(wrong.sum()) if wrong.any() else float("nan"),
                "precision": caught / int(flagged.sum()) if flagged.any() else float("nan"),
            }
        )
    return pd.DataFrame(rows)
