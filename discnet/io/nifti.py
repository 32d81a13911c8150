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


def write_nifti(array: np.ndarray, reference: Volume, out: Path) -> None:
    """Write ``array`` with ``reference``'s geometry.

    A NIfTI reference's header is copied field by field (pixdim, qform/sform and their codes, units), so
    the written file's affine equals the reference's exactly; only the data type and scaling change.
    """
    if isinstance(reference.header, nib.Nifti1Header):
        header = reference.header.copy()
        header.set_data_dtype(array.dtype)
        header["scl_slope"], header["scl_inter"] = np.nan, np.nan
        img = nib.Nifti1Image(array, None, header=header)
    else:
        img = nib.Nifti1Image(array, reference.affine)
        img.set_qform(reference.affine, code=1)
        img.set_sform(reference.affine, code=1)
        img.header.set_xyzt_units("mm")
    nib.save(img, str(out))
