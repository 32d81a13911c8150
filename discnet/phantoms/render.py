"""Painting machinery for the phantoms: voxel grid, noise textures and a partial-volume painter.

Shapes are signed distances in the image plane (mm, negative inside) times the exact overlap of each
slice's slab with the shape's left-right extent, so edges carry partial volume; labels mark the slab
centres. Painting is cropped to the pixels and slices a shape can reach, which keeps it fast.

Example:
    >>> grid = Grid((64, 44, 5), (4.0, 4.0, 3.0))
    >>> cv = Canvas(grid, np.zeros(grid.shape, np.float32), np.zeros(grid.shape, np.float32), 0.0)
    >>> box = cv.box(np.array([128.0, 88.0]), 20.0)
    >>> u, v = cv.plane(box, np.array([128.0, 88.0]), 0.0)
    >>> cv.paint(box, rbox(u, v, 10, 10, 2), -5, 5, 1.0, label=3)
    >>> int(cv.lab.sum() // 3), float(cv.img.max())
    (75, 1.0)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


class Grid:
    """Voxel grid: shape (rows S->I, cols A->P, slices L->R) and spacing in mm."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float]):
        self.shape, self.spacing = tuple(int(n) for n in shape), tuple(float(s) for s in spacing)
        self.r = (np.arange(self.shape[0]) * self.spacing[0]).astype(np.float32)
        self.q = (np.arange(self.shape[1]) * self.spacing[1]).astype(np.float32)
        self.x = ((np.arange(self.shape[2]) - (self.shape[2] - 1) / 2) * self.spacing[2]).astype(np.float32)
        self.fov = (self.shape[0] * self.spacing[0], self.shape[1] * self.spacing[1])


