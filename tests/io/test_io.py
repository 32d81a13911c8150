"""Volume I/O: every format round-trips geometry bit-exactly; real non-RAS and messy files load."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from discnet.errors import InputError
from discnet.io import (
    Volume,
    from_canonical,
    read_geometry,
    read_levels,
    read_volume,
    to_canonical,
    write_like,
)
from discnet.io.itk import itk_affine

# An oblique-free, non-RAS affine with odd spacing and origin (axis codes I, P, R).
AFFINE = np.array([[0.0, 0.0, 3.0, -33.5], [0.0, -0.52, 0.0, 110.25], [-0.52, 0.0, 0.0, 90.125], [0, 0, 0, 1]])


# GIPL stores no direction and float32 spacing: it gets an axis-aligned LPS affine with exact floats.
GIPL_AFFINE = np.diag([-0.5, -0.75, 3.0, 1.0])


def _reference(tmp_path, suffix, affine=AFFINE):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 4000, size=(12, 10, 7)).astype(np.int16)
    src = tmp_path / f"image{suffix}"
    write_like(array, Volume(array, affine), src, dtype=np.int16)
    return read_volume(src), array


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd", ".gipl", ".gipl.gz"])
def test_round_trip_keeps_geometry(tmp_path, suffix):
    affine = GIPL_AFFINE if "gipl" in suffix else AFFINE
    image, array = _reference(tmp_path, suffix, affine)
    np.testing.assert_array_equal(image.array, array)
    np.testing.assert_allclose(image.affine, affine, atol=1e-5)
    labels = (array > 2000).astype(np.uint8)
    out = write_like(labels, image, tmp_path / f"labels{suffix}")
    back = read_volume(out, kind="label")
    np.testing.assert_array_equal(back.array, labels)
    np.testing.assert_array_equal(back.affine, image.affine)
    assert back.shape == image.shape


def test_round_trip_tiff(tmp_path):
    array = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7)
    import tifffile

    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, array)
    with pytest.raises(InputError, match="no voxel spacing"):
        read_volume(src)
    image = read_volume(src, spacing=(3.0, 0.52, 0.53))
    assert image.spacing == (3.0, 0.52, 0.53) and image.axcodes == ("R", "I", "P")
    out = write_like((array > 100).astype(np.uint8), image, tmp_path / "mask.tif")
    back = read_volume(out, kind="label")
    np.testing.assert_array_equal(back.affine, image.affine)
    np.testing.assert_array_equal(back.array, array > 100)


def test_tiff_spacing_from_imagej_tags(tmp_path):
    import tifffile

    src = tmp_path / "imagej.tif"
    tifffile.imwrite(
        src,
        np.zeros((4, 8, 8), np.uint8),
        imagej=True,
        resolution=(2.0, 4.0),
        metadata={"spacing": 3.0, "unit": "mm"},
    )
    assert read_volume(src).spacing == pytest.approx((3.0, 0.25, 0.5))


def test_dicom_series_folder(tmp_path):
    array = np.random.default_rng(1).integers(0, 1000, size=(6, 8, 5)).astype(np.int16)
    image = sitk.GetImageFromArray(array.transpose(2, 1, 0))
    image.SetSpacing((0.5, 0.75, 3.0))
    image.SetOrigin((10.0, -20.0, 5.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        s = image[:, :, k]
        for tag, value in {
            "0020|000e": "1.2.3.4",
            "0020|0013": str(k + 1),
            "0008|0060": "MR",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k)))),
        }.items():
            s.SetMetaData(tag, value)
        writer.SetFileName(str(tmp_path / f"{k:03d}.dcm"))
        writer.Execute(s)
    volume = read_volume(tmp_path)
    np.testing.assert_array_equal(volume.array, array)
    assert volume.spacing == pytest.approx((0.5, 0.75, 3.0))
    np.testing.assert_allclose(volume.affine, itk_affine((0.5, 0.75, 3.0), (10.0, -20.0, 5.0), np.eye(3).ravel()))


def test_real_non_ras_lumbar(lumbar_dir, tmp_path):
    image = read_volume(lumbar_dir / "sub11_T2w.nii.gz")
    labels = read_volume(lumbar_dir / "sub11_discs.nii.gz", kind="label")
    assert image.axcodes == ("I", "P", "R")
    ras, _ = to_canonical(labels)
    assert ras.shape[0] == 67
    assert int((ras.reshape(67, -1) > 0).any(1).sum()) == 43
    np.testing.assert_array_equal(from_canonical(ras, labels), labels.array)
    out = write_like(labels.array, image, tmp_path / "sub11_discs.nii.gz")
    original, written = nib.load(lumbar_dir / "sub11_discs.nii.gz"), nib.load(out)
    np.testing.assert_array_equal(written.affine, original.affine)
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), np.asanyarray(original.dataobj))
    for key in (
        "qform_code",
        "sform_code",
        "pixdim",
        "quatern_b",
        "quatern_c",
        "quatern_d",
        "srow_x",
        "srow_z",
    ):
        np.testing.assert_array_equal(written.header[key], original.header[key])


def test_messy_headers_load(shared_dir):
    folder = shared_dir / "data" / "ivd-volumes"
    for path in sorted(folder.glob("*_Labels.nii.gz")):
        volume = read_volume(path, kind="label")
        assert volume.array.dtype.kind in "iu" and volume.spacing == pytest.approx((4.4, 0.4296875, 0.4296875))
        ras, _ = to_canonical(volume)
        assert ras.size == volume.array.size


def test_read_geometry_matches_volume(lumbar_dir):
    shape, affine = read_geometry(lumbar_dir / "sub20_T2w.nii.gz")
    assert shape == (221, 221, 67)
    np.testing.assert_array_equal(affine, read_volume(lumbar_dir / "sub20_T2w.nii.gz").affine)


def test_levels_csv_and_itksnap(shared_dir):
    assert read_levels(shared_dir / "data" / "lumbar-t2" / "levels.csv")[1] == "L5-S1"
    itk = read_levels(shared_dir / "data" / "itksnap" / "MRIcrop-seg.label")
    assert itk[1] == "vent-lat" and itk[8] == "corpus-callosum" and 0 not in itk
    assert read_levels(None) == {1: "L5-S1", 2: "L4-L5", 3: "L3-L4", 4: "L2-L3", 5: "L1-L2"}


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p / "missing.nii.gz", "file not found"),
        (lambda p: (p / "text.nii.gz").write_text("not an image") and p / "text.nii.gz", "cannot be read"),
        (lambda p: (p / "x.png").write_bytes(b"x") and p / "x.png", "unknown image format"),
        (lambda p: (p / "empty_dir").mkdir() or p / "empty_dir", "without a DICOM series"),
    ],
)
def test_bad_files_raise_input_error(tmp_path, make, match):
    with pytest.raises(InputError, match=match):
        read_volume(make(tmp_path))


def test_bad_contents(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4), np.float32), np.eye(4)), tmp_path / "flat.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.float32), np.eye(4)), tmp_path / "four.nii.gz")
    nan = np.zeros((4, 4, 4), np.float32)
    nan[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(InputError, match="2D"):
        read_volume(tmp_path / "flat.nii.gz")
    with pytest.raises(InputError, match="4D"):
        read_volume(tmp_path / "four.nii.gz")
    with pytest.raises(InputError, match="NaN"):
        read_volume(tmp_path / "nan.nii.gz")


def test_write_refuses_input_path_and_leaves_nothing(tmp_path):
    image, array = _reference(tmp_path, ".nii.gz")
    with pytest.raises(InputError, match="equals the input"):
        write_like(array, image, image.path, dtype=np.int16)
    with pytest.raises(ValueError):
        write_like(array[:-1], image, tmp_path / "bad.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.nii.gz"]
