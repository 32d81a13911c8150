"""Per-disc morphometry in the scanner's physical space, for any orientation and anisotropic voxels.

A disc is every voxel of one level's label value. Its voxel centres are mapped to world coordinates
(RAS+ mm, NIfTI's convention; negate the first two for DICOM's LPS) and given the disc's own frame:

- height axis ``h``: the principal axis of least second moment of the filled voxels (the centres'
  covariance plus each voxel box's own ``A diag(1/12) A^T``, ``A`` the affine's linear part), pointing
  superior: perpendicular to the endplates of a flat disc, whatever its tilt;
- lateral axis ``l``: the scanner's left -> right axis projected onto the plane perpendicular to ``h``;
- depth axis ``d = h x l``: posterior -> anterior.

``e(u) = sum_i |A[:, i] . u|`` is the extent of one voxel along ``u``. The mid-sagittal section is the
disc cut by the plane through its centroid perpendicular to ``l``; a voxel at lateral offset ``s`` from
the centroid counts with weight ``max(0, 1 - |s| / e(l)) / e(l)`` (per mm), which interpolates linearly
between the two voxel layers nearest the plane and is unbiased for oblique grids. Measures
(:data:`UNITS`):

- ``volume``: voxels x ``|det A|``;
- ``midsagittal_area``: ``|det A|`` x the summed weights of the section;
- ``depth``: antero-posterior extent of the section: range of its voxels' ``d`` coordinates + ``e(d)``;
- ``width``: lateral extent of the whole disc: range of ``l`` coordinates + ``e(l)``;
- ``height_posterior``, ``height_middle``, ``height_anterior``: the section's area within the posterior,
  central and anterior fifth of its depth divided by the fifth's length (the mean height there; each
  voxel spans ``e(d)`` along ``d`` and counts with the fraction of it inside the fifth);
- ``height_mean``: ``midsagittal_area / depth``; ``height_depth_ratio``: ``height_mean / depth``;
- ``centroid_r``, ``centroid_a``, ``centroid_s``: mean world coordinate of the voxel centres (RAS+);
- ``intensity_mean``, ``intensity_median``: of the image's voxels in the disc; ``*_stretched``: the
  same after the input's contrast stretch (:func:`stretched_image`, 0-255).

Example:
    >>> import numpy as np
    >>> from discnet.io import Volume
    >>> labels = np.zeros((12, 10, 6), np.uint8); labels[1:11, 1:9, 2:4] = 1  # 10 x 8 x 2 voxels of 1 mm
    >>> row = disc_measures(Volume(labels, np.eye(4)), {1: "L5-S1"})[0]
    >>> row["volume"], row["midsagittal_area"], row["depth"], row["width"], row["height_middle"]
    (160.0, 16.0, 8.0, 10.0, 2.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from discnet.data.intensity import stretch, stretch_slices
from discnet.data.preprocess import InputConfig, input_presets
from discnet.data.slices import from_slices, to_slices
from discnet.evaluation.volumes import LabelMappingWarning, label_counts, match_labels
from discnet.io import Volume, from_canonical, read_volume, to_canonical
from discnet.spine import ordered_levels

#: Unit of every measure, in the order of the wide table's columns.
UNITS: dict[str, str] = {
    "volume": "mm^3",
    "midsagittal_area": "mm^2",
    "height_anterior": "mm",
    "height_middle": "mm",
    "height_posterior": "mm",
    "height_mean": "mm",
    "depth": "mm",
    "width": "mm",
    "height_depth_ratio": "1",
    "centroid_r": "mm",
    "centroid_a": "mm",
    "centroid_s": "mm",
    "intensity_mean": "image",
    "intensity_median": "image",
    "intensity_mean_stretched": "0-255",
    "intensity_median_stretched": "0-255",
}
KEYS = ["subject", "session", "level", "label"]
TIDY = ["subject", "session", "level", "measure", "value", "unit"]
#: The fifths of the section's depth (from the posterior edge) whose mean height is reported.
STRIPS = {"height_posterior": (0.0, 0.2), "height_middle": (0.4, 0.6), "height_anterior": (0.8, 1.0)}


def stretched_image(image: Volume, cfg: InputConfig) -> np.ndarray:
    """The image's voxels after ``cfg``'s contrast stretch (0-255), in the image's own voxel order.

    ``cfg.stretch`` ``"volume"`` stretches on the whole volume's percentiles, ``"slice"`` on each sagittal
    slice's (as training does), ``"none"`` returns the raw voxels as float32.

    Example:
        >>> v = Volume(np.arange(1000, dtype=np.float32).reshape(10, 10, 10), np.eye(4))
        >>> float(stretched_image(v, InputConfig()).max())
        255.0
    """
    if cfg.stretch == "volume":
        return stretch(image.array, cfg.lower, cfg.upper)
    if cfg.stretch == "slice":
        ras, _ = to_canonical(image)
        slices = stretch_slices(np.ascontiguousarray(to_slices(ras.astype(np.float32))), cfg.lower, cfg.upper)
        return from_canonical(from_slices(slices), image)
    return np.asarray(image.array, np.float32)


def voxel_extent(linear: np.ndarray, direction: np.ndarray) -> float:
    """Extent (mm) of one voxel along a unit ``direction``: ``sum_i |A[:, i] . u|``.

    Example:
        >>> voxel_extent(np.diag([2.0, 1.0, 3.0]), np.array([0.0, 0.0, 1.0]))
        3.0
    """
    return float(np.abs(direction @ linear).sum())


def disc_frame(points: np.ndarray, linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid and the rows (height, lateral, depth) of the disc's frame (module docstring).

    Example:
        >>> pts = np.array([[x, y, z] for x in range(4) for y in range(3) for z in range(1)], float)
        >>> c, axes = disc_frame(pts, np.eye(3))
        >>> axes.round(3).tolist()
        [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    centroid = points.mean(axis=0)
    moments = np.cov(points.T, bias=True).reshape(3, 3) + linear @ linear.T / 12.0
    _, vectors = np.linalg.eigh(moments)
    height = vectors[:, 0] * (1.0 if vectors[2, 0] >= 0 else -1.0)
    lateral = np.array([1.0, 0.0, 0.0]) - height[0] * height
    if np.linalg.norm(lateral) < 1e-6:  # a disc thinnest left-right: take its widest axis as lateral
        lateral = vectors[:, 2] - (vectors[:, 2] @ height) * height
    lateral /= np.linalg.norm(lateral)
    lateral *= 1.0 if lateral[0] >= 0 else -1.0
    return centroid, np.stack([height, lateral, np.cross(height, lateral)])


def _strip_height(depth: np.ndarray, weight: np.ndarray, extent: float, lo: float, hi: float) -> float:
    """Mean height in [lo, hi] along depth: the section's area there over ``hi - lo`` (voxel volume 1)."""
    inside = np.clip(np.minimum(depth + extent / 2, hi) - np.maximum(depth - extent / 2, lo), 0.0, None) / extent
    return float((weight * inside).sum() / (hi - lo))


