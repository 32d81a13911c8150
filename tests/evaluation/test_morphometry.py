"""discnet.evaluation.morphometry against shapes whose measures are known analytically: an axis-aligned box (exact, in
every orientation and with anisotropic voxels), a tilted ellipsoid on straight and oblique grids, and the
stretched intensities; plus ``discnet measure`` on files."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nibabel import orientations as nio
from scipy.spatial.transform import Rotation

from discnet.cli import main
from discnet.data.intensity import stretch
from discnet.data.preprocess import InputConfig
from discnet.evaluation.morphometry import TIDY, UNITS, disc_measures, stretched_image, tidy
from discnet.io import Volume

LEVELS = {1: "L5-S1", 2: "L4-L5"}
RAMP = np.array([2.0, 1.0, 0.5])


def reorient(array: np.ndarray, affine: np.ndarray, codes: str) -> tuple[np.ndarray, np.ndarray]:
    """The same voxels and world positions stored in another axis order (e.g. ``"IPR"``)."""
    transform = nio.ornt_transform(nio.axcodes2ornt(("R", "A", "S")), nio.axcodes2ornt(tuple(codes)))
    return nio.apply_orientation(array, transform), affine @ nio.inv_ornt_aff(transform, array.shape)


def box_scan(spacing, codes):
    """A RAS grid holding a 40 (R) x 30 (A) x 10 (S) mm box (label 1) and an intensity ramp 100 + 2 R + A + S / 2."""
    spacing = np.asarray(spacing, float)
    shape = tuple(int(round(n / s)) + 8 for n, s in zip((40, 30, 10), spacing, strict=True))
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (-7.0, 3.0, 50.0)
    labels = np.zeros(shape, np.uint8)
    lo = np.array([4, 4, 4])
    hi = lo + np.round(np.array([40, 30, 10]) / spacing).astype(int)
    labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = 1
    world = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1) @ affine[:3, :3].T + affine[:3, 3]
    image = (100.0 + world @ RAMP).astype(np.float32)
    centre = affine[:3, :3] @ ((lo + hi - 1) / 2) + affine[:3, 3]
    labels, new_affine = reorient(labels, affine, codes)
    image, _ = reorient(image, affine, codes)
    return Volume(labels, new_affine), Volume(image, new_affine), centre


@pytest.mark.parametrize("codes", ["RAS", "IPR", "LPS", "PIL"])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 0.75, 2.5), (4.0, 0.5, 0.625)])
def test_box_is_measured_exactly_in_any_orientation(codes, spacing):
    labels, image, centre = box_scan(spacing, codes)
    (row,) = disc_measures(labels, LEVELS, image)
    expected = {"volume": 12000.0, "midsagittal_area": 300.0, "depth": 30.0, "width": 40.0, "height_mean": 10.0}
    expected |= {"height_anterior": 10.0, "height_middle": 10.0, "height_posterior": 10.0, "height_depth_ratio": 1 / 3}
    expected |= dict(zip(("centroid_r", "centroid_a", "centroid_s"), centre, strict=True))
    expected |= {"intensity_mean": 100.0 + centre @ RAMP, "intensity_median": 100.0 + centre @ RAMP}
    assert row["level"] == "L5-S1" and row["label"] == 1
    assert {k: row[k] for k in expected} == pytest.approx(expected, rel=1e-9, abs=1e-9)
    inside = labels.array == 1
    assert row["intensity_mean_stretched"] == pytest.approx(float(stretch(image.array)[inside].mean()), rel=1e-6)


def test_stretched_intensities_do_not_depend_on_the_orientation():
    results = []
    for codes in ("RAS", "IPR", "PIL"):
        labels, image, _ = box_scan((1.0, 1.0, 2.0), codes)
        for mode in ("volume", "slice", "none"):
            row = disc_measures(labels, LEVELS, image, InputConfig(stretch=mode))[0]
            results.append((mode, row["intensity_mean_stretched"], row["intensity_median_stretched"]))
    by_mode = {mode: {r[1:] for r in results if r[0] == mode} for mode in ("volume", "slice", "none")}
    assert all(len(values) == 1 or np.ptp(list(values), axis=0).max() < 1e-4 for values in by_mode.values())
    none_mean = by_mode["none"].pop()[0]
    labels, image, _ = box_scan((1.0, 1.0, 2.0), "RAS")
    raw = disc_measures(labels, LEVELS, image)[0]["intensity_mean"]
    assert none_mean == pytest.approx(raw)


def _strip_mean(u1: float, u2: float) -> float:
    """Mean of sqrt(1 - u^2) over [u1, u2] (the ellipse's half height, in units of its half axis)."""

    def primitive(u):
        return (u * math.sqrt(1 - u * u) + math.asin(u)) / 2

    return (primitive(u2) - primitive(u1)) / (u2 - u1)


ELLIPSOID = {"a": 18.0, "b": 24.0, "c": 5.0, "tilt": 25.0}  # depth, width, height semi-axes (mm); tilt (deg)


@pytest.mark.parametrize(
    "spacing, grid_rotation",
    [((0.5, 0.5, 0.5), None), ((0.4, 0.6, 0.45), None), ((0.5, 0.5, 0.5), (12.0, -8.0, 20.0))],
    ids=["isotropic", "anisotropic", "oblique-grid"],
)
def test_tilted_ellipsoid_matches_its_analytic_measures(spacing, grid_rotation):
    a, b, c = ELLIPSOID["a"], ELLIPSOID["b"], ELLIPSOID["c"]
    disc = Rotation.from_euler("x", ELLIPSOID["tilt"], degrees=True).as_matrix()  # tilted in the sagittal plane
    grid = np.eye(3) if grid_rotation is None else Rotation.from_euler("xyz", grid_rotation, degrees=True).as_matrix()
    linear = grid @ np.diag(spacing)
    shape = tuple(int(64 / s) for s in spacing)
    centre = np.array([3.0, -20.0, 40.0])
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = centre - linear @ (np.array(shape) - 1) / 2
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    local = (ijk @ linear.T + affine[:3, 3] - centre) @ disc  # coordinates along the disc's (R, A, S) axes
    inside = ((local / np.array([b, a, c])) ** 2).sum(axis=1) <= 1
    labels = Volume(inside.reshape(shape).astype(np.uint8), affine)
    (row,) = disc_measures(labels, LEVELS)
    voxel = max(spacing)
    assert row["volume"] == pytest.approx(4 / 3 * math.pi * a * b * c, rel=0.005)
    assert row["midsagittal_area"] == pytest.approx(math.pi * a * c, rel=0.01)
    assert row["depth"] == pytest.approx(2 * a, abs=1.5 * voxel)
    assert row["width"] == pytest.approx(2 * b, abs=1.5 * voxel)
    assert row["height_mean"] == pytest.approx(math.pi * c / 2, rel=0.02)
    assert row["height_middle"] == pytest.approx(2 * c * _strip_mean(0.0, 0.2), rel=0.02)
    for side in ("height_anterior", "height_posterior"):
        assert row[side] == pytest.approx(2 * c * _strip_mean(0.6, 1.0), rel=0.04)
    assert row["height_depth_ratio"] == pytest.approx(math.pi * c / 2 / (2 * a), rel=0.03)
    assert [row["centroid_r"], row["centroid_a"], row["centroid_s"]] == pytest.approx(centre, abs=0.05)
    assert math.isnan(row["intensity_mean"])


def test_levels_superior_to_inferior_and_input_untouched():
    labels = np.zeros((10, 10, 20), np.uint8)
    labels[2:8, 2:8, 2:5] = 1  # inferior: L5-S1
    labels[2:8, 2:8, 10:14] = 2
    before = labels.copy()
    rows = disc_measures(Volume(labels, np.eye(4)), {**LEVELS, 3: "L3-L4"})
    assert [r["level"] for r in rows] == ["L4-L5", "L5-S1"] and list(rows[0])[2:] == list(UNITS)
    assert [r["volume"] for r in rows] == [144.0, 108.0]
    assert np.array_equal(labels, before)


def test_tidy_has_one_row_per_measure():
    wide = pd.DataFrame([{"subject": "s", "session": 1, "level": "L4-L5", "label": 2, **dict.fromkeys(UNITS, 1.5)}])
    wide = pd.concat([wide, wide.assign(level="L5-S1", label=1)], ignore_index=True)
    long = tidy(wide)
    assert long.columns.tolist() == TIDY and len(long) == 2 * len(UNITS)
    assert long["level"].tolist()[: len(UNITS)] == ["L4-L5"] * len(UNITS)
    assert dict(zip(long["measure"][: len(UNITS)], long["unit"][: len(UNITS)], strict=True)) == UNITS


def test_stretched_image_slice_mode_keeps_native_order():
    labels, image, _ = box_scan((1.0, 1.0, 2.0), "IPR")
    out = stretched_image(image, InputConfig(stretch="slice"))
    assert out.shape == image.shape and out.min() == 0 and out.max() == 255


def test_measure_cli_writes_tidy_and_wide(tmp_path, capsys):
    labels, image, _ = box_scan((1.0, 1.5, 2.0), "IPR")
    nib.save(nib.Nifti1Image(labels.array, labels.affine), tmp_path / "s1_discs.nii.gz")
    nib.save(nib.Nifti1Image(image.array, image.affine), tmp_path / "s1_T2w.nii.gz")
    out = tmp_path / "out"
    args = [str(tmp_path / "s1_discs.nii.gz"), "--images", str(tmp_path / "s1_T2w.nii.gz"), "--out-dir", str(out)]
    assert main(["measure", *args]) == 0
    wide = pd.read_csv(out / "measurements_wide.csv")
    long = pd.read_csv(out / "measurements.csv")
    assert wide.loc[0, ["subject", "session", "level"]].tolist() == ["s1", 1, "L5-S1"]
    assert wide.loc[0, "volume"] == pytest.approx(12000.0) and not math.isnan(wide.loc[0, "intensity_mean"])
    assert long.columns.tolist() == TIDY and len(long) == len(UNITS)
    assert "1 disc(s)" in capsys.readouterr().out


def test_measure_cli_refuses_an_image_on_another_grid(tmp_path, capsys):
    labels, image, _ = box_scan((1.0, 1.0, 2.0), "RAS")
    nib.save(nib.Nifti1Image(labels.array, labels.affine), tmp_path / "s1_discs.nii.gz")
    nib.save(nib.Nifti1Image(image.array[:-1], image.affine), tmp_path / "s1_T2w.nii.gz")
    args = [
        str(tmp_path / "s1_discs.nii.gz"),
        "--images",
        str(tmp_path / "s1_T2w.nii.gz"),
        "--out-dir",
        str(tmp_path / "o"),
    ]
    assert main(["measure", *args]) == 2
    err = capsys.readouterr().err
    assert "shape" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "o" / "measurements.csv").exists()


