"""discnet evaluate: name pairing, hand-worked rows, real sub11 masks (Convert3D oracle), grades/ages, errors."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from discnet.cli import main
from discnet.errors import InputError
from discnet.evaluation.evaluate import (
    COLUMNS,
    collect_label_files,
    describe,
    evaluate_pair,
    pair_files,
    subject_key,
    summary_table,
)
from discnet.evaluation.metrics import confusion, dice, overlap_table
from discnet.io.volume import Volume

LEVELS = {1: "L5-S1", 2: "L4-L5", 3: "L3-L4", 4: "L2-L3", 5: "L1-L2"}


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("sub11_discs.nii.gz", "sub11"),
        ("sub11_T2w_discs.nii.gz", "sub11"),  # discnet predict's name for sub11_T2w.nii.gz
        ("sub11_T2w.nii.gz", "sub11"),
        ("5_Labels.nii.gz", "5"),
        ("s01_ses2_seg_PRED.nrrd", "s01_ses2"),
        ("s01.mha", "s01"),
        ("_discs.nii", "_discs"),  # never strips a name to nothing
        ("a_discs_b.nii.gz", "a_discs_b"),
    ],
)
def test_subject_key(name, key):
    assert subject_key(Path("some/folder") / name) == key


def test_folder_listing_skips_scans_and_probabilities(tmp_path):
    for name in ("s2_discs.nii.gz", "s10_discs.nii.gz", "s2_T2w.nii.gz", "s2_prob.nii.gz", "notes.csv", ".s3.nii"):
        (tmp_path / name).touch()
    assert collect_label_files([tmp_path]) == {"s2": tmp_path / "s2_discs.nii.gz", "s10": tmp_path / "s10_discs.nii.gz"}
    (tmp_path / "s2_labels.nii.gz").touch()
    with pytest.raises(InputError, match="names subject 's2'"):
        collect_label_files([tmp_path])


def test_pair_files_lists_the_unpaired_and_refuses_only_when_nothing_pairs():
    pairs, unpaired, preds = pair_files({"a": Path("pa"), "c": Path("pc")}, {"a": Path("ta"), "b": Path("tb")})
    assert pairs == {"a": (Path("pa"), Path("ta"))} and unpaired == ["b"] and preds == ["c"]
    with pytest.raises(InputError, match="no prediction pairs with a truth"):
        pair_files({"c": Path("pc"), "d": Path("pd")}, {"a": Path("ta")})


def test_evaluate_scores_the_rest_and_pairs_itksnap_names(tmp_path, capsys):
    _small(tmp_path / "truth" / "s1-seg.nii.gz")  # ITK-SNAP's naming
    _small(tmp_path / "pred" / "s1-discs.nii.gz")
    _small(tmp_path / "pred" / "s7_discs.nii.gz")  # no truth: listed, the rest scored
    out = tmp_path / "m.csv"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"), "-o", str(out)]) == 0
    assert "1 prediction(s) without a truth file were skipped: s7" in capsys.readouterr().out
    assert set(pd.read_csv(out)["subject"]) == {"s1"}


def test_one_prediction_and_one_truth_pair_whatever_their_names(tmp_path):
    truth, pred = _small(tmp_path / "manual.nii.gz"), _small(tmp_path / "scan_out.nii.gz")
    out = tmp_path / "m.csv"
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "-o", str(out)]) == 0
    assert pd.read_csv(out).loc[0, "dice"] == 1.0


def test_evaluate_pair_hand_worked():
    truth = np.zeros((1, 3, 8), np.uint8)
    truth[0, 1, 0:2], truth[0, 1, 5:8] = 1, 2  # L5-S1: 2 voxels, L4-L5: 3 voxels; no L3-L4
    pred = np.zeros_like(truth)
    pred[0, 1, 0:3] = 9  # label values of the prediction are not used
    pred[0, 1, 6] = 2
    affine = np.diag([1.0, 1.0, 2.0, 1.0])  # 2 mm^3 voxels
    levels = {1: "L5-S1", 2: "L4-L5", 3: "L3-L4"}
    pred_before = pred.copy()
    rows = evaluate_pair(Volume(pred, affine), Volume(truth, affine), levels)
    assert np.array_equal(pred, pred_before)
    assert [r["level"] for r in rows] == ["all", "L4-L5", "L5-S1"]  # superior to inferior, absent level left out
    whole, l45, l51 = rows
    assert whole["label"] is None and whole["dice"] == pytest.approx(2 * 3 / (4 + 5))
    assert (whole["true_mm3"], whole["pred_mm3"], whole["true_voxels"], whole["pred_voxels"]) == (10.0, 8.0, 5, 4)
    assert (l51["dice"], l51["precision"], l51["recall"], l51["volume_ratio"]) == pytest.approx((0.8, 2 / 3, 1, 1.5))
    assert (l45["dice"], l45["precision"], l45["recall"], l45["volume_ratio"]) == pytest.approx((0.5, 1, 1 / 3, 1 / 3))
    assert (l45["label"], l45["true_mm3"], l45["pred_mm3"]) == (2, 6.0, 2.0)


def test_evaluate_pair_checks_grid_and_levels():
    truth = Volume(np.ones((2, 2, 2), np.uint8), np.eye(4), Path("t.nii"))
    with pytest.raises(InputError, match=r"shape \(2, 2, 3\) differs"):
        evaluate_pair(Volume(np.ones((2, 2, 3), np.uint8), np.eye(4), Path("p.nii")), truth, LEVELS)
    shifted = np.eye(4)
    shifted[0, 3] = 0.01
    with pytest.raises(InputError, match="geometry"):
        evaluate_pair(Volume(np.ones((2, 2, 2), np.uint8), shifted), truth, LEVELS)
    evaluate_pair(Volume(np.ones((2, 2, 2), np.uint8), np.eye(4) + 5e-5), truth, LEVELS)  # within 1e-4 mm
    with pytest.raises(InputError, match=r"label value\(s\) \[1\]"):
        evaluate_pair(truth, truth, {51: "L5-S1"})


def test_summaries():
    assert describe([0.9, 0.7, np.nan]) == pytest.approx({"n": 2, "mean": 0.8, "sd": 0.1414213, "min": 0.7, "max": 0.9})
    table = pd.DataFrame(
        {
            "level": ["all", "L5-S1", "L1-L2", "all", "L5-S1"],
            "dice": [0.9, 0.8, 0.95, 0.7, 0.6],
            "volume_ratio": [1.0, 0.9, 1.1, 1.2, np.nan],
            "grade": pd.array([pd.NA, 5, 2, pd.NA, 5], dtype="Int64"),
        }
    )
    by_level = summary_table(table)
    assert by_level["level"].tolist() == ["all", "L1-L2", "L5-S1"]
    assert by_level["dice_mean"].tolist() == pytest.approx([0.8, 0.95, 0.7])
    assert by_level["volume_ratio_n"].tolist() == [2, 1, 1]
    by_grade = summary_table(table, by="grade")
    assert by_grade["grade"].tolist() == [2, 5] and by_grade["dice_n"].tolist() == [1, 2]


# --- real masks ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sub11(lumbar_dir):
    image = nib.load(lumbar_dir / "sub11_discs.nii.gz")
    return np.asarray(image.dataobj), image


def _perturbed(truth: np.ndarray) -> np.ndarray:
    pred = truth.copy()
    pred[ndimage.binary_dilation(truth == 2) & (pred == 0)] = 2  # L4-L5 over-segmented
    pred[(truth == 4) & ~ndimage.binary_erosion(truth == 4)] = 0  # L2-L3 under-segmented
    pred[np.roll(truth == 1, 2, axis=0) & (pred == 0)] = 7  # L5-S1 shifted 2 mm, odd label value
    pred[(truth == 1) & ~np.roll(truth == 1, 2, axis=0)] = 0
    return pred


def _save(array, image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(np.uint8), image.affine, image.header), path)
    return path


def _manifest(lumbar_dir: Path, path: Path) -> Path:
    path.write_text(
        "subject,image,label,age,sex,grade_L4-L5,grade_L5-S1,grade_L1-L2\n"
        f"sub11,{lumbar_dir / 'sub11_T2w.nii.gz'},{lumbar_dir / 'sub11_discs.nii.gz'},31,F,II,4,\n"
        f"sub20,{lumbar_dir / 'sub20_T2w.nii.gz'},{lumbar_dir / 'sub20_discs.nii.gz'},25,M,1,1,1\n"
    )
    return path


def test_evaluate_sub11_with_grades_and_convert3d(sub11, lumbar_dir, tmp_path, capsys, c3d_overlap):
    truth, image = sub11
    pred = _perturbed(truth)
    _save(pred, image, tmp_path / "pred" / "sub11_T2w_discs.nii.gz")
    manifest = _manifest(lumbar_dir, tmp_path / "subjects.csv")
    out = tmp_path / "metrics.csv"
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(lumbar_dir), "-o", str(out)]
    assert main([*args, "--levels", str(lumbar_dir / "levels.csv"), "--subjects", str(manifest)]) == 0
    printed = capsys.readouterr().out
    assert "evaluated 1 subject(s), 5 disc(s)" in printed and "sub20, sub25" in printed
    table = pd.read_csv(out, dtype={"grade": "Int64"})
    assert table.columns.tolist() == COLUMNS
    assert table["level"].tolist() == ["all", "L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert (table["subject"] == "sub11").all() and (table["age"] == 31).all()
    assert table["grade"].tolist()[1:] == [pd.NA, pd.NA, pd.NA, 2, 4] and pd.isna(table["grade"][0])
    whole = table.iloc[0]
    assert whole["dice"] == pytest.approx(dice(pred, truth), abs=1e-12)
    expected = {r["level"]: r for r in overlap_table(pred, truth, image.header.get_zooms(), LEVELS)}
    for row in table.iloc[1:].itertuples():
        assert (row.true_voxels, row.pred_voxels) == (
            expected[row.level]["true_voxels"],
            expected[row.level]["pred_voxels"],
        )
        assert row.dice == pytest.approx(expected[row.level]["dice"], abs=1e-12)
    assert table.loc[1:, "pred_voxels"].sum() == whole["pred_voxels"]  # every predicted voxel counted once
    by_level = table.set_index("level")
    assert by_level.loc["L4-L5", "volume_ratio"] > 1 > by_level.loc["L2-L3", "volume_ratio"]
    assert by_level.loc["L1-L2", "dice"] == 1.0 and by_level.loc["L5-S1", "dice"] < 1.0
    # all-discs Dice equals Convert3D's on the binarised maps
    binary = {n: _save(a > 0, image, tmp_path / f"{n}_binary.nii.gz") for n, a in (("pred", pred), ("truth", truth))}
    size_p, size_t, both, c3d_dice = c3d_overlap(binary["pred"], binary["truth"], 1)
    assert (size_p, size_t, both) == (whole["pred_voxels"], whole["true_voxels"], confusion(pred, truth)[0])
    assert whole["dice"] == pytest.approx(c3d_dice, abs=1e-6)


def test_evaluate_with_manifest_as_truth(sub11, lumbar_dir, tmp_path, capsys):
    truth, image = sub11
    _save(truth, image, tmp_path / "pred" / "sub11_discs.nii.gz")
    out = tmp_path / "metrics.csv"
    manifest = _manifest(lumbar_dir, tmp_path / "subjects.csv")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--subjects", str(manifest), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert (table["dice"] == 1.0).all() and len(table) == 6
    assert table["truth"].str.endswith("sub11_discs.nii.gz").all()
    assert "1 truth file(s) without a prediction were skipped: sub20" in capsys.readouterr().out


def _small(path: Path, shape=(4, 4, 3), affine=None) -> Path:
    array = np.zeros(shape, np.uint8)
    array[1:3, 1:3, 1] = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


@pytest.mark.parametrize(
    ("pred_name", "shape", "match"),
    [
        ("s1_discs.nii.gz", (4, 5, 3), r"does not overlap its truth .* in physical space"),  # 100 mm away
    ],
)
def test_evaluate_errors_are_one_line(tmp_path, capsys, pred_name, shape, match):
    _small(tmp_path / "truth" / "s1_labels.nii.gz")
    far = np.array([[1, 0, 0, 100.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    pred = _small(tmp_path / "pred" / pred_name, shape, far)
    out = tmp_path / "metrics.csv"
    assert main(["evaluate", "--pred", str(pred), "--truth", str(tmp_path / "truth"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("discnet evaluate: error: ") and pred_name in err
    assert re.search(match, err)
    assert not out.exists()


def test_evaluate_needs_some_truth(tmp_path, capsys):
    pred = _small(tmp_path / "s1_discs.nii.gz")
    assert main(["evaluate", "--pred", str(pred), "-o", str(tmp_path / "m.csv")]) == 2
    assert "no ground truth given" in capsys.readouterr().err


def _grid_case(tmp_path, how: str):
    """An NRRD truth and a NIfTI prediction of it: the same voxels reordered, or on a finer grid."""
    from discnet.io.files import write_like

    truth = np.zeros((10, 12, 8), np.uint8)
    truth[2:8, 7:9, 1:7], truth[2:8, 3:5, 1:7] = 2, 1  # label 2 (L4-L5) above label 1 (L5-S1) along S
    affine = np.array([[0, 0, 3.0, -9], [1.0, 0, 0, 4], [0, 1.0, 0, -6], [0, 0, 0, 1]])  # axes: A, S, R
    reference = Volume(truth, affine)
    write_like(truth, reference, tmp_path / "sub1.nrrd")
    if how == "reoriented":  # slices in reversed order and the axes in another order (as from a DICOM series)
        pred = np.transpose(truth[:, :, ::-1], (2, 0, 1))
        moved = affine @ np.array([[0, 1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 7], [0, 0, 0, 1.0]])
    else:  # the same discs on a grid twice as fine in-plane
        pred = truth.repeat(2, axis=0).repeat(2, axis=1)
        moved = affine @ np.array([[0.5, 0, 0, -0.25], [0, 0.5, 0, -0.25], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    nib.save(nib.Nifti1Image(pred, moved), tmp_path / "sub1_discs.nii.gz")
    return tmp_path / "sub1_discs.nii.gz", tmp_path / "sub1.nrrd"


@pytest.mark.parametrize("how", ["reoriented", "resampled"])
def test_a_prediction_on_another_grid_is_compared_in_physical_space(how, tmp_path, capsys):
    pred, truth = _grid_case(tmp_path, how)
    out = tmp_path / "metrics.csv"
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "-o", str(out)]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and how in notes[0]
    table = pd.read_csv(out)
    assert table["dice"].tolist() == pytest.approx([1.0] * 3)
