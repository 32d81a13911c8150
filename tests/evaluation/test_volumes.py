"""discnet volumes: label-value matching rule, |det| voxel volume, and the published ivd-volumes table."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from discnet.cli import main
from discnet.errors import InputError
from discnet.evaluation.volumes import (
    COLUMNS,
    LabelMappingWarning,
    label_counts,
    match_labels,
    volume_rows,
    volumes_table,
)

IVD = {51: "L5-S1", 102: "L4-L5", 153: "L3-L4", 204: "L2-L3", 255: "L1-L2"}


def test_label_counts():
    assert label_counts(np.array([[0, 3], [3, 70000]], np.uint32)) == {3: 2, 70000: 1}
    assert label_counts(np.array([0, 2, 2, 5], np.int16)) == {2: 2, 5: 1}
    assert label_counts(np.zeros(3, np.uint8)) == {}


def test_levels_values_are_used_as_they_are():
    assert match_labels({51: 100, 255: 1}, IVD) == ({51: 51, 255: 255}, [])  # tiny but named: kept


def test_other_values_matched_by_sorted_order_with_stray_labels_ignored():
    counts = {4: 9506, 7: 11106, 11: 9872, 14: 10749, 18: 8344, 255: 10}  # ivd-volumes subject 5
    mapping, lines = match_labels(counts, IVD, "5_Labels.nii.gz")
    assert mapping == {4: 51, 7: 102, 11: 153, 14: 204, 18: 255}
    assert lines == [
        "5_Labels.nii.gz: ignored stray label(s) 255 (10 voxels), below 1% of a disc's size",
        "5_Labels.nii.gz: label values are not the levels file's; matched by sorted value: "
        "4=L5-S1, 7=L4-L5, 11=L3-L4, 14=L2-L3, 18=L1-L2",
    ]


@pytest.mark.parametrize(
    "counts",
    [
        {4: 900, 7: 1000, 11: 950, 14: 990},  # four discs for five levels
        {4: 900, 7: 1000, 11: 950, 14: 990, 18: 800, 20: 700},  # six large labels
    ],
)
def test_unmatchable_labels_are_an_input_error(counts):
    with pytest.raises(InputError, match="cannot be matched one-to-one"):
        match_labels(counts, IVD, "x.nii.gz")


def test_volume_rows_order_warning_and_determinant():
    with pytest.warns(LabelMappingWarning, match="matched by sorted value: 3=L5-S1, 9=L4-L5"):
        rows = volume_rows({3: 10, 9: 4}, 0.5, {1: "L5-S1", 2: "L4-L5"})
    assert rows == [
        {"level": "L4-L5", "label": 9, "voxels": 4, "volume_mm3": 2.0, "volume_cm3": 0.002},
        {"level": "L5-S1", "label": 3, "voxels": 10, "volume_mm3": 5.0, "volume_cm3": 0.005},
    ]


def test_voxel_volume_is_the_affine_determinant(tmp_path):
    array = np.zeros((3, 4, 5), np.uint8)
    array[0, :2, :] = 1
    affine = np.array([[0.0, 0.0, 3.0, 0], [0.0, 2.0, 0.0, 0], [0.5, 0.0, 0.0, 0], [0, 0, 0, 1]])  # axes swapped
    nib.save(nib.Nifti1Image(array, affine), tmp_path / "s_discs.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = volumes_table({"s": tmp_path / "s_discs.nii.gz"}, {1: "L5-S1"})
    assert table.columns.tolist() == COLUMNS
    assert table[["subject", "level", "label", "voxels"]].values.tolist() == [["s", "L5-S1", 1, 10]]
    assert table["volume_mm3"].tolist() == pytest.approx([10 * 3.0 * 2.0 * 0.5])


def test_published_ivd_volumes(shared_dir, tmp_path, capsys):
    folder = shared_dir / "data" / "ivd-volumes"
    out = tmp_path / "volumes.csv"
    assert main(["volumes", str(folder), "--levels", str(folder / "levels.csv"), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "measured 50 disc(s) in 10 file(s)" in captured.out
    warned = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 2 and all("5_Labels.nii.gz" in line for line in warned)
    assert "4=L5-S1, 7=L4-L5, 11=L3-L4, 14=L2-L3, 18=L1-L2" in warned[1]
    got = pd.read_csv(out).pivot(index="subject", columns="level", values="volume_cm3")
    reference = pd.read_csv(folder / "reference_volumes_cm3.csv").set_index("subject")
    assert sorted(got.index) == sorted(reference.index) == list(range(1, 11))
    levels = list(IVD.values())
    rel = (got.loc[reference.index, levels] / reference[levels] - 1).abs()
    assert rel.to_numpy().max() < 1e-4, rel