def test_measure_joins_grades_and_report_plots_by_level_and_grade(tmp_path, capsys):
    labels, image, _ = box_scan((1.0, 1.5, 2.0), "IPR")
    rows = []
    for subject in ("a", "b"):
        nib.save(nib.Nifti1Image(labels.array, labels.affine), tmp_path / f"{subject}_discs.nii.gz")
        nib.save(nib.Nifti1Image(image.array, image.affine), tmp_path / f"{subject}_T2w.nii.gz")
        rows.append({"subject": subject, "image": f"{subject}_T2w.nii.gz", "label": f"{subject}_discs.nii.gz"})
    manifest = pd.DataFrame(rows).assign(**{"grade_L5-S1": ["II", "IV"]})
    manifest.to_csv(tmp_path / "subjects.csv", index=False)
    out = tmp_path / "measured"
    assert main(["measure", "--subjects", str(tmp_path / "subjects.csv"), "--out-dir", str(out)]) == 0
    wide = pd.read_csv(out / "measurements_wide.csv")
    assert wide["grade"].tolist() == [2, 4] and not wide["intensity_mean"].isna().any()
    report = tmp_path / "report"
    assert main(["report", "--out-dir", str(report), "--measurements", str(out / "measurements_wide.csv")]) == 0
    for name in ("measurements_by_level.png", "measurements_by_grade.png"):
        assert (report / name).read_bytes()[:4] == b"\x89PNG"
    assert "measurements_by_grade.png" in capsys.readouterr().out
