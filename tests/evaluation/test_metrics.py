"""Segmentation metrics: hand-worked cases, properties, nearest-disc assignment and a Convert3D oracle."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

import discnet.evaluation.metrics as metrics
from discnet.evaluation.metrics import (
    confusion,
    dice,
    overlap_table,
    precision,
    recall,
    scores_from_counts,
    volume_ratio,
    whole_scores,
)

NAN = float("nan")
LUMBAR_LEVELS = {1: "L5-S1", 2: "L4-L5", 3: "L3-L4", 4: "L2-L3", 5: "L1-L2"}


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


@pytest.mark.parametrize(
    ("pred", "truth", "counts", "expected"),
    [
        ([1, 1, 0, 0], [0, 1, 1, 0], (1, 1, 1), (0.5, 0.5, 0.5, 1.0)),
        ([1, 1, 1, 1], [1, 1, 0, 0], (2, 2, 0), (2 / 3, 0.5, 1.0, 2.0)),
        ([1, 0, 0, 0], [1, 1, 1, 1], (1, 0, 3), (0.4, 1.0, 0.25, 0.25)),
        ([3, 2, 0, 0], [1, 5, 0, 0], (2, 0, 0), (1.0, 1.0, 1.0, 1.0)),  # labels: non-zero = foreground
        ([0, 0, 0, 0], [0, 0, 0, 0], (0, 0, 0), (1.0, NAN, NAN, NAN)),  # both empty
        ([0, 0, 0, 0], [0, 1, 1, 0], (0, 0, 2), (0.0, NAN, 0.0, 0.0)),  # missed disc
        ([1, 0, 0, 0], [0, 0, 0, 0], (0, 1, 0), (0.0, 0.0, NAN, NAN)),  # no truth
        ([1, 0, 0, 0], [0, 0, 1, 1], (0, 1, 2), (0.0, 0.0, 0.0, 0.5)),  # disjoint
    ],
)
def test_hand_worked_scores(pred, truth, counts, expected):
    pred, truth = np.array(pred), np.array(truth)
    assert confusion(pred, truth) == counts
    got = (dice(pred, truth), precision(pred, truth), recall(pred, truth), volume_ratio(pred, truth))
    assert all(same(g, e) for g, e in zip(got, expected, strict=True)), got
    assert all(same(g, e) for g, e in zip(scores_from_counts(*counts).values(), expected, strict=True))


def test_inputs_not_modified_and_shape_checked():
    pred, truth = np.array([[2, 0], [1, 1]]), np.array([[1, 0], [0, 2]])
    copies = pred.copy(), truth.copy()
    overlap_table(pred, truth, (1, 1), {1: "A", 2: "B"})
    assert np.array_equal(pred, copies[0]) and np.array_equal(truth, copies[1])
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2)), np.zeros((2, 3)))


@st.composite
def mask_pairs(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
    return draw(hnp.arrays(bool, shape)), draw(hnp.arrays(bool, shape))


@settings(deadline=None, max_examples=150)
@given(mask_pairs())
def test_dice_properties(pair):
    a, b = pair
    d = dice(a, b)
    assert d == dice(b, a)
    assert 0.0 <= d <= 1.0
    assert (d == 1.0) == np.array_equal(a, b)  # including both empty, by convention
    p, r = precision(a, b), recall(a, b)
    if p + r > 0:
        assert d == pytest.approx(2 * p * r / (p + r))


@settings(deadline=None, max_examples=150)
@given(mask_pairs())
def test_volume_ratio_is_recall_over_precision(pair):
    a, b = pair
    v, p, r = volume_ratio(a, b), precision(a, b), recall(a, b)
    if b.any():
        assert v == pytest.approx(a.sum() / b.sum())
        if a.any():
            assert v * p == pytest.approx(r)
        if p > 0:
            assert v == pytest.approx(r / p)
    else:
        assert math.isnan(v) and math.isnan(r)


def test_false_positive_blob_goes_to_physically_nearest_disc():
    truth = np.zeros((1, 9, 6), np.uint8)
    truth[0, 0:2, 0:2] = 1  # disc 1: 4 voxels
    truth[0, 6:9, 4:6] = 2  # disc 2: 6 voxels
    pred = truth.copy()
    pred[0, 4, 0:2] = 7  # false-positive blob; its predicted label does not matter
    levels = {1: "L5-S1", 2: "L4-L5"}
    # unit spacing: the blob is 3 mm from disc 1 and >= sqrt(2^2 + 3^2) = 3.6 mm from disc 2
    near, far = overlap_table(pred, truth, (1.0, 1.0, 1.0), levels)
    assert (near["level"], near["label"], far["level"], far["label"]) == ("L5-S1", 1, "L4-L5", 2)
    assert (near["true_voxels"], near["pred_voxels"], far["true_voxels"], far["pred_voxels"]) == (4, 6, 6, 6)
    assert near["dice"] == pytest.approx(0.8) and near["precision"] == pytest.approx(4 / 6)
    assert near["recall"] == 1.0 and near["volume_ratio"] == pytest.approx(1.5)
    assert (near["true_mm3"], near["pred_mm3"]) == (4.0, 6.0)
    assert far["dice"] == far["precision"] == far["recall"] == far["volume_ratio"] == 1.0
    # 5 mm rows: the blob is 15 mm from disc 1 but sqrt(10^2 + 3^2) = 10.4 mm from disc 2
    far, near = overlap_table(pred, truth, (1.0, 5.0, 1.0), levels)
    assert (far["pred_voxels"], near["pred_voxels"]) == (4, 8)
    assert far["dice"] == 1.0 and near["dice"] == pytest.approx(12 / 14)
    assert (near["true_mm3"], near["pred_mm3"]) == (30.0, 40.0)


ROW_KEYS = ("level", "label", "dice", "precision", "recall", "volume_ratio")
ROW_KEYS += ("true_mm3", "pred_mm3", "true_voxels", "pred_voxels")


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [  # (pred_voxels, true_voxels, dice) per row A (label 1), B (label 2)
        ([1, 1, 1, 0, 1, 1, 0], [1, 1, 0, 0, 0, 2, 2], [(3, 2, 0.8), (2, 2, 0.5)]),
        ([0, 0, 0, 0, 2, 2, 2], [1, 1, 0, 0, 0, 2, 2], [(0, 2, 0.0), (3, 2, 0.8)]),  # missed disc A
        ([1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0], [(2, 2, 1.0), (0, 0, 1.0)]),  # B absent: both empty
        ([1, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0], [(0, 0, 1.0), (0, 0, 1.0)]),  # no truth: unassigned
        ([0, 1, 0, 1, 1, 1, 1], [1, 0, 0, 3, 3, 3, 2], [(1, 1, 0.0), (1, 1, 1.0)]),  # 3 has no row
    ],
)
def test_overlap_table_rows(pred, truth, expected):
    rows = overlap_table(np.array(pred), np.array(truth), (0.5,), {1: "A", 2: "B"})
    assert [(r["pred_voxels"], r["true_voxels"]) for r in rows] == [e[:2] for e in expected]
    assert [r["dice"] for r in rows] == pytest.approx([e[2] for e in expected])
    assert all(tuple(r) == ROW_KEYS for r in rows)


@pytest.mark.parametrize("path", ["kdtree", "feature_transform"])
def test_nearest_assignment_matches_brute_force(monkeypatch, path):
    monkeypatch.setattr(metrics, "KDTREE_VOXELS_PER_QUERY", 0 if path == "kdtree" else 10**12)
    rng = np.random.default_rng(3)
    truth = np.zeros((9, 11, 7), np.uint8)
    truth[1:3, 1:4, 1:3], truth[5:8, 6:10, 2:6], truth[0:2, 8:11, 5:7] = 1, 2, 3
    query = (rng.random(truth.shape) < 0.3) & (truth == 0)
    spacing = (0.7, 1.3, 2.9)
    got = metrics._nearest_truth_labels(truth, query, spacing)
    points, seeds = np.argwhere(query) * spacing, np.argwhere(truth > 0)
    dist = np.linalg.norm(points[:, None, :] - (seeds * spacing)[None, :, :], axis=2)
    nearest = dist.min(axis=1, keepdims=True)
    seed_labels = truth[tuple(seeds.T)]
    for label, row, best in zip(got, dist, nearest, strict=True):
        assert label in seed_labels[np.isclose(row, best)]


def test_whole_scores_binarises_labels():
    pred, truth = np.array([2, 5, 0, 1]), np.array([1, 1, 3, 0])
    scores = whole_scores(pred, truth, voxel_volume_mm3=2.0)
    assert scores["dice"] == pytest.approx(2 * 2 / 6)
    assert (scores["true_voxels"], scores["pred_voxels"], scores["true_mm3"], scores["pred_mm3"]) == (3, 3, 6.0, 6.0)


@pytest.mark.parametrize(
    ("truth", "spacing", "match"),
    [
        (np.array([0, -1, 1]), (1.0,), ">= 0"),
        (np.array([0, 1.5, 1]), (1.0,), "whole numbers"),
        (np.array([0, 1, 1]), (1.0, 1.0), "spacing"),
        (np.array([0, 1, 1]), (0.0,), "spacing"),
    ],
)
def test_overlap_table_rejects_bad_input(truth, spacing, match):
    with pytest.raises(ValueError, match=match):
        overlap_table(np.ones(3), truth, spacing, {1: "A"})


def test_float_labels_accepted():
    rows = overlap_table(np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 2.0]), (1.0,), {1: "A", 2: "B"})
    assert [r["pred_voxels"] for r in rows] == [2, 0]


# --- Convert3D oracle -------------------------------------------------------------------------------

OVL = re.compile(r"OVL: (\d+), (\d+), (\d+), (\d+), ([-+.\deE]+), ([-+.\deE]+)")


def _c3d_runner():
    """A function running c3d arguments and returning stdout, or None when Convert3D is unavailable."""
    exe = shutil.which("c3d", path=str(Path(sys.executable).parent)) or shutil.which("c3d")
    if exe:
        return lambda args: subprocess.run([exe, *args], check=True, capture_output=True, text=True).stdout
    try:
        import picsl_c3d  # the picsl-c3d wheel ships the Convert3D library, not always the executable
    except ImportError:
        return None

    def run(args):
        out = io.StringIO()
        picsl_c3d.Convert3D().execute(" ".join(args), out=out)
        return out.getvalue()

    return run


def _c3d_overlap(run, a: Path, b: Path, label: int) -> tuple[int, int, int, float]:
    match = OVL.search(run([str(a), str(b), "-overlap", str(label)]))
    assert match, "unexpected c3d -overlap output"
    _, size_a, size_b, both, dsc, _ = match.groups()
    return int(size_a), int(size_b), int(both), float(dsc)


def _perturbed(truth: np.ndarray) -> np.ndarray:
    pred = truth.copy()
    pred[ndimage.binary_dilation(truth == 2, iterations=2) & (pred == 0)] = 2
    pred[(truth == 4) & ~ndimage.binary_erosion(truth == 4)] = 0
    pred[np.roll(truth == 5, 3, axis=0) & (pred == 0)] = 5
    pred[truth == 1] = 0
    pred[np.roll(truth == 1, -2, axis=1)] = 1
    return pred


@pytest.mark.parametrize("prediction", ["perturbed", "sub20"])
def test_dice_agrees_with_convert3d(lumbar_dir, tmp_path, prediction):
    run = _c3d_runner()
    if run is None:
        pytest.skip("Convert3D (c3d / picsl_c3d) not installed")
    image = nib.load(lumbar_dir / "sub11_discs.nii.gz")
    truth = np.asarray(image.dataobj)
    pred = (
        _perturbed(truth)
        if prediction == "perturbed"
        else np.asarray(nib.load(lumbar_dir / "sub20_discs.nii.gz").dataobj)
    )
    paths = {}
    for name, labels in {"pred": pred, "truth": truth}.items():
        for kind, array in {"labels": labels, "binary": labels > 0}.items():
            paths[name, kind] = tmp_path / f"{name}_{kind}.nii.gz"
            nib.save(nib.Nifti1Image(array.astype(np.uint8), image.affine), paths[name, kind])
    size_p, size_t, both, c3d_dice = _c3d_overlap(run, paths["pred", "binary"], paths["truth", "binary"], 1)
    tp, fp, fn = confusion(pred, truth)
    assert (size_p, size_t, both) == (tp + fp, tp + fn, tp)
    assert dice(pred, truth) == pytest.approx(c3d_dice, abs=1e-6)
    assert 0 < c3d_dice < 1
    for label in LUMBAR_LEVELS:
        *_, c3d_level = _c3d_overlap(run, paths["pred", "labels"], paths["truth", "labels"], label)
        assert dice(pred == label, truth == label) == pytest.approx(c3d_level, abs=1e-6)


def test_overlap_table_on_real_masks(lumbar_dir):
    image = nib.load(lumbar_dir / "sub11_discs.nii.gz")
    truth = np.asarray(image.dataobj)
    pred = _perturbed(truth)
    rows = overlap_table(pred, truth, image.header.get_zooms(), LUMBAR_LEVELS)
    by_level = {r["level"]: r for r in rows}
    assert [r["true_voxels"] for r in rows] == [int((truth == k).sum()) for k in LUMBAR_LEVELS]
    assert sum(r["pred_voxels"] for r in rows) == int((pred > 0).sum())  # every predicted voxel assigned once
    assert by_level["L4-L5"]["volume_ratio"] > 1 > by_level["L2-L3"]["volume_ratio"]
    assert by_level["L2-L3"]["precision"] == 1.0
