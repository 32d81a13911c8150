"""Synthetic lumbar spine phantoms: labels, geometry, grades, determinism and the ``synth`` CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from discnet.cli import main
from discnet.errors import InputError
from discnet.phantoms.anatomy import grades_for_age
from discnet.phantoms.synthetic import generate_dataset, make_phantom
from discnet.spine import DEFAULT_LABELS, LEVELS

SMALL = dict(shape=(256, 176), spacing=(1.04, 1.04, 3.0), slices=(20, 22))


@pytest.fixture(scope="module")
def small():
    return make_phantom(seed=7, **SMALL)


def test_small_phantom_has_five_labelled_levels(small):
    assert small.image.dtype == np.uint16 and small.label.dtype == np.uint8
    assert small.image.shape == small.label.shape
    assert small.image.shape[:2] == (256, 176) and 20 <= small.image.shape[2] <= 22
    assert set(np.unique(small.label)) == {0, *DEFAULT_LABELS.values()}
    assert sorted(small.grades) == sorted(LEVELS)
    assert all(1 <= g <= 5 for g in small.grades.values())


def test_geometry_is_non_ras_with_the_requested_spacing(small):
    assert nib.aff2axcodes(small.affine) == ("I", "P", "R")
    assert np.allclose(nib.affines.voxel_sizes(small.affine), (1.04, 1.04, 3.0))


def test_levels_run_superior_to_inferior_in_world_space(small):
    heights = []
    for level in LEVELS:
        idx = np.argwhere(small.label == DEFAULT_LABELS[level]).mean(axis=0)
        heights.append((small.affine @ np.append(idx, 1.0))[2])
    assert heights == sorted(heights, reverse=True)  # L1-L2 highest, L5-S1 lowest


def test_outer_slices_hold_no_disc(small):
    per_slice = (small.label > 0).sum(axis=(0, 1))
    assert per_slice[0] == 0 and per_slice[-1] == 0
    assert (per_slice > 0).sum() >= 10


def test_outlier_voxels_make_a_percentile_stretch_matter(small):
    hi = np.percentile(small.image, 97.5)
    assert small.image.max() > 2 * hi
    inside = small.image[small.label > 0]
    assert np.percentile(small.image, 2.5) < np.median(inside) < hi


def test_same_seed_same_arrays_other_seed_differs(small):
    again = make_phantom(seed=7, **SMALL)
    assert np.array_equal(again.image, small.image) and np.array_equal(again.label, small.label)
    assert np.array_equal(again.affine, small.affine) and again.grades == small.grades
    other = make_phantom(seed=8, **SMALL)
    assert other.image.shape != small.image.shape or not np.array_equal(other.image, small.image)


def test_degeneration_flattens_and_darkens_discs():
    healthy = make_phantom(seed=3, age=30, grades=dict.fromkeys(LEVELS, 1), **SMALL)
    worn = make_phantom(seed=3, age=30, grades=dict.fromkeys(LEVELS, 5), **SMALL)
    assert (worn.label > 0).sum() < 0.6 * (healthy.label > 0).sum()
    for p in (healthy, worn):
        assert set(np.unique(p.label)) == {0, *DEFAULT_LABELS.values()}

    def contrast(p):  # brightest tenth of the disc against the whole scan, gain-free
        return np.percentile(p.image[p.label > 0], 90) / np.median(p.image)

    assert contrast(worn) < 0.7 * contrast(healthy)


def test_grades_rise_with_age_and_at_the_lower_levels():
    rng = np.random.default_rng(0)
    ages = rng.uniform(20, 85, 400)
    grades = np.array([grades_for_age(rng, a) for a in ages])
    assert np.corrcoef(ages, grades.mean(axis=1))[0, 1] > 0.7
    assert grades[:, 3:].mean() > grades[:, :1].mean() + 0.5
    assert (grades[ages > 65] == 5).any() and not (grades[ages < 35] == 5).any()
    assert grades.min() >= 1 and grades.max() <= 5


def test_sessions_change_posture_not_anatomy():
    first = make_phantom(seed=5, session=1, **SMALL)
    second = make_phantom(seed=5, session=2, **SMALL)
    assert first.grades == second.grades and first.age == second.age
    assert not np.array_equal(first.label, second.label)
    ratio = (second.label > 0).sum() / (first.label > 0).sum()
    assert 0.8 < ratio < 1.25


def test_default_size_phantom():
    p = make_phantom(seed=0)
    assert p.image.shape[:2] == (512, 352) and 20 <= p.image.shape[2] <= 30
    assert np.allclose(nib.affines.voxel_sizes(p.affine), (0.52, 0.52, 3.0))
    assert nib.aff2axcodes(p.affine) != ("R", "A", "S")
    assert set(np.unique(p.label)) == {0, 1, 2, 3, 4, 5}
    assert ((p.label > 0).sum(axis=(0, 1)) == 0).sum() >= 2


def test_cli_writes_images_labels_and_manifests(tmp_path: Path, capsys):
    out = tmp_path / "phantoms"
    args = ["synth", str(out), "--subjects", "2", "--seed", "3", "--sessions", "2", "--slices", "20"]
    args += ["--size", "200", "140", "--spacing", "1.3", "1.3", "3.0"]
    assert main(args) == 0
    assert "wrote 4 scans of 2 subjects" in capsys.readouterr().out
    with open(out / "subjects.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["subject", "session", "image", "label", "age", "sex"] + [f"grade_{lv}" for lv in LEVELS]
    assert [(r["subject"], r["session"]) for r in rows] == [
        ("sub-001", "1"),
        ("sub-001", "2"),
        ("sub-002", "1"),
        ("sub-002", "2"),
    ]
    with open(out / "levels.csv", newline="") as fh:
        levels = {int(r["label"]): r["level"] for r in csv.DictReader(fh)}
    assert levels == {v: k for k, v in DEFAULT_LABELS.items()}
    for row in rows:
        assert row["sex"] in {"F", "M"} and 20 <= int(row["age"]) <= 85
        assert all(row[f"grade_{lv}"] in {"I", "II", "III", "IV", "V"} for lv in LEVELS)
        img, lab = nib.load(out / row["image"]), nib.load(out / row["label"])
        assert img.get_data_dtype() == np.uint16 and lab.get_data_dtype() == np.uint8
        assert img.shape == lab.shape == (200, 140, 20)
        assert int(img.header["qform_code"]) == int(img.header["sform_code"]) == 1
        assert np.allclose(img.header.get_zooms(), (1.3, 1.3, 3.0))
        assert nib.aff2axcodes(img.affine) == ("I", "P", "R")
        assert set(np.unique(np.asarray(lab.dataobj))) == {0, *levels}
    again = make_phantom(seed=3, subject=1, session=2, shape=(200, 140), spacing=(1.3, 1.3, 3.0), slices=(20, 20))
    assert np.array_equal(np.asarray(nib.load(out / rows[3]["image"]).dataobj), again.image)
    assert not list(out.glob(".*tmp*"))
    assert main(args) == 2  # refuses to overwrite a manifest without --overwrite
    assert main([*args[:3], "1", *args[4:], "--overwrite"]) == 0
    assert len(list(csv.DictReader(open(out / "subjects.csv", newline="")))) == 2


@pytest.mark.parametrize(
    "kwargs",
    [dict(sessions=5), dict(n_subjects=0), dict(shape=(100, 100)), dict(slices=(10, 5)), dict(seed=-1)],
)
def test_bad_requests_raise_input_error(tmp_path: Path, kwargs):
    params = dict(out_dir=tmp_path, n_subjects=1, seed=0) | kwargs
    with pytest.raises(InputError):
        generate_dataset(**params)
