"""Orphan removal (paper section 2.6): drop stray 2D disc islands, slice by slice.

Input is a 3D disc mask in RAS-canonical orientation: axis 0 is the sagittal slice axis, so slice
``x`` is ``mask[x]``. Within each slice, a separate labelled area (2D connected component) is an
*orphan*, and is removed, when it

1. has fewer than ``min_pixels`` pixels (rule ``"size"``), or
2. shares no (y, z) position with a disc pixel of the central slice (rule ``"central"``), or
3. shares no (y, z) position with a disc pixel of slice ``x - 1`` or ``x + 1`` (rule ``"neighbour"``).

**Central slice.** The sagittal slice holding the lower median of the slice coordinate ``x`` over all
disc voxels: the first slice at which the cumulative disc voxel count reaches half the total. The
paper means the mid-sagittal slice through the disc column; the median finds it for any roughly
symmetric column, unlike the slice with the most pixels, which may sit anywhere on a flat plateau
or on a lateral false positive. It is robust: how far it moves depends on how many voxels false
positives have, never on how far from the spine they lie (the centre of mass moves with distance),
and it is always a slice that contains disc voxels.

**Fixed point.** Rules are evaluated on the current mask and applied repeatedly until nothing
changes, recomputing the central slice from the surviving voxels each round (unless it is given).
A single pass against the original mask is not idempotent: removing an orphan can leave a
neighbouring area with no overlap in slice ``x +- 1``. At the fixed point every kept area satisfies
all three rules against the returned mask, so applying the function again changes nothing.
Areas are removed whole and never merge, so the loop ends after at most as many rounds as areas.

Example:
    >>> m = np.zeros((3, 8, 8), bool); m[:, 2:6, 2:6] = True; m[1, 0, 7] = True
    >>> int(remove_orphans(m).sum())
    48
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

RULES: tuple[str, ...] = ("size", "central", "neighbour")


def central_slice_index(mask: np.ndarray) -> int:
    """Index along axis 0 of the central slice: the lower median slice of all disc voxels.

    Example:
        >>> m = np.zeros((5, 2, 2), bool); m[1:4] = True
        >>> central_slice_index(m)
        2
    """
    mask = _as_mask(mask)
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    return _median_slice(counts)


def remove_orphans(
    mask: np.ndarray, min_pixels: int = 10, connectivity: int = 2, central_slice: int | None = None
) -> np.ndarray:
    """A copy of a binary disc mask with orphans removed (see the module docstring).

    Args:
        mask: 3D array, RAS-canonical (slices are ``mask[x]``); nonzero = disc.
        min_pixels: smallest area (pixels) that is kept.
        connectivity: 2D connectivity as in ``scipy.ndimage.generate_binary_structure``:
            1 = 4-connectivity, 2 = 8-connectivity.
        central_slice: fixed central slice index; None = :func:`central_slice_index`, recomputed
            while the fixed point is sought.

    Returns:
        New boolean array, a subset of ``mask``.

    Example:
        >>> m = np.zeros((3, 8, 8), bool); m[:, 2:6, 2:6] = True; m[0, 0, 0] = True
        >>> bool(remove_orphans(m)[0, 0, 0])
        False
    """
    return _run(mask, min_pixels, connectivity, central_slice)[0]


def disc_mask(prob: np.ndarray, threshold: float = 0.5, orphan_removal: bool = True) -> np.ndarray:
    """The disc mask of a probability map: thresholded (``prob > threshold``), then cleaned of orphans.

    The one place where "threshold, then orphan removal" (paper 2.6) is written; validation and
    prediction both call it, on (slices, rows, columns) arrays.

    Example:
        >>> p = np.zeros((5, 8, 8), np.float32); p[1:4, 2:6, 2:6] = 0.9; p[0, 7, 7] = 0.8
        >>> int(disc_mask(p).sum()), int(disc_mask(p, orphan_removal=False).sum())
        (48, 49)
    """
    mask = np.asarray(prob) > threshold
    return remove_orphans(mask) if orphan_removal else mask


def remove_orphans_labels(
    labels: np.ndarray, min_pixels: int = 10, connectivity: int = 2, central_slice: int | None = None
) -> np.ndarray:
    """A copy of a label map with orphans set to 0; decisions use ``labels > 0``.

    Example:
        >>> lab = np.zeros((3, 8, 8), np.uint8); lab[:, 2:6, 2:6] = 4; lab[2, 7, 7] = 1
        >>> np.unique(remove_orphans_labels(lab)).tolist()
        [0, 4]
    """
    labels = np.asarray(labels)
    keep = _run(labels > 0, min_pixels, connectivity, central_slice)[0]
    return np.where(keep, labels, np.zeros((), labels.dtype))


def orphan_report(
    mask: np.ndarray, min_pixels: int = 10, connectivity: int = 2, central_slice: int | None = None
) -> dict:
    """What :func:`remove_orphans` would do, for QC.

    Each removed area counts under the first rule (size, central, neighbour) it failed, in the round
    it was removed.

    Returns:
        ``{"central_slice", "rounds", "areas", "kept_areas", "kept_voxels",
        "removed_areas": {rule: n}, "removed_voxels": {rule: n}}`` with plain ints. ``rounds``
        counts evaluations of rules 2 and 3 (the last one changes nothing); ``central_slice`` is
        the one used in the last round, None when no area passes the size rule.

    Example:
        >>> m = np.zeros((3, 8, 8), bool); m[:, 2:6, 2:6] = True; m[1, 0, 7] = True
        >>> orphan_report(m)["removed_areas"]
        {'size': 1, 'central': 0, 'neighbour': 0}
    """
    return _run(mask, min_pixels, connectivity, central_slice)[1]


def _as_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"expected a 3D mask, got shape {mask.shape}")
    return mask if mask.dtype == bool else mask != 0


def _median_slice(counts: np.ndarray) -> int:
    total = int(counts.sum())
    if total == 0:
        raise ValueError("an empty mask has no central slice")
    return int(np.searchsorted(np.cumsum(counts), (total + 1) // 2))


def _run(mask, min_pixels, connectivity, central_slice) -> tuple[np.ndarray, dict]:
    mask = _as_mask(mask)
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 (4-connected) or 2 (8-connected), got {connectivity}")
    n_slices = mask.shape[0]
    if central_slice is not None and not 0 <= central_slice < n_slices:
        raise ValueError(f"central_slice {central_slice} is outside 0..{n_slices - 1}")
    out = np.zeros(mask.shape, bool)
    report = {
        "central_slice": central_slice,
        "rounds": 0,
        "areas": 0,
        "kept_areas": 0,
        "kept_voxels": 0,
        "removed_areas": dict.fromkeys(RULES, 0),
        "removed_voxels": dict.fromkeys(RULES, 0),
    }
    if not mask.any():
        return out, report

    box = _bounding_box_yz(mask)
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, connectivity)
    lab, n = ndimage.label(mask[box], structure=structure)
    # Work on the disc voxels only: flat index, area id, and the plane size that steps one slice.
    plane = lab[0].size
    lab = lab.ravel()
    voxels = np.flatnonzero(lab)
    ids = lab[voxels]
    sizes = np.bincount(ids, minlength=n + 1)
    slice_of = np.zeros(n + 1, np.intp)
    slice_of[ids] = voxels // plane
    nb_a, nb_b = _neighbour_pairs(lab, voxels, ids, plane, n)

    keep = sizes >= min_pixels
    keep[0] = False
    removed_by = np.full(n + 1, -1)
    removed_by[1:][~keep[1:]] = 0
    xc, pairs = None, None
    while keep.any():
        report["rounds"] += 1
        new_xc = central_slice
        if new_xc is None:
            new_xc = _median_slice(np.bincount(slice_of[keep], sizes[keep], minlength=n_slices))
        if new_xc != xc:
            xc, pairs = new_xc, _central_pairs(lab, voxels, ids, plane, new_xc, n)
        ok_central = _has_kept_partner(pairs[0], pairs[1], keep, n)
        ok_neighbour = _has_kept_partner(nb_a, nb_b, keep, n) | _has_kept_partner(nb_b, nb_a, keep, n)
        new_keep = keep & ok_central & ok_neighbour
        removed_by[keep & ~ok_central] = 1
        removed_by[keep & ok_central & ~ok_neighbour] = 2
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep

    kept = np.zeros(lab.size, bool)
    kept[voxels[keep[ids]]] = True
    out[box] = kept.reshape(out[box].shape)
    report["central_slice"] = central_slice if xc is None else xc
    report["areas"] = int(n)
    report["kept_areas"] = int(keep.sum())
    report["kept_voxels"] = int(sizes[keep].sum())
    for i, rule in enumerate(RULES):
        report["removed_areas"][rule] = int((removed_by == i).sum())
        report["removed_voxels"][rule] = int(sizes[removed_by == i].sum())
    return out, report


def _bounding_box_yz(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """All slices, and the (y, z) bounding box of the disc voxels: the work is done there."""
    ys = np.flatnonzero(mask.any(axis=(0, 2)))
    zs = np.flatnonzero(mask.any(axis=(0, 1)))
    return slice(None), slice(ys[0], ys[-1] + 1), slice(zs[0], zs[-1] + 1)


def _neighbour_pairs(lab, voxels, ids, plane, n) -> tuple[np.ndarray, np.ndarray]:
    """Unique (area in slice x, area in slice x+1) pairs that share a (y, z) position."""
    below = voxels < lab.size - plane
    partners = lab[voxels[below] + plane]
    hit = partners > 0
    return _unique_pairs(ids[below][hit], partners[hit], n)


def _central_pairs(lab, voxels, ids, plane, xc, n) -> tuple[np.ndarray, np.ndarray]:
    """Unique (area, central-slice area) pairs that share a (y, z) position."""
    partners = lab[xc * plane : (xc + 1) * plane][voxels % plane]
    hit = partners > 0
    return _unique_pairs(ids[hit], partners[hit], n)


def _unique_pairs(a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    code = np.unique(a.astype(np.int64) * (n + 1) + b)
    return code // (n + 1), code % (n + 1)


def _has_kept_partner(a: np.ndarray, b: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """For each area, whether some pair (area, partner) has a kept partner."""
    ok = np.zeros(n + 1, bool)
    ok[a[keep[b]]] = True
    return ok
