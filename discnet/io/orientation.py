"""Reorientation to RAS canonical and exactly back.

Only axis permutations and flips are used (no resampling), so ``from_canonical(to_canonical(v)[0], v)``
returns the original voxels bit for bit. In a canonical array axis 0 runs left -> right, so sagittal
slice ``x`` is ``array[x]`` with axes (posterior -> anterior, inferior -> superior).

Example:
    >>> import numpy as np
    >>> from discnet.io.volume import Volume
    >>> v = Volume(np.arange(24).reshape(2, 3, 4), np.diag([-1.0, 1.0, 1.0, 1.0]))
    >>> ras, aff = to_canonical(v)
    >>> bool((from_canonical(ras, v) == v.array).all())
    True
"""

from __future__ import annotations

import numpy as np
from nibabel import orientations as nio

from discnet.io.volume import Volume

_RAS = nio.axcodes2ornt(("R", "A", "S"))


def _ornt(affine: np.ndarray) -> np.ndarray:
    return nio.io_orientation(affine)


def to_canonical(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Voxels and affine reoriented to RAS (closest canonical axes; no interpolation)."""
    ornt = _ornt(volume.affine)
    array = nio.apply_orientation(volume.array, ornt)
    affine = volume.affine @ nio.inv_ornt_aff(ornt, volume.array.shape)
    return np.ascontiguousarray(array), affine


def from_canonical(array_ras: np.ndarray, volume: Volume) -> np.ndarray:
    """Map an array on ``volume``'s canonical grid back to its native index order."""
    back = nio.ornt_transform(_RAS, _ornt(volume.affine))
    native = np.ascontiguousarray(nio.apply_orientation(array_ras, back))
    if native.shape != volume.shape:
        raise ValueError(f"array of shape {array_ras.shape} is not on the canonical grid of {volume.shape}")
    return native