def shape_measures(points: np.ndarray, linear: np.ndarray) -> dict[str, float]:
    """Geometric measures of one disc from its voxel centres (world mm) and the affine's linear part.

    Example:
        >>> pts = np.array([[x, y, z] for x in range(4) for y in range(3) for z in range(2)], float)
        >>> m = shape_measures(pts, np.eye(3))
        >>> m["volume"], m["depth"], m["width"], m["height_mean"]
        (24.0, 3.0, 4.0, 2.0)
    """
    voxel_volume = float(abs(np.linalg.det(linear)))
    centroid, (height, lateral, depth_axis) = disc_frame(points, linear)
    offsets = points - centroid
    side, depth = offsets @ lateral, offsets @ depth_axis
    thick, long = voxel_extent(linear, lateral), voxel_extent(linear, depth_axis)
    weight = np.clip(1.0 - np.abs(side) / thick, 0.0, None) / thick
    section = weight > 0
    lo, hi = depth[section].min() - long / 2, depth[section].max() + long / 2
    out = {"volume": len(points) * voxel_volume, "midsagittal_area": float(weight.sum()) * voxel_volume}
    for name, (a, b) in STRIPS.items():
        span = hi - lo
        out[name] = voxel_volume * _strip_height(depth[section], weight[section], long, lo + a * span, lo + b * span)
    out["depth"] = float(hi - lo)
    out["width"] = float(np.ptp(side) + thick)
    out["height_mean"] = out["midsagittal_area"] / out["depth"]
    out["height_depth_ratio"] = out["height_mean"] / out["depth"]
    out |= dict(zip(("centroid_r", "centroid_a", "centroid_s"), map(float, centroid), strict=True))
    return out


