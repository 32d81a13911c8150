"""NIfTI reading and exact-geometry writing with nibabel (qform/sform codes and all header fields kept)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from discnet.io.volume import Volume


def read_nifti(path: Path) -> Volume:
    """Read a NIfTI-1/2 file; the array keeps the on-disk dtype unless the header scales it."""
    img = nib.load(str(path))
    array = np.asanyarray(img.dataobj)
    return Volume(array=array, affine=img.affine.copy(), path=path, header=img.header.copy())


def nifti_header(path: Path):
    """Header only, without reading voxels."""
    return nib.load(str(path)).header


def _float32_exact(affine: np.ndarray) -> bool:
    return bool(np.array_equal(affine.astype(np.float32).astype(np.float64), affine))


def write_nifti(array: np.ndarray, reference: Volume, out: Path) -> None:
    """Write ``array`` with ``reference``'s geometry.

    A NIfTI reference's header is copied field by field (pixdim, qform/sform and their codes, units), so
    the written file's affine equals the reference's exactly; only the data type and scaling change, and a
    reference of shape (X, Y, Z, 1) gets an output of that shape. Other references (NRRD, MetaImage, ...)
    are written as NIfTI-1 when their affine is exact in its float32 fields, else as NIfTI-2 (float64
    fields), so the spacing is kept exactly.
    """
    if isinstance(reference.header, nib.Nifti1Header):
        header = reference.header.copy()
        stored = tuple(int(s) for s in header.get_data_shape())
        if len(stored) > array.ndim and stored[: array.ndim] == array.shape and set(stored[array.ndim :]) == {1}:
            array = array.reshape(stored)
        header.set_data_dtype(array.dtype)
        header["scl_slope"], header["scl_inter"] = np.nan, np.nan
        image_type = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        img = image_type(array, None, header=header)
    else:
        image_type = nib.Nifti1Image if _float32_exact(reference.affine) else nib.Nifti2Image
        img = image_type(array, reference.affine)
        img.set_qform(reference.affine, code=1)
        img.set_sform(reference.affine, code=1)
        img.header.set_xyzt_units("mm")
    nib.save(img, str(out))