def upsample(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Linear interpolation of the first ``len(shape)`` axes onto ``shape`` (corners aligned)."""
    out = arr
    for axis, n in enumerate(shape):
        m = out.shape[axis]
        pos = np.linspace(0, m - 1, n)
        lo = np.minimum(pos.astype(int), m - 2) if m > 1 else np.zeros(n, int)
        frac = (pos - lo).astype(np.float32)
        mat = np.zeros((n, m), np.float32)
        mat[np.arange(n), lo] = 1 - frac
        mat[np.arange(n), np.minimum(lo + 1, m - 1)] += frac
        out = np.moveaxis(np.tensordot(mat, out, axes=(1, axis)), 0, axis)
    return out


def textures(rng: np.random.Generator, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance noise textures per slice: fine (~1 mm, streaked S-I) and coarse (~4 mm blobs)."""
    sr, sq, _ = grid.spacing
    rows = (grid.shape[0] + 1) // 2  # the streaks are smooth along S-I: draw half the rows, repeat
    fine = rng.standard_normal((rows, *grid.shape[1:]), np.float32)
    fine = ndi.gaussian_filter(fine, (0.7 / sr, 0.6 / sq, 0)).repeat(2, axis=0)[: grid.shape[0]]
    fine /= fine[::7, ::7].std() + 1e-6
    small = [max(4, int(grid.fov[0] / 3)), max(4, int(grid.fov[1] / 3)), grid.shape[2]]
    coarse = ndi.gaussian_filter(rng.standard_normal(small, np.float32), (1.2, 1.2, 0))
    coarse = upsample(coarse / (coarse.std() + 1e-6), grid.shape[:2])
    return fine, coarse


class Canvas:
    """Image and label volumes with a painter that blends shapes in with partial volume."""

    def __init__(self, grid: Grid, fine: np.ndarray, coarse: np.ndarray, x0: float, tilt: float = 0.0):
        self.grid, self.fine, self.coarse = grid, fine, coarse
        self.xshift = (x0 + tilt * (grid.r - grid.fov[0] / 2)).astype(np.float32)[:, None, None]
        self.img = np.zeros(grid.shape, np.float32)
        self.lab = np.zeros(grid.shape, np.uint8)
        self.edge = 0.7 * (grid.spacing[0] + grid.spacing[1])  # soft edges: ~1.4 pixels
        self.full = (slice(0, grid.shape[0]), slice(0, grid.shape[1]))
        self.s = self.d = np.zeros(grid.shape[:2], np.float32)  # canal coordinates, set by the caller

    def blend(self, weight: np.ndarray, value) -> None:
        """Blend ``value(box)`` (a callable giving a value over a box) with a 2D in-plane ``weight``."""
        box = self.shrink(self.full, weight > 0)
        if box is not None:
            view = self.img[box]
            view += weight[box][..., None] * (value(box) - view)

    def box(self, center: np.ndarray, radius: float) -> tuple[slice, slice] | None:
        g, (r, q) = self.grid, center
        r0, r1 = np.searchsorted(g.r, [r - radius, r + radius])
        q0, q1 = np.searchsorted(g.q, [q - radius, q + radius])
        return (slice(r0, r1), slice(q0, q1)) if r1 > r0 and q1 > q0 else None

    def plane(self, box, center: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates (u along the axis ``theta``, v posterior) of the box pixels about ``center``."""
        dr = self.grid.r[box[0]][:, None] - float(center[0])
        dq = self.grid.q[box[1]][None, :] - float(center[1])
        c, s = float(np.cos(theta)), float(np.sin(theta))
        return dr * c + dq * s, -dr * s + dq * c

    def shrink(self, box, mask: np.ndarray) -> tuple[slice, slice] | None:
        """The part of ``box`` spanned by the true pixels of the 2D ``mask`` (None when empty)."""
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return None
        r0, q0 = box[0].start, box[1].start
        return slice(r0 + rows[0], r0 + rows[-1] + 1), slice(q0 + cols[0], q0 + cols[-1] + 1)

    def lateral(self, box) -> np.ndarray:
        """Left-right position (mm) of each slice relative to the spine over the rows of ``box``."""
        return self.grid.x[None, None, :] - self.xshift[box[0]]

    def paint(self, box, sdf, lo, hi, value, label: int = 0) -> None:
        """Blend ``value`` where ``sdf < 0`` and ``lo < x < hi`` (``x``: :meth:`lateral`).

        ``sdf``, ``lo``, ``hi`` and ``value`` are scalars or arrays over the box, 2D (same on every
        slice) or 3D; the work is cropped to the pixels and slices the shape can reach.
        """
        shape2 = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        flat = [np.asarray(a) for a in (sdf, lo, hi)]
        near = [a if a.ndim < 3 else (a.min(axis=2) if i < 2 else a.max(axis=2)) for i, a in enumerate(flat)]
        reach = np.broadcast_to((near[0] < 0.5 * self.edge) & (near[2] > near[1]), shape2)
        sub = self.shrink(box, reach)
        if sub is None:
            return
        cut = (
            slice(sub[0].start - box[0].start, sub[0].stop - box[0].start),
            slice(sub[1].start - box[1].start, sub[1].stop - box[1].start),
        )
        t, shift = self.grid.spacing[2], self.xshift[sub[0]]
        lo_min = float(np.min(flat[1][cut] if flat[1].ndim >= 2 else flat[1]) + shift.min())
        hi_max = float(np.max(flat[2][cut] if flat[2].ndim >= 2 else flat[2]) + shift.max())
        x = self.grid.x
        ks = np.flatnonzero((x + t / 2 > lo_min) & (x - t / 2 < hi_max))
        if ks.size == 0:
            return
        kk = slice(ks[0], ks[-1] + 1)

        def crop(a):
            a = np.asarray(a)
            if a.ndim == 0:
                return float(a)  # a Python float keeps float32 arithmetic in float32
            a = a[cut]
            return a[..., kk] if a.ndim == 3 else a[..., None]

        sdf, lo, hi, value = (crop(a) for a in (sdf, lo, hi, value))
        x = x[None, None, kk] - shift
        over = np.clip((np.minimum(hi, x + t / 2) - np.maximum(lo, x - t / 2)) / t, 0, 1)
        occ = np.clip(0.5 - sdf / self.edge, 0, 1) * over
        view = self.img[sub[0], sub[1], kk]
        view += occ * (value - view)
        if label:
            inside = (sdf < 0) & (lo < x) & (x < hi)
            self.lab[sub[0], sub[1], kk][inside] = label


def rbox(a, b, ha, hb, rad: float):
    """Signed distance to a rounded rectangle of half sizes ``ha`` x ``hb`` (corner radius ``rad``)."""
    qa, qb = np.abs(a) - ha + rad, np.abs(b) - hb + rad
    return np.hypot(np.maximum(qa, 0), np.maximum(qb, 0)) + np.minimum(np.maximum(qa, qb), 0) - rad
