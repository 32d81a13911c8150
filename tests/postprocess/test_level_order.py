"""Level names checked against anatomy (discnet.postprocess.level_check) through ``volumes`` and ``evaluate``: a label
map whose names contradict the discs' superior-to-inferior world order is refused, or measured with a
warning under --ignore-level-order; ``volumes`` takes only lumbar level names and sorts rows anatomically."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from discnet.cli import main
from discnet.io import Volume
from discnet.postprocess.level_check import order_problem


def column(values, affine=None) -> nib.Nifti1Image:
    """Five 3x3x2 discs stacked along the third (S) axis, ``values`` from the bottom up."""
    array = np.zeros((6, 6, 24), np.uint8)
    for i, value in enumerate(values):
        array[1:4, 1:4, 2 + 4 * i : 4 + 4 * i] = value
    return nib.Nifti1Image(array, np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine)


@pytest.mark.parametrize("flip", [False, True])
def test_order_follows_world_not_voxel_order(flip):
    # default table: 1 = L5-S1 (bottom) ... 5 = L1-L2 (top); a flipped S axis reverses voxel order only
    affine = np.diag([1.0, 1.0, -2.0 if flip else 2.0, 1.0])
    values = [5, 4, 3, 2, 1] if flip else [1, 2, 3, 4, 5]
    image = column(values, affine)
    levels = {1: "L5-S1", 2: "L4-L5", 3: "L3-L4", 4: "L2-L3", 5: "L1-L2"}
    assert order_problem(Volume(np.asarray(image.dataobj), affine), levels) is None
    reversed_ = Volume(np.asarray(column(values[::-1], affine).dataobj), affine)
    assert "labels 1, 2, 3, 4, 5" in order_problem(reversed_, levels)


def test_volumes_refuses_contradicting_names_and_overrides(tmp_path, capsys):
    nib.save(column([5, 4, 3, 2, 1]), tmp_path / "a_discs.nii.gz")  # label 5 is the most inferior disc
    out = tmp_path / "volumes.csv"
    assert main(["volumes", str(tmp_path / "a_discs.nii.gz"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "level names contradict anatomy" in err and "--ignore-level-order" in err and not out.exists()
    assert main(["volumes", str(tmp_path / "a_discs.nii.gz"), "-o", str(out), "--ignore-level-order"]) == 0
    assert "warning:" in capsys.readouterr().err and out.is_file()
    levels = tmp_path / "levels.csv"
    levels.write_text("label,level\n1,L1-L2\n2,L2-L3\n3,L3-L4\n4,L4-L5\n5,L5-S1\n")
    assert main(["volumes", str(tmp_path / "a_discs.nii.gz"), "--levels", str(levels), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert table["level"].tolist() == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert table["label"].tolist() == [1, 2, 3, 4, 5]


def test_volumes_takes_only_lumbar_level_names(tmp_path, capsys):
    nib.save(column([1, 2, 3, 4, 5]), tmp_path / "a.nii.gz")
    levels = tmp_path / "levels.csv"
    levels.write_text("label,level\n1,L5-S1\n2,L4-L5\n3,L3-L4\n4,L2-L3\n5,disc five\n")
    out = tmp_path / "v.csv"
    assert main(["volumes", str(tmp_path / "a.nii.gz"), "--levels", str(levels), "-o", str(out)]) == 2
    assert "unknown level(s) ['disc five']" in capsys.readouterr().err and not out.exists()


def test_evaluate_refuses_truth_with_contradicting_names(tmp_path, capsys):
    nib.save(column([5, 4, 3, 2, 1]), tmp_path / "s1_seg.nii.gz")
    nib.save(column([1, 1, 1, 1, 1]), tmp_path / "s1_pred.nii.gz")
    args = ["evaluate", "--pred", str(tmp_path / "s1_pred.nii.gz"), "--truth", str(tmp_path / "s1_seg.nii.gz")]
    out = tmp_path / "m.csv"
    assert main([*args, "-o", str(out)]) == 2
    assert "level names contradict anatomy" in capsys.readouterr().err and not out.exists()
    assert main([*args, "-o", str(out), "--ignore-level-order"]) == 0
    assert "warning:" in capsys.readouterr().err
    table = pd.read_csv(out)
    assert table.loc[table["level"] == "L1-L2", "label"].item() == 5  # the name the user forced
