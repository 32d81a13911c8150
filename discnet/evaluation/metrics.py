"""Volumetric similarity of segmentations (paper Appendix A): Dice, precision, recall, volume ratio.

All functions are pure numpy and treat any non-zero voxel as foreground. With TP, FP and FN the
true-positive, false-positive and false-negative voxel counts::

    Dice = 2TP / (2TP + FP + FN)     precision = TP / (TP + FP)
    recall = TP / (TP + FN)          volume ratio = (TP + FP) / (TP + FN) = recall / precision

Empty-mask conventions (applied everywhere, including :func:`overlap_table` rows):

- Dice is 1.0 when both masks are empty (perfect agreement on "nothing"), 0.0 when only one is.
- precision is ``nan`` when the prediction is empty (TP + FP = 0): there is nothing to be precise about.
- recall and volume ratio are ``nan`` when the truth is empty (TP + FN = 0): undefined denominators.

So a missed disc scores Dice 0, recall 0, volume ratio 0 and precision ``nan``; use ``np.nanmean`` to
average. Dice equals Convert3D's ``c3d pred.nii.gz truth.nii.gz -overlap 1``.

Example:
    >>> a = np.array([1, 1, 0, 0]); b = np.array([0, 1, 1, 0])
    >>> confusion(a, b), dice(a, b), volume_ratio(a, b)
    ((1, 1, 1), 0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from discnet.postprocess.levels import bounding_box

_NAN = float("nan")

#: Use the k-d tree when the bounding box holds more than this many voxels per false-positive voxel.
KDTREE_VOXELS_PER_QUERY = 25


def confusion(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """True-positive, false-positive and false-negative voxel counts (non-zero = foreground).

    Example:
        >>> confusion(np.array([1, 1, 0]), np.array([0, 1, 1]))
        (1, 1, 1)
    """
    p, t = _same_shape(pred, truth)
    p, t = p != 0, t != 0
    tp = int(np.count_nonzero(p & t))
    return tp, int(np.count_nonzero(p)) - tp, int(np.count_nonzero(t)) - tp


def scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Dice, precision, recall and volume ratio from voxel counts, with the module's empty conventions.

    Example:
        >>> scores_from_counts(0, 0, 0)
        {'dice': 1.0, 'precision': nan, 'recall': nan, 'volume_ratio': nan}
    """
    pred_n, true_n = tp + fp, tp + fn
    return {
        "dice": 2 * tp / (pred_n + true_n) if pred_n + true_n else 1.0,
        "precision": tp / pred_n if pred_n else _NAN,
        "recall": tp / true_n if true_n else _NAN,
        "volume_ratio": pred_n / true_n if true_n else _NAN,
    }


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice similarity coefficient; 1.0 when both masks are empty.

    Example:
        >>> dice(np.zeros(3), np.zeros(3)), dice(np.array([1, 0]), np.array([1, 1]))
        (1.0, 0.6666666666666666)
    """
    return scores_from_counts(*confusion(pred, truth))["dice"]


def precision(pred: np.ndarray, truth: np.ndarray) -> float:
    """TP / (TP + FP); ``nan`` when the prediction is empty.

    Example:
        >>> precision(np.array([1, 1]), np.array([1, 0]))
        0.5
    """
    return scores_from_counts(*confusion(pred, truth))["precision"]


def recall(pred: np.ndarray, truth: np.ndarray) -> float:
    """TP / (TP + FN); ``nan`` when the truth is empty.

    Example:
        >>> recall(np.array([1, 0]), np.array([1, 1]))
        0.5
    """
    return scores_from_counts(*confusion(pred, truth))["recall"]


def volume_ratio(pred: np.ndarray, truth: np.ndarray) -> float:
    """Predicted / true volume, (TP + FP) / (TP + FN); ``nan`` when the truth is empty.

    Example:
        >>> volume_ratio(np.array([1, 1, 1]), np.array([1, 1, 0]))
        1.5
    """
    return scores_from_counts(*confusion(pred, truth))["volume_ratio"]


def whole_scores(pred: np.ndarray, truth: np.ndarray, voxel_volume_mm3: float) -> dict[str, float]:
    """Scores of all discs together (both masks binarised with ``> 0``) plus volumes.

    Example:
        >>> whole_scores(np.array([2, 2, 0]), np.array([0, 1, 1]), 0.5)["true_mm3"]
        1.0
    """
    tp, fp, fn = confusion(pred, truth)
    return _row(tp, fp, fn, voxel_volume_mm3)


def overlap_table(
    pred_labels: np.ndarray,
    truth_labels: np.ndarray,
    spacing: Sequence[float],
    levels: Mapping[int, str],
) -> list[dict]:
    """Per-level scores, each predicted disc voxel counted against the nearest true disc.

    Every voxel with ``pred_labels > 0`` is assigned to the label of the nearest voxel with
    ``truth_labels > 0``, measured in mm with ``spacing`` (one value per array axis); voxels inside a true
    disc are assigned to that disc. So false positives count against the disc they are near, whatever
    label the prediction gave them. True labels missing from ``levels`` still attract voxels but get no
    row. When the truth has no disc at all, predicted voxels cannot be assigned and every row has
    ``pred_voxels == 0`` (see :func:`whole_scores` for the global view).

    Rows follow the order of ``levels`` and have keys: level, label, dice, precision, recall,
    volume_ratio, true_mm3, pred_mm3, true_voxels, pred_voxels.

    Example:
        >>> truth = np.array([[1, 1, 0, 0, 0, 2, 2]]); pred = np.array([[1, 1, 1, 0, 1, 1, 0]])
        >>> [(r["level"], r["pred_voxels"], r["dice"]) for r in overlap_table(pred, truth, (1, 1), {1: "A", 2: "B"})]
        [('A', 3, 0.8), ('B', 2, 0.5)]
    """
    pred, truth = _same_shape(pred_labels, truth_labels)
    truth = _labels(truth)
    spacing = _spacing(spacing, truth.ndim)
    n = max(int(truth.max(initial=0)), max(levels, default=0)) + 1
    fg = pred != 0
    true_counts = np.bincount(truth.ravel(), minlength=n)
    tp = np.bincount(truth[fg], minlength=n)
    pred_counts = tp.copy()
    pred_counts[0] = 0
    if tp[0] and true_counts[1:].any():
        pred_counts += np.bincount(_nearest_truth_labels(truth, fg & (truth == 0), spacing), minlength=n)
    voxel_mm3 = float(np.prod(spacing))
    return [
        {"level": name, "label": int(label)}
        | _row(int(tp[label]), int(pred_counts[label] - tp[label]), int(true_counts[label] - tp[label]), voxel_mm3)
        for label, name in levels.items()
    ]


def _nearest_truth_labels(truth: np.ndarray, where: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Label of the nearest non-zero ``truth`` voxel for each voxel of ``where`` (ties broken arbitrarily).

    Few query voxels: a k-d tree of the truth's surface voxels (the nearest truth voxel of an outside
    point is always on the surface). Many: one Euclidean feature transform of the bounding box.
    """
    box = bounding_box((truth != 0) | where)
    sub, query = truth[box], where[box]
    if np.count_nonzero(query) * KDTREE_VOXELS_PER_QUERY < sub.size:
        inside = sub != 0
        surface = np.argwhere(inside & ~ndimage.binary_erosion(inside))
        scale = np.asarray(spacing)
        _, nearest = cKDTree(surface * scale).query(np.argwhere(query) * scale, workers=-1)
        return sub[tuple(surface[nearest].T)]
    nearest = ndimage.distance_transform_edt(sub == 0, sampling=spacing, return_distances=False, return_indices=True)
    return sub.ravel()[np.ravel_multi_index(tuple(axis_index[query] for axis_index in nearest), sub.shape)]


def _row(tp: int, fp: int, fn: int, voxel_mm3: float) -> dict:
    return scores_from_counts(tp, fp, fn) | {
        "true_mm3": (tp + fn) * voxel_mm3,
        "pred_mm3": (tp + fp) * voxel_mm3,
        "true_voxels": tp + fn,
        "pred_voxels": tp + fp,
    }


def _same_shape(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    return pred, truth


def _labels(array: np.ndarray) -> np.ndarray:
    """``array`` as non-negative integer labels (no copy when it already is)."""
    if array.dtype == bool:
        return array.view(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise ValueError("truth labels must be whole numbers")
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError("truth labels must be >= 0")
    return array


def _spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    values = tuple(float(s) for s in np.ravel(spacing))
    if len(values) != ndim or not all(s > 0 for s in values):
        raise ValueError(f"spacing must be {ndim} positive values (mm per array axis), got {spacing}")
    return values
