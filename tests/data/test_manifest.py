"""subjects.csv: validation errors name the CSV and row; paths, sessions, grades; geometry; save round trip."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from discnet.data.manifest import discs_table, grade_columns, load_manifest, load_manifest_and_style, save_manifest
from discnet.errors import InputError
from discnet.spine import LEVELS


def _csv(folder, text, name="subjects.csv"):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _nifti(path, shape=(4, 5, 6), affine=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(
        nib.Nifti1Image(np.zeros(shape, np.uint8), np.diag([0.5, 0.5, 3.0, 1.0]) if affine is None else affine), path
    )
    return path


def _load(path, **kwargs):
    kwargs = {"require_labels": False, "check_files": False} | kwargs
    return load_manifest(path, **kwargs)


def test_paths_resolved_relative_to_csv_folder_and_absolute_kept(tmp_path):
    elsewhere = tmp_path / "other" / "b.nii.gz"
    path = _csv(tmp_path / "study", f"subject,image,label\na,scans/a.nii.gz,../labels/a.nii.gz\nb,{elsewhere},\n")
    df = _load(path)
    assert df["image"].tolist() == [str(tmp_path / "study" / "scans" / "a.nii.gz"), str(elsewhere)]
    assert df.loc[0, "label"] == str(tmp_path / "labels" / "a.nii.gz")
    assert pd.isna(df.loc[1, "label"])


def test_session_defaults_to_one_and_grades_normalised(tmp_path):
    path = _csv(
        tmp_path, "Subject,image,grade_L4-L5,grade_l5_s1,age\na,a.nii,IV,5,61\nb,b.nii,ii,,\nc,c.nii,3.0,NA,45.5\n"
    )
    df = _load(path)
    assert df["session"].tolist() == [1, 1, 1] and df["session"].dtype == np.int64
    assert grade_columns(df) == ["grade_L4-L5", "grade_L5-S1"]
    assert df["grade_L4-L5"].dtype == "Int64"
    assert df["grade_L4-L5"].tolist() == [4, 2, 3]
    assert df["grade_L5-S1"].iloc[0] == 5 and df["grade_L5-S1"].isna().sum() == 2
    assert df["age"].iloc[0] == 61 and np.isnan(df["age"].iloc[1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image,label\na.nii,b.nii\n", "missing required column.*subject"),
        ("subject,image\n", "no subject rows"),
        ("", "manifest is empty"),
        ("subject,image\na,a.nii,extra\n", "row 1 has 3 fields but the header 2"),
        ("subject,image\n,a.nii\n", "row 1.*empty subject name"),
        ("subject,image\nx,a.nii\n../../x,b.nii\n", r"row 2 \(subject '../../x'\).*not safe"),
        ("subject,image\na/b,a.nii\n", "not safe"),
        ("subject,image\na\\b,a.nii\n", "not safe"),
        ("subject,image\n..,a.nii\n", "not safe"),
        (
            "subject,image,session\na,a.nii,1\nb,b.nii,1\na,c.nii,1\n",
            "subject 'a' session 1 appears more than once .rows 1, 3",
        ),
        ("subject,image\na,a.nii\na,b.nii\n", "appears more than once"),
        ("subject,image,session\na,a.nii,first\n", "row 1.*session 'first'"),
        (
            "subject,image,grade_L4-L5\na,a.nii,II\nb,b.nii,VI\n",
            r"row 2 \(subject 'b'\): grade_L4-L5 'VI' is not a Pfirrmann grade",
        ),
        ("subject,image,grade_L4-L5\na,a.nii,0\n", "'0' is not a Pfirrmann grade"),
        ("subject,image,grade_T12-L1\na,a.nii,II\n", "grade_T12-L1.*unknown level"),
        (
            "subject,image,split\na,a.nii,train\nb,b.nii,holdout\n",
            r"row 2.*split 'holdout' is not one of train, val, test",
        ),
        ("subject,image,age\na,a.nii,old\n", "age 'old'"),
        ("subject,image,image\na,a.nii,b.nii\n", "more than once"),
        ("subject,image\na,\n", "row 1.*empty image path"),
    ],
)
def test_validation_errors_name_file_and_row(tmp_path, text, message):
    path = _csv(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        _load(path)
    assert str(path) in str(err.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        _load(tmp_path / "nope.csv")


def test_sessions_of_a_subject_share_one_split(tmp_path):
    path = _csv(tmp_path, "subject,image,session,split\na,a1.nii,1,train\na,a2.nii,2,val\n")
    with pytest.raises(InputError, match="subject 'a' has sessions in different splits"):
        _load(path)


def test_split_aliases_and_empty_split(tmp_path):
    df = _load(_csv(tmp_path, "subject,image,split\na,a.nii,Training\nb,b.nii,validation\nc,c.nii,\n"))
    assert df["split"].tolist()[:2] == ["train", "val"] and pd.isna(df.loc[2, "split"])


def test_labels_required_and_missing_files(tmp_path):
    path = _csv(tmp_path, "subject,image\na,a.nii.gz\n")
    with pytest.raises(InputError, match="missing required column.*label"):
        load_manifest(path)
    with pytest.raises(InputError, match=r"row 1 \(subject 'a'\): image file not found: .*a.nii.gz"):
        load_manifest(path, require_labels=False)
    _nifti(tmp_path / "a.nii.gz")
    path = _csv(tmp_path, "subject,image,label\na,a.nii.gz,\n")
    with pytest.raises(InputError, match="row 1.*empty label path"):
        load_manifest(path)
    path = _csv(tmp_path, "subject,image,label\na,a.nii.gz,seg/a.nii.gz\n")
    with pytest.raises(InputError, match="label file not found"):
        load_manifest(path)
    _nifti(tmp_path / "seg" / "a.nii.gz")
    assert load_manifest(path, check_geometry=True)["label"].iloc[0] == str(tmp_path / "seg" / "a.nii.gz")


def test_geometry_mismatch_in_shape_and_in_affine(tmp_path):
    _nifti(tmp_path / "img.nii.gz")
    _nifti(tmp_path / "small.nii.gz", shape=(4, 5, 5))
    shifted = np.diag([0.5, 0.5, 3.0, 1.0])
    shifted[0, 3] = 0.01
    _nifti(tmp_path / "shifted.nii.gz", affine=shifted)
    nearly = np.diag([0.5, 0.5, 3.0 + 1e-6, 1.0])
    _nifti(tmp_path / "nearly.nii.gz", affine=nearly)
    path = _csv(tmp_path, "subject,image,label\na,img.nii.gz,small.nii.gz\n")
    assert load_manifest(path)["subject"].tolist() == ["a"]  # no geometry check by default
    with pytest.raises(InputError, match=r"subject 'a'.*differ in shape: \(4, 5, 6\) vs \(4, 5, 5\)"):
        load_manifest(path, check_geometry=True)
    path = _csv(tmp_path, "subject,image,label\na,img.nii.gz,nearly.nii.gz\nb,img.nii.gz,shifted.nii.gz\n")
    with pytest.raises(InputError, match=r"row 2 \(subject 'b'\).*same shape \(4, 5, 6\), different geometry"):
        load_manifest(path, check_geometry=True)


def test_save_round_trip_keeps_columns_style_and_relative_paths(tmp_path):
    elsewhere = str(tmp_path / "abs" / "b.nii")
    text = f"id_extra,subject,image,grade_L4-L5,age\nx,a,scans/a.nii,IV,61\ny,b,{elsewhere},,30\n"
    df, style = load_manifest_and_style(_csv(tmp_path / "study", text), require_labels=False, check_files=False)
    df["split"] = ["train", "val"]
    out = save_manifest(df, tmp_path / "study" / "out.csv", style)
    assert out.read_text().splitlines() == [
        "id_extra,subject,image,grade_L4-L5,age,split",
        "x,a,scans/a.nii,IV,61,train",
        f"y,b,{elsewhere},,30,val",
    ]
    moved = save_manifest(df, tmp_path / "moved" / "subjects.csv", style)
    back = _load(moved)
    assert back["image"].tolist() == df["image"].tolist()
    assert "../study/scans/a.nii" in moved.read_text()
    pd.testing.assert_series_equal(back["grade_L4-L5"], df["grade_L4-L5"])
    assert not list((tmp_path / "moved").glob(".*tmp*"))


def test_save_keeps_explicit_sessions_and_numeric_grades(tmp_path):
    path = _csv(tmp_path, "subject,image,session,grade_L1-L2\na,a1.nii,1,2\na,a2.nii,2,2\n")
    df, style = load_manifest_and_style(path, require_labels=False, check_files=False)
    save_manifest(df, tmp_path / "subjects.csv", style)
    assert (tmp_path / "subjects.csv").read_text().splitlines()[1:] == ["a,a1.nii,1,2", "a,a2.nii,2,2"]
    with pytest.raises(InputError, match="is a folder"):
        save_manifest(df, tmp_path)


def test_discs_table_one_row_per_subject_level_of_first_session(tmp_path):
    text = (
        "subject,image,session,age,grade_L4-L5,grade_L5-S1\nb,b2.nii,2,70,,V\nb,b1.nii,1,70,III,\na,a1.nii,1,30,I,II\n"
    )
    discs = discs_table(_load(_csv(tmp_path, text)))
    assert len(discs) == 2 * len(LEVELS)
    assert discs["subject"].tolist()[:: len(LEVELS)] == ["b", "a"]
    assert set(discs["session"]) == {1} and discs["grade"].dtype == "Int64"
    b = discs[discs["subject"] == "b"].set_index("level")["grade"]
    assert b["L4-L5"] == 3 and b["L5-S1"] == 5 and b[["L1-L2", "L2-L3", "L3-L4"]].isna().all()
    assert discs.loc[discs["subject"] == "a", "age"].eq(30).all()


def test_saving_drops_only_the_columns_loading_added(tmp_path):
    """A manifest without session or label columns is written back without them, and the table
    carries no hidden state (what saving needs is the style, passed explicitly)."""
    path = _csv(tmp_path, "subject,image,grade_L5-S1\na,a.nii,IV\n")
    df, style = load_manifest_and_style(path, require_labels=False, check_files=False)
    assert set(style.defaulted) == {"session", "label"} and style.roman and not df.attrs
    save_manifest(df, tmp_path / "again.csv", style)
    assert (tmp_path / "again.csv").read_text().splitlines() == ["subject,image,grade_L5-S1", "a,a.nii,IV"]
