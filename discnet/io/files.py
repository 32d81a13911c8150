"""Format-independent reading and exact-geometry writing of volumes.

Supported: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``, ``.mhd``),
GIPL (``.gipl``, ``.gipl.gz``), DICOM series folders, and TIFF stacks (``.tif``, ``.tiff``).

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from discnet.io.volume import Volume
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> ref = Volume(np.ones((4, 5, 6), np.float32), np.diag([0.5, 0.5, 3.0, 1.0]))
    >>> out = write_like(np.zeros((4, 5, 6), np.uint8), ref, d / "mask.nii.gz")
    >>> read_volume(out, kind="label").spacing
    (0.5, 0.5, 3.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from discnet.errors import InputError
from discnet.io.atomic import atomic_path, full_suffix
from discnet.io.itk import dicom_files, itk_affine, itk_geometry, itk_voxel_bytes, read_dicom, read_itk, write_itk
from discnet.io.limits import check_limit
from discnet.io.nifti import nifti_header, read_nifti, write_nifti
from discnet.io.tiff import read_tiff, write_tiff
from discnet.io.volume import Volume

NIFTI = (".nii", ".nii.gz")
ITK = (".nrrd", ".nhdr", ".mha", ".mhd", ".gipl", ".gipl.gz")
TIFF = (".tif", ".tiff")
SUFFIXES = NIFTI + ITK + TIFF


def volume_format(path: str | Path) -> str:
    """``'nifti'``, ``'itk'``, ``'tiff'`` or ``'dicom'`` (a folder) from the path; InputError otherwise."""
    path = Path(path)
    if path.is_dir():
        return "dicom"
    suffix = full_suffix(path).lower()
    for name, suffixes in (("nifti", NIFTI), ("itk", ITK), ("tiff", TIFF)):
        if suffix in suffixes:
            return name
    raise InputError(path, f"unknown image format '{suffix or path.name}'", f"use one of {', '.join(SUFFIXES)}")


def _check_exists(path: Path) -> str:
    if not path.exists():
        raise InputError(path, "file not found", "check the path")
    fmt = volume_format(path)
    if fmt == "dicom" and not dicom_files(path):
        raise InputError(path, "is a folder without a DICOM series", "give an image file or a DICOM folder")
    return fmt


def _declared(path: Path, fmt: str) -> tuple[tuple[int, ...], int] | None:
    """Shape and bytes per voxel that the header declares (None for DICOM series)."""
    if fmt == "nifti":
        header = nifti_header(path)
        return tuple(int(s) for s in header.get_data_shape()), header.get_data_dtype().itemsize
    if fmt == "itk":
        size, _ = itk_geometry(path)
        return tuple(int(s) for s in size), itk_voxel_bytes(path)
    if fmt == "tiff":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(int(s) for s in series.shape), series.dtype.itemsize
    return None


def check_declared_size(path: Path, fmt: str) -> None:
    """InputError when the header declares more voxels or bytes than the limits (nothing read yet)."""
    declared = _declared(path, fmt)
    if declared is None:
        return
    shape, itemsize = declared
    voxels = int(np.prod(shape, dtype=np.float64))
    check_limit("image_voxels", voxels, path, f"voxels (shape {shape})")
    check_limit("image_bytes", voxels * itemsize, path, "bytes of voxel data")


def _load(path: Path, fmt: str, spacing) -> Volume:
    check_declared_size(path, fmt)
    if fmt == "tiff":
        return read_tiff(path, spacing)
    volume = {"nifti": read_nifti, "itk": read_itk, "dicom": read_dicom}[fmt](path)
    if spacing is not None:
        raise InputError(path, "an explicit spacing is only used for TIFF stacks", "drop --spacing")
    return volume


def _as_3d(volume: Volume) -> Volume:
    array = volume.array
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(
            volume.path,
            f"is {array.ndim}D (shape {tuple(array.shape)}), a 3D volume is needed",
            "give one 3D scan (split 4D series first)",
        )
    return Volume(array, volume.affine, volume.path, volume.header)


def _check_values(volume: Volume, kind: str) -> None:
    array = volume.array
    if min(array.shape) == 0:
        raise InputError(volume.path, "holds no voxels", "check the file")
    if array.dtype.kind == "c":
        raise InputError(volume.path, "has complex-valued voxels", "give a magnitude image (real values)")
    if kind == "label":
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InputError(volume.path, "label map has NaN or infinite values", "give a label map, not an image")
        if array.dtype.kind in "fiu" and array.max() > np.iinfo(np.int32).max:
            raise InputError(volume.path, "label map has values beyond the int32 range", "give a label map")
        if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
            raise InputError(volume.path, "label map has non-integer values", "give a label map, not an image")
        if array.min() < 0:
            raise InputError(volume.path, "label map has negative values", "give a label map, not an image")
    elif array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(volume.path, "image has NaN or infinite voxels", "fix or mask them before use")
    if not np.isfinite(volume.affine).all() or abs(np.linalg.det(volume.affine[:3, :3])) == 0:
        raise InputError(volume.path, "header has a degenerate orientation matrix", "fix the header")


def read_volume(path: str | Path, spacing: tuple[float, float, float] | None = None, kind: str = "image") -> Volume:
    """Read an image (``kind='image'``) or label map (``kind='label'``) as a 3D :class:`Volume`.

    Args:
        path: file or DICOM folder.
        spacing: voxel spacing in mm for TIFF stacks without spacing tags (page, row, column).
        kind: ``'image'`` checks that voxels are finite; ``'label'`` that values are non-negative integers.
    """
    path = Path(path)
    fmt = _check_exists(path)
    try:
        volume = _load(path, fmt, spacing)
    except InputError:
        raise
    except Exception as err:  # any reader failure is a bad file
        reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise InputError(
            path, f"cannot be read as {fmt.upper()} ({reason})", "check that the file is complete"
        ) from err
    volume = _as_3d(volume)
    _check_values(volume, kind)
    if kind == "label" and volume.array.dtype.kind not in "iub":
        volume = volume.with_array(volume.array.astype(np.int32))
    return volume


def read_geometry(path: str | Path) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine from the header alone (no voxels read), for manifest checks."""
    path = Path(path)
    fmt = _check_exists(path)
    try:
        if fmt == "nifti":
            header = nifti_header(path)
            return tuple(int(s) for s in header.get_data_shape()[:3]), header.get_best_affine()
        if fmt == "itk":
            size, geometry = itk_geometry(path)
            return tuple(int(s) for s in size[:3]), itk_affine(**geometry)
    except Exception as err:
        raise InputError(path, f"header cannot be read ({type(err).__name__})", "check the file") from err
    volume = read_volume(path)
    return volume.shape, volume.affine


