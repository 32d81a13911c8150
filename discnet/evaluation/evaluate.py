"""Evaluate predicted disc label maps against ground truth (paper Appendix A and section 2.7).

Files are paired by subject name, taken from the file name by :func:`subject_key`: drop the image
extension (``.nii.gz``, ``.nrrd``, ...), then repeatedly drop a trailing :data:`NAME_SUFFIXES` entry
(case-insensitive; ``_`` or ITK-SNAP's ``-``). So ``sub11_T2w_discs.nii.gz``, ``sub11_discs.nii.gz``,
``sub11-seg.nii.gz`` and ``sub11.nrrd`` all name ``sub11``, and ``5_Labels.nii.gz`` names ``5``. When a folder is listed, files ending in
:data:`FOLDER_SKIP` (scans and probability maps, e.g. ``sub11_T2w.nii.gz``) are left out.

Each pair gives one row for all discs together (``level = "all"``, both maps binarised with ``> 0``) and
one row per disc level present in the truth, scored with :func:`discnet.evaluation.metrics.overlap_table`: every
predicted voxel counts against the physically nearest true disc, whatever label the prediction gave it.
A prediction on another grid than its truth is compared in physical space (:func:`discnet.io.regrid.on_grid`:
the same voxels in another axis order are reoriented exactly, a grid that really differs is resampled),
with a :class:`GridNote` saying which.

Example:
    >>> subject_key("preds/sub11_T2w_discs.nii.gz"), subject_key("5_Labels.nii.gz")
    ('sub11', '5')

Over 300 lines because pairing files by subject, reading each pair on one grid and scoring it are
one pass, with its notes, over the files.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.data.manifest import discs_table
from discnet.errors import InputError
from discnet.evaluation.metrics import overlap_table, whole_scores
from discnet.evaluation.volumes import label_counts
from discnet.io import read_volume
from discnet.io.atomic import file_stem, full_suffix
from discnet.io.files import SUFFIXES, volume_format
from discnet.io.regrid import on_grid
from discnet.io.volume import GEOMETRY_ATOL_MM, Volume
from discnet.postprocess.level_check import LevelOrderWarning, check_level_order
from discnet.spine import LEVELS, level_sort_key, natural_key, ordered_levels

#: Trailing name parts dropped to get the subject name (case-insensitive, repeatedly).
NAME_SUFFIXES = tuple(
    sep + end for end in ("discs", "labels", "label", "dseg", "seg", "pred", "mask", "t1w", "t2w") for sep in "_-"
)
#: Files ending so (before the extension) are skipped when listing a folder: scans, probability and uncertainty maps.
FOLDER_SKIP = ("_t1w", "_t2w", "_prob", "_uncertainty")
SCORES = ["dice", "precision", "recall", "volume_ratio", "true_mm3", "pred_mm3", "true_voxels", "pred_voxels"]
COLUMNS = ["subject", "level", "label", *SCORES, "grade", "age", "prediction", "truth"]


def mean_sd(mean: float, sd: float) -> str:
    """``0.812 ± 0.034`` (the SD left out when it is NaN: a single value).

    Example:
        >>> mean_sd(0.8123, 0.0341), mean_sd(0.8, float("nan"))
        ('0.812 ± 0.034', '0.800')
    """
    return f"{mean:.3f}" + ("" if math.isnan(sd) else f" ± {sd:.3f}")


def subject_key(path: str | Path) -> str:
    """Subject name of a label file: extension and trailing :data:`NAME_SUFFIXES` dropped.

    Example:
        >>> subject_key("sub11_seg_pred.nii"), subject_key("_discs.nii.gz")
        ('sub11', '_discs')
    """
    name = file_stem(Path(path))
    while True:
        suffix = next((s for s in NAME_SUFFIXES if name.lower().endswith(s) and len(name) > len(s)), None)
        if suffix is None:
            return name
        name = name[: -len(suffix)]


def _folder_files(folder: Path) -> list[Path]:
    files = [
        f
        for f in folder.iterdir()
        if f.is_file()
        and not f.name.startswith(".")
        and full_suffix(f).lower() in SUFFIXES
        and not file_stem(f).lower().endswith(FOLDER_SKIP)
    ]
    if not files:
        raise InputError(folder, "holds no label files", f"give label files ({', '.join(SUFFIXES)}) or their folder")
    return files


def collect_label_files(inputs: Sequence[str | Path]) -> dict[str, Path]:
    """``{subject: path}`` of label files and folders (see :func:`subject_key`), in natural name order.

    Example:
        >>> collect_label_files([])
        {}
    """
    found: dict[str, Path] = {}
    for item in map(Path, inputs):
        if not item.exists():
            raise InputError(item, "not found", "check the path")
        for path in _folder_files(item) if item.is_dir() else [item]:
            volume_format(path)
            key = subject_key(path)
            if key in found and found[key] != path:
                raise InputError(
                    path,
                    f"names subject '{key}' like {found[key]}",
                    "give one label file per subject (names are compared without _discs/_labels/_seg/... endings)",
                )
            found[key] = path
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def manifest_names(manifest: pd.DataFrame) -> dict[str, tuple[str, int]]:
    """Name of each manifest row as ``discnet predict`` names its outputs: ``subject`` or ``subject_sesN``.

    Example:
        >>> manifest_names(pd.DataFrame({"subject": ["a", "b", "b"], "session": [1, 1, 2]}))
        {'a': ('a', 1), 'b_ses1': ('b', 1), 'b_ses2': ('b', 2)}
    """
    several = manifest.groupby("subject")["session"].transform("nunique") > 1
    return {
        (f"{s}_ses{n}" if many else str(s)): (str(s), int(n))
        for s, n, many in zip(manifest["subject"], manifest["session"], several, strict=True)
    }


def pair_files(
    preds: Mapping[str, Path], truths: Mapping[str, Path]
) -> tuple[dict[str, tuple[Path, Path]], list[str], list[str]]:
    """``{subject: (prediction, truth)}``, the subjects with a truth but no prediction and those with a
    prediction but no truth. One prediction and one truth pair whatever their names.

    Raises InputError when nothing pairs.

    Example:
        >>> pair_files({"a": Path("p.nii"), "c": Path("q.nii")}, {"a": Path("t.nii"), "b": Path("u.nii")})
        ({'a': (PosixPath('p.nii'), PosixPath('t.nii'))}, ['b'], ['c'])
    """
    if len(preds) == 1 and len(truths) == 1:
        (name, pred), (_, truth) = *preds.items(), *truths.items()
        return {name: (pred, truth)}, [], []
    pairs = {name: (preds[name], truths[name]) for name in preds if name in truths}
    if not pairs:
        raise InputError(
            next(iter(preds.values()), None),
            f"no prediction pairs with a truth (predictions: {', '.join(preds) or 'none'}; "
            f"truths: {', '.join(truths) or 'none'})",
            "give matching files (paired by name without _discs/-discs/_labels/_seg/-seg/... endings) or --subjects",
        )
    return pairs, [n for n in truths if n not in preds], [n for n in preds if n not in truths]


class GridNote(UserWarning):
    """A prediction was put on its truth's grid (reoriented or resampled) before scoring."""


