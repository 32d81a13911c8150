"""The :class:`Volume` every discnet module works on: a voxel array in the file's own index order plus
its RAS+ affine, and enough of the source header to write a label back in exactly the same geometry.

Example:
    >>> import numpy as np

    >>> v = Volume(np.zeros((4, 5, 6), np.float32), np.diag([2.0, 1.0, 3.0, 1.0]))
    >>> v.spacing, v.axcodes
    ((2.0, 1.0, 3.0), ('R', 'A', 'S'))
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

#: Largest difference (mm) between two affines that still counts as the same geometry (image and label,
#: prediction and truth, scan and overlay).
GEOMETRY_ATOL_MM = 1e-4


@dataclass(frozen=True)
class Volume:
    """A 3D scan or label map.

    Attributes:
        array: voxels in the file's own index order (as nibabel and torchio index them).
        affine: 4x4 voxel-to-world matrix, RAS+ millimetres.
        path: file (or DICOM folder) it was read from, if any.
        header: format-specific geometry kept for exact write-back: a ``nibabel.Nifti1Header`` for
            NIfTI, ``{"spacing", "origin", "direction"}`` as ITK gives them for the other formats.
    """

    array: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    header: Any = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in mm^3 (absolute determinant of the affine's linear part)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """Anatomical direction each array axis points to, e.g. ``('I', 'P', 'R')``."""
        return tuple(nib.aff2axcodes(self.affine))

    def with_array(self, array: np.ndarray) -> Volume:
        """Same geometry and header, other voxels (shape must match)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from the volume's {self.array.shape}")
        return replace(self, array=array)
