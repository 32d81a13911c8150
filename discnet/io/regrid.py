"""One label map on another's voxel grid, compared in physical space.

A map that holds the reference grid's voxels in another axis order or direction (a prediction made from
a DICOM series against an NRRD truth in reversed slice order) is permuted and flipped onto it, exactly.
Only a grid that really differs (spacing, extent, an oblique or shifted grid) is resampled: nearest
neighbour at the reference's voxel centres, zero outside the map.

Example:
    >>> a = Volume(np.arange(8).reshape(2, 2, 2), np.eye(4))
    >>> flipped = Volume(a.array[:, :, ::-1], np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 1], [0, 0, 0, 1.0]]))
    >>> moved, how = on_grid(flipped, a)
    >>> bool((moved.array == a.array).all()), how
    (True, 'reoriented')
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from discnet.io.volume import Volume

#: Index tolerance (in voxels) below which two grids are the same voxels.
VOXEL_ATOL = 1e-3


def _axis_map(moving: Volume, reference: Volume) -> list[tuple[int, int]] | None:
    """For each reference axis, (moving axis, +1/-1) when the grids are the same voxels; else None."""
    index = np.linalg.inv(moving.affine) @ reference.affine  # reference voxel index -> moving voxel index
    rotation, shift = index[:3, :3], index[:3, 3]
    signed = np.round(rotation)
    if not np.allclose(rotation, signed, atol=VOXEL_ATOL) or sorted(np.abs(signed).sum(0)) != [1, 1, 1]:
        return None
    if sorted(np.abs(signed).sum(1)) != [1, 1, 1]:
        return None
    axes = []
    for k in range(3):
        source = int(np.argmax(np.abs(signed[:, k])))
        sign = int(signed[source, k])
        start = 0 if sign > 0 else moving.shape[source] - 1
        if reference.shape[k] != moving.shape[source] or abs(shift[source] - start) > VOXEL_ATOL:
            return None
        axes.append((source, sign))
    return axes


def on_grid(moving: Volume, reference: Volume) -> tuple[Volume, str | None]:
    """``moving``'s voxels on ``reference``'s grid and how: None (already on it), ``'reoriented'`` (the same
    voxels, axes permuted/flipped) or ``'resampled'`` (nearest neighbour). Neither input is modified."""
    if moving.shape == reference.shape and np.allclose(moving.affine, reference.affine, rtol=0, atol=1e-4):
        return moving, None
    axes = _axis_map(moving, reference)
    if axes is not None:
        array = np.transpose(moving.array, [source for source, _ in axes])
        array = array[tuple(slice(None, None, sign) for _, sign in axes)]
        return Volume(np.ascontiguousarray(array), reference.affine, moving.path, moving.header), "reoriented"
    index = np.linalg.inv(moving.affine) @ reference.affine
    array = ndimage.affine_transform(
        moving.array, index[:3, :3], offset=index[:3, 3], output_shape=reference.shape, order=0, mode="constant"
    )
    return Volume(array, reference.affine, moving.path, moving.header), "resampled"