def write_like(array: np.ndarray, reference: Volume, out: str | Path, dtype=np.uint8) -> Path:
    """Write ``array`` (native index order of ``reference``) with exactly ``reference``'s geometry.

    The format follows ``out``'s suffix: NIfTI, an ITK format, or TIFF (TIFF only for a TIFF
    reference). The write is atomic: a temporary file is renamed onto ``out`` at the end.
    """
    out = Path(out)
    if array.shape != reference.shape:
        raise ValueError(f"array shape {array.shape} differs from the reference's {reference.shape}")
    fmt = volume_format(out) if full_suffix(out).lower() in SUFFIXES else "unknown"
    if fmt == "unknown":
        raise InputError(out, "output has no image suffix", f"name it with one of {', '.join(SUFFIXES)}")
    if reference.path is not None and out.resolve() == Path(reference.path).resolve():
        raise InputError(out, "output path equals the input", "choose another output file")
    array = np.asarray(array).astype(dtype, copy=False)
    if fmt == "tiff" and not (isinstance(reference.header, dict) and "tiff_spacing" in reference.header):
        raise InputError(out, "TIFF output needs a TIFF reference image", "write NIfTI (.nii.gz) instead")
    writer = {"nifti": write_nifti, "itk": write_itk, "tiff": write_tiff}[fmt]
    with atomic_path(out) as tmp:
        writer(array, reference, tmp)
    return out