def _intensities(values: np.ndarray, suffix: str) -> dict[str, float]:
    return {f"intensity_mean{suffix}": float(np.mean(values)), f"intensity_median{suffix}": float(np.median(values))}


def disc_measures(
    labels: Volume,
    levels: Mapping[int, str],
    image: Volume | None = None,
    input_cfg: InputConfig | None = None,
    where=None,
) -> list[dict]:
    """One row per disc level present (superior to inferior): ``level``, ``label`` and :data:`UNITS`.

    Label values are matched to ``levels`` as :func:`discnet.evaluation.volumes.match_labels` does (its notes are
    issued as :class:`~discnet.evaluation.volumes.LabelMappingWarning`). ``image`` (same
    grid as ``labels``) gives the intensities (NaN without it); ``input_cfg`` the stretch (default: the
    ``stretched`` preset's 2.5-97.5 percentiles of the volume). Nothing is modified.

    Example:
        >>> lab = np.zeros((3, 3, 3), np.uint8); lab[1, 1, 1] = 2
        >>> [(r["level"], r["volume"]) for r in disc_measures(Volume(lab, np.eye(4)), {2: "L4-L5"})]
        [('L4-L5', 1.0)]
    """
    array = np.asarray(labels.array)
    mapping, lines = match_labels(label_counts(array), levels, where if where is not None else labels.path)
    for line in lines:
        warnings.warn(line, LabelMappingWarning, stacklevel=2)
    by_level = {level_value: value for value, level_value in mapping.items()}
    raw = stretched = None
    if image is not None:
        if image.shape != labels.shape:
            raise ValueError(f"image shape {image.shape} differs from the labels' {labels.shape}")
        raw = np.asarray(image.array, np.float64)
        stretched = stretched_image(image, input_cfg or input_presets()["stretched"])
    linear, offset = labels.affine[:3, :3], labels.affine[:3, 3]
    rows = []
    for level_value, name in ordered_levels(levels).items():
        if level_value not in by_level:
            continue
        inside = array == by_level[level_value]
        points = np.argwhere(inside) @ linear.T + offset
        row = {"level": name, "label": int(by_level[level_value])} | shape_measures(points, linear)
        if raw is None:
            row |= {key: float("nan") for key in UNITS if key.startswith("intensity")}
        else:
            row |= _intensities(raw[inside], "") | _intensities(stretched[inside], "_stretched")
        rows.append({key: row[key] for key in ["level", "label", *UNITS]})
    return rows


def measurements_table(
    scans: list[tuple[str, int, str, str | None]], levels: Mapping[int, str], input_cfg: InputConfig | None = None
) -> pd.DataFrame:
    """Wide table (:data:`KEYS` + :data:`UNITS`) of ``(subject, session, label file, image file or None)`` scans.

    Example:
        >>> measurements_table([], {1: "L5-S1"}).columns.tolist()[:5]
        ['subject', 'session', 'level', 'label', 'volume']
    """
    from discnet.evaluation.evaluate import check_same_grid

    rows = []
    for subject, session, label_path, image_path in scans:
        labels = read_volume(label_path, kind="label")
        image = None if image_path is None else read_volume(image_path)
        if image is not None:
            check_same_grid(image, labels, what="label map")
        for row in disc_measures(labels, levels, image, input_cfg):
            rows.append({"subject": subject, "session": int(session), **row})
    return pd.DataFrame(rows, columns=[*KEYS, *UNITS])


def tidy(wide: pd.DataFrame) -> pd.DataFrame:
    """Long form of a wide table (``subject, session, level`` + :data:`UNITS` columns): one row per measure.

    Example:
        >>> w = pd.DataFrame([{"subject": "a", "session": 1, "level": "L5-S1", "volume": 2.0}])
        >>> tidy(w).values.tolist()
        [['a', 1, 'L5-S1', 'volume', 2.0, 'mm^3']]
    """
    measures = [m for m in UNITS if m in wide.columns]
    long = wide.reset_index(drop=True).melt(
        id_vars=["subject", "session", "level"], value_vars=measures, var_name="measure", ignore_index=False
    )
    long["_order"] = long["measure"].map({m: i for i, m in enumerate(measures)})
    long = long.rename_axis("_row").sort_values(["_row", "_order"]).drop(columns="_order")
    long["unit"] = long["measure"].map(UNITS)
    return long[TIDY].reset_index(drop=True)