def _on_truth_grid(pred: Volume, truth: Volume) -> Volume:
    """``pred`` on ``truth``'s grid, warning (:class:`GridNote`) how; InputError when they do not overlap."""
    moved, how = on_grid(pred, truth)
    if how == "resampled" and pred.array.any() and not moved.array.any():
        raise InputError(
            pred.path, f"does not overlap its truth ({truth.path}) in physical space", "check that they are one scan"
        )
    if how == "reoriented":
        warnings.warn(
            f"{pred.path}: the truth's voxels in another axis order or direction; reoriented onto the truth's "
            "grid (exact, no resampling)",
            GridNote,
            stacklevel=3,
        )
    elif how == "resampled":
        warnings.warn(
            f"{pred.path}: on another grid than its truth ({truth.path}: shape {truth.shape}, spacing "
            f"{tuple(round(s, 3) for s in truth.spacing)}); resampled onto the truth's grid (nearest neighbour)",
            GridNote,
            stacklevel=3,
        )
    return moved


def check_same_grid(a: Volume, b: Volume, what: str = "truth") -> None:
    """InputError (naming ``a``'s file) unless ``a`` and ``b`` have the same shape and affine (to 1e-4 mm).

    Example:
        >>> v = Volume(np.zeros((2, 2, 2)), np.eye(4))
        >>> check_same_grid(v, v)
    """
    if a.shape != b.shape:
        raise InputError(
            a.path, f"shape {a.shape} differs from the {what}'s {b.shape} ({b.path})", "compare maps on the same grid"
        )
    if not np.allclose(a.affine, b.affine, rtol=0, atol=GEOMETRY_ATOL_MM):
        worst = float(np.abs(a.affine - b.affine).max())
        raise InputError(
            a.path,
            f"geometry (spacing/origin/direction) differs from the {what}'s ({b.path}) by up to {worst:.3g} mm",
            "compare maps on the same grid (write predictions in the scan's geometry)",
        )


