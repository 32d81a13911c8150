"""NRRD, MetaImage, GIPL and DICOM series through SimpleITK.

ITK stores arrays as (z, y, x) and geometry in LPS; discnet's :class:`Volume` uses the (x, y, z) index
order and a RAS affine like nibabel, so both are converted here and the original ITK geometry is kept
in ``Volume.header`` for bit-exact write-back.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from discnet.io.volume import Volume

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
sitk.ProcessObject_SetGlobalWarningDisplay(False)  # readers' failures raise; their warnings are noise


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence C++ readers (MetaIO) that print to the process's stderr on a bad file."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def itk_affine(spacing, origin, direction) -> np.ndarray:
    """RAS+ affine of an ITK geometry (spacing, origin, direction in LPS)."""
    direction = np.asarray(direction, float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ np.asarray(origin, float)
    return affine


def affine_to_itk(affine: np.ndarray) -> dict:
    """ITK spacing/origin/direction of a RAS+ affine."""
    linear = _LPS_TO_RAS @ affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    direction = linear / spacing
    origin = _LPS_TO_RAS @ affine[:3, 3]
    return {
        "spacing": tuple(float(s) for s in spacing),
        "origin": tuple(float(o) for o in origin),
        "direction": tuple(float(d) for d in direction.ravel()),
    }


def _geometry(image: sitk.Image) -> dict:
    return {"spacing": image.GetSpacing(), "origin": image.GetOrigin(), "direction": image.GetDirection()}


def _to_volume(image: sitk.Image, path: Path) -> Volume:
    if image.GetDimension() != 3:
        return Volume(np.zeros((0,) * image.GetDimension()), np.eye(4), path)
    geometry = _geometry(image)
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    return Volume(array=array, affine=itk_affine(**geometry), path=path, header=geometry)


def read_itk(path: Path) -> Volume:
    """Read a single-file image (NRRD, MHA/MHD, GIPL, ...) with SimpleITK."""
    with _quiet_stderr():
        image = sitk.ReadImage(str(path))
    return _to_volume(image, path)


def dicom_files(folder: Path) -> list[str]:
    """File names of the first DICOM series in ``folder`` (empty if none)."""
    reader = sitk.ImageSeriesReader
    series = reader.GetGDCMSeriesIDs(str(folder))
    return list(reader.GetGDCMSeriesFileNames(str(folder), series[0])) if series else []


def read_dicom(folder: Path) -> Volume:
    """Read the first DICOM series of a folder as one volume."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(dicom_files(folder))
    return _to_volume(reader.Execute(), folder)


def itk_geometry(path: Path) -> tuple[tuple[int, ...], dict]:
    """Size (x, y, z) and geometry from the header only."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    with _quiet_stderr():
        reader.ReadImageInformation()
    geometry = {
        "spacing": reader.GetSpacing(),
        "origin": reader.GetOrigin(),
        "direction": reader.GetDirection(),
    }
    return reader.GetSize(), geometry


def itk_voxel_bytes(path: Path) -> int:
    """Bytes of one voxel (all components) that the header declares."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    with _quiet_stderr():
        reader.ReadImageInformation()
    name = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    bits = re.search(r"(\d+)-bit", name)
    size = int(bits.group(1)) // 8 if bits else 8 if "double" in name else 4
    return size * (2 if "complex" in name else 1) * max(1, reader.GetNumberOfComponents())


def write_itk(array: np.ndarray, reference: Volume, out: Path) -> None:
    """Write with ITK, reusing the reference's ITK geometry verbatim when it came from ITK."""
    geometry = reference.header if isinstance(reference.header, dict) else affine_to_itk(reference.affine)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(geometry["spacing"])
    image.SetOrigin(geometry["origin"])
    image.SetDirection(geometry["direction"])
    sitk.WriteImage(image, str(out), useCompression=True)