def check_levels_named(volume: Volume, levels: Mapping[int, str]) -> None:
    """InputError unless every non-zero label value of ``volume`` is named by ``levels``.

    Example:
        >>> check_levels_named(Volume(np.ones((1, 1, 2), np.uint8), np.eye(4)), {1: "L5-S1"})
    """
    unknown = sorted(set(label_counts(volume.array)) - set(levels))
    if unknown:
        raise InputError(
            volume.path,
            f"has label value(s) {unknown} that the levels file does not name (it names {sorted(levels)})",
            "give --levels with every label value (a label,level CSV or ITK-SNAP .label file)",
        )


def evaluate_pair(pred: Volume, truth: Volume, levels: Mapping[int, str]) -> list[dict]:
    """Rows for all discs (``level = "all"``) and each level present in ``truth``, superior to inferior.

    Keys: level, label, dice, precision, recall, volume_ratio, true_mm3, pred_mm3, true_voxels,
    pred_voxels (volumes use ``truth.voxel_volume``). The prediction's label values are not used.

    Example:
        >>> truth = Volume(np.array([[[1, 1, 0, 2]]]), np.eye(4)); pred = truth.with_array(np.array([[[1, 0, 0, 1]]]))
        >>> [(r["level"], r["dice"]) for r in evaluate_pair(pred, truth, {1: "L5-S1", 2: "L4-L5"})]
        [('all', 0.8), ('L4-L5', 1.0), ('L5-S1', 0.6666666666666666)]
    """
    check_same_grid(pred, truth)
    check_levels_named(truth, levels)
    voxel = truth.voxel_volume
    rows = [{"level": "all", "label": None} | whole_scores(pred.array, truth.array, voxel)]
    for row in overlap_table(pred.array, truth.array, truth.spacing, ordered_levels(levels)):
        if row["true_voxels"]:
            rows.append(row | {"true_mm3": row["true_voxels"] * voxel, "pred_mm3": row["pred_voxels"] * voxel})
    return rows


def clinical_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Grade and age of every manifest name (:func:`manifest_names`) and level: name, level, grade, age.

    Example:
        >>> df = pd.DataFrame({"subject": ["a"], "session": [1], "age": [30.0], "grade_L4-L5": [2]})
        >>> clinical_table(df).query("level == 'L4-L5'")[["subject", "grade", "age"]].values.tolist()
        [['a', 2, 30.0]]
    """
    grades = discs_table(manifest).set_index(["subject", "level"])["grade"]
    ages = manifest.set_index(["subject", "session"])["age"] if "age" in manifest.columns else None
    rows = []
    for name, (subject, session) in manifest_names(manifest).items():
        age = float(ages.loc[(subject, session)]) if ages is not None else float("nan")
        rows += [{"subject": name, "level": "all", "grade": pd.NA, "age": age}]
        rows += [{"subject": name, "level": lv, "grade": grades.loc[(subject, lv)], "age": age} for lv in LEVELS]
    table = pd.DataFrame(rows, columns=["subject", "level", "grade", "age"])
    table["grade"] = pd.array(table["grade"], dtype="Int64")
    return table


def evaluate_files(
    pairs: Mapping[str, tuple[str | Path, str | Path]],
    levels: Mapping[int, str],
    manifest: pd.DataFrame | None = None,
    ignore_level_order: bool = False,
) -> pd.DataFrame:
    """Evaluate ``{subject: (prediction, truth)}``; grades and ages joined from ``manifest`` when given.

    A truth whose level names contradict its discs' world order is an InputError
    (:func:`discnet.postprocess.level_check.check_level_order`), a :class:`LevelOrderWarning` with ``ignore_level_order``.

    Columns :data:`COLUMNS`; ``grade`` (Int64, 1-5) is empty on ``all`` rows and for unknown grades.

    Example:
        >>> evaluate_files({}, {1: "L5-S1"}).columns.tolist()[:4]
        ['subject', 'level', 'label', 'dice']
    """
    rows = []
    for subject, (pred_path, truth_path) in pairs.items():
        truth = read_volume(truth_path, kind="label")
        if not truth.array.any():
            raise InputError(truth_path, "ground truth has no disc labelled (empty map)", "give this scan's truth map")
        line = check_level_order(truth, levels, ignore_level_order)
        if line:
            warnings.warn(line, LevelOrderWarning, stacklevel=2)
        pred = _on_truth_grid(read_volume(pred_path, kind="label"), truth)
        for row in evaluate_pair(pred, truth, levels):
            rows.append({"subject": subject, **row, "prediction": str(pred_path), "truth": str(truth_path)})
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("grade", "age")])
    table["label"] = pd.array(table["label"], dtype="Int64")
    if manifest is not None:
        table = table.merge(clinical_table(manifest), on=["subject", "level"], how="left")
    else:
        table["grade"], table["age"] = pd.array([pd.NA] * len(table), dtype="Int64"), np.nan
    return table[COLUMNS]


def describe(values) -> dict[str, float]:
    """n, mean, sample SD (ddof 1, as R's ``sd``), min and max of the non-NaN ``values``.

    Example:
        >>> describe([0.9, 0.8, float("nan")])["n"]
        2
    """
    x = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=float)
    if not x.size:
        return {"n": 0, "mean": np.nan, "sd": np.nan, "min": np.nan, "max": np.nan}
    sd = float(x.std(ddof=1)) if x.size > 1 else np.nan
    return {"n": int(x.size), "mean": float(x.mean()), "sd": sd, "min": float(x.min()), "max": float(x.max())}


def summary_table(metrics: pd.DataFrame, by: str = "level") -> pd.DataFrame:
    """Dice and volume ratio (n, mean, SD, min, max) per ``level`` (``all`` first) or per ``grade``.

    Example:
        >>> df = pd.DataFrame({"level": ["all", "all"], "dice": [0.9, 0.8], "volume_ratio": [1.0, 1.2]})
        >>> round(float(summary_table(df).loc[0, "dice_mean"]), 3)
        0.85
    """
    data = metrics if by == "level" else metrics[(metrics["level"] != "all") & metrics[by].notna()]
    groups = sorted(
        pd.unique(data[by]), key=(lambda g: (g != "all", level_sort_key(str(g)))) if by == "level" else None
    )
    rows = []
    for group in groups:
        part = data[data[by] == group]
        row = {by: group}
        for column in ("dice", "volume_ratio"):
            row |= {f"{column}_{k}": v for k, v in describe(part[column]).items()}
        rows.append(row)
    return pd.DataFrame(rows)
