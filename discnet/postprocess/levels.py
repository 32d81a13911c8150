"""Name the discs of a binary mask by spinal level, superior to inferior in world coordinates.

Each 3D connected component of the mask (after orphan removal) is one disc. Its voxel centroid is
mapped through the affine to world millimetres (RAS+), and the components are sorted by the world
superior coordinate, highest first, so the array may be in any orientation.

Components smaller than ``min_fraction`` (default 10%) of the median size of the ``expected`` largest
are fragments, not discs: they are dropped before counting (``info["fragments"]``). On a real scan a
piece of the T12-L1 disc at the top of the field of view, counted as a disc while L5-S1 was missed, had
shifted every level name by one without any warning.

When the count differs from ``expected`` a :class:`DiscCountWarning` is emitted and:

- more components: ``surplus="largest"`` (default) keeps the ``expected`` largest and drops the rest
  (listed in ``info["dropped"]``); ``surplus="anchor"`` keeps the ``expected`` nearest the ``anchor``
  end instead. Each is wrong where the other is right, and on the three public lumbar scans each was
  right once: on one the field of view also held T12-L1, a whole disc the annotators did not draw,
  while L5-S1 was found only in part, so "largest" dropped L5-S1 and shifted every name by one; on
  another a small false positive lay below L5-S1, in the sacrum, and "anchor" kept it as L5-S1 and
  dropped L1-L2. "largest" stays the default (chosen before either was seen; false positives that
  survive orphan removal are usually small); check the warning either way;
- fewer components: names are assigned from the ``anchor`` end. ``"inferior"`` (default) names the
  lowest component L5-S1 and goes up, because a lumbar scan almost always contains L5-S1 while
  L1-L2 is the disc most often cut off at the top of the field of view. Two touching discs form
  one component, which also gives too few; check the warning.

Example:
    >>> m = np.zeros((4, 4, 12), bool); m[1:3, 1:3, [1, 2, 4, 5, 7, 8]] = True
    >>> lab, info = label_levels(m, np.eye(4), expected=3)
    >>> [d["level"] for d in info["discs"]]
    ['L3-L4', 'L4-L5', 'L5-S1']
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

from discnet.spine import DEFAULT_LABELS, LEVELS, SURPLUS


class DiscCountWarning(UserWarning):
    """The mask has a different number of disc components than expected."""


def label_levels(
    mask: np.ndarray,
    affine: np.ndarray,
    levels: Sequence[str] = LEVELS,
    label_values: Mapping[str, int] = DEFAULT_LABELS,
    expected: int | None = None,
    connectivity: int = 3,
    anchor: str = "inferior",
    min_fraction: float = 0.1,
    surplus: str = "largest",
) -> tuple[np.ndarray, dict]:
    """Label map (uint8) of the disc components of ``mask``, named by level.

    Args:
        mask: 3D array in any orientation; nonzero = disc.
        affine: 4x4 voxel-to-world (RAS+, mm) matrix of ``mask``.
        levels: level names, superior to inferior.
        label_values: label value (1..255) of each level name.
        expected: number of discs in the field of view; None = ``len(levels)``.
        connectivity: 3D connectivity as in ``scipy.ndimage.generate_binary_structure``:
            1 = 6-, 2 = 18-, 3 = 26-connectivity.
        anchor: ``"inferior"`` or ``"superior"``: the end names start from when too few are found, and
            the end whose discs are kept when too many are found (``surplus="anchor"``).
        min_fraction: components under this fraction of the median size of the ``expected`` largest
            are fragments, dropped before counting (0 keeps every component).
        surplus: ``"largest"`` or ``"anchor"``: which ``expected`` components are kept when more are found.

    Returns:
        ``(label_map, info)``; ``info`` has ``"discs"`` (superior to inferior), ``"dropped"`` (not
        kept, largest first) and ``"fragments"``, lists of ``{"level", "label", "voxels", "centroid_mm"}``
        (level and label None when dropped), plus ``"found"`` (discs, fragments not counted) and
        ``"expected"`` counts.

    Example:
        >>> m = np.zeros((2, 2, 4), bool); m[..., 0] = m[..., 3] = True
        >>> lab, info = label_levels(m, np.eye(4), expected=2)
        >>> lab[0, 0].tolist(), info["found"]
        ([1, 0, 0, 2], 2)
    """
    mask = np.asarray(mask)
    affine = np.asarray(affine, dtype=float)
    expected = len(levels) if expected is None else expected
    _check(mask, affine, levels, label_values, expected, connectivity, anchor, surplus)

    disc = mask != 0
    box = bounding_box(disc)
    lab, n = ndimage.label(disc[box], structure=ndimage.generate_binary_structure(3, connectivity))
    sizes, centroids = _sizes_and_world_centroids(lab, n, affine, [s.start for s in box])
    by_size = sorted(range(n), key=lambda i: (-sizes[i], -centroids[i][2]))
    typical = float(np.median([sizes[i] for i in by_size[:expected]])) if n else 0.0
    fragments = [i for i in by_size if sizes[i] < min_fraction * typical]
    candidates = [i for i in by_size if sizes[i] >= min_fraction * typical]
    kept = _kept(candidates, expected, [centroids[i][2] for i in range(n)], anchor, surplus)
    dropped = sorted(set(candidates) - set(kept), key=candidates.index)  # largest first
    names = list(levels[: len(kept)] if anchor == "superior" else levels[len(levels) - len(kept) :])
    if len(candidates) != expected:
        message = _count_message(len(candidates), expected, names, [sizes[i] for i in dropped], anchor, surplus)
        warnings.warn(message, DiscCountWarning, stacklevel=2)

    value_of = np.zeros(n + 1, np.uint8)
    discs = []
    for i, name in zip(kept, names, strict=True):
        value_of[i + 1] = label_values[name]
        discs.append(_entry(name, label_values[name], sizes[i], centroids[i]))
    info = {
        "discs": discs,
        "dropped": [_entry(None, None, sizes[i], centroids[i]) for i in dropped],
        "fragments": [_entry(None, None, sizes[i], centroids[i]) for i in fragments],
        "found": len(candidates),
        "expected": expected,
    }
    label_map = np.zeros(mask.shape, np.uint8)
    label_map[box] = value_of[lab]
    return label_map, info


def _kept(candidates: list[int], expected: int, superior: list[float], anchor: str, surplus: str) -> list[int]:
    """The ``expected`` of ``candidates`` (largest first) to name, superior to inferior; of two at one
    height nearest the anchor end, the larger.

    Example:
        >>> heights = [30.0, 20.0, 10.0]
        >>> _kept([0, 1, 2], 2, heights, "inferior", "anchor"), _kept([0, 1, 2], 2, heights, "inferior", "largest")
        ([1, 2], [0, 1])
    """
    if surplus == "largest":
        chosen = candidates[:expected]
    else:  # nearest the anchor end first; the stable sort keeps the larger of a tie first
        chosen = sorted(candidates, key=lambda i: -superior[i] if anchor == "superior" else superior[i])[:expected]
    return sorted(chosen, key=lambda i: -superior[i])


def _check(mask, affine, levels, label_values, expected, connectivity, anchor, surplus) -> None:
    if mask.ndim != 3:
        raise ValueError(f"expected a 3D mask, got shape {mask.shape}")
    if affine.shape != (4, 4):
        raise ValueError(f"expected a 4x4 affine, got shape {affine.shape}")
    if not 1 <= expected <= len(levels):
        raise ValueError(f"expected must be 1..{len(levels)} (the number of levels), got {expected}")
    if connectivity not in (1, 2, 3):
        raise ValueError(f"connectivity must be 1, 2 or 3, got {connectivity}")
    if anchor not in ("inferior", "superior"):
        raise ValueError(f"anchor must be 'inferior' or 'superior', got {anchor!r}")
    if surplus not in SURPLUS:
        raise ValueError(f"surplus must be one of {SURPLUS}, got {surplus!r}")
    missing = [name for name in levels if name not in label_values]
    if missing:
        raise ValueError(f"label_values has no value for {missing}")
    bad = [v for v in (label_values[name] for name in levels) if not 1 <= v <= 255]
    if bad:
        raise ValueError(f"label values must be 1..255 to fit uint8, got {bad}")


def bounding_box(disc: np.ndarray) -> tuple[slice, ...]:
    """Smallest box holding all disc voxels (empty slices for an empty mask)."""
    if not disc.any():
        return (slice(0, 0),) * disc.ndim
    box = []
    for axis in range(disc.ndim):
        hits = np.flatnonzero(disc.any(axis=tuple(a for a in range(disc.ndim) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _sizes_and_world_centroids(lab, n, affine, origin) -> tuple[list, list]:
    """Voxel count and world (RAS+ mm) voxel centroid of components 1..n of a box at ``origin``."""
    if n == 0:
        return [], []
    coords = np.nonzero(lab)
    ids = lab[coords]
    sizes = np.bincount(ids, minlength=n + 1)[1:]
    ijk = np.stack([np.bincount(ids, c, minlength=n + 1)[1:] for c in coords], axis=1) / sizes[:, None]
    ijk += np.asarray(origin, float)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    return sizes.tolist(), [tuple(float(v) for v in w) for w in world]


def _entry(level, label, voxels, centroid) -> dict:
    return {"level": level, "label": label, "voxels": int(voxels), "centroid_mm": centroid}


def kept_what(expected: int, anchor: str, surplus: str) -> str:
    """How the kept discs were chosen, in words.

    Example:
        >>> kept_what(5, "inferior", "anchor")
        'kept the 5 nearest the inferior end'
    """
    return f"kept the {expected} largest" if surplus == "largest" else f"kept the {expected} nearest the {anchor} end"


def _count_message(found, expected, names, dropped_sizes, anchor, surplus) -> str:
    text = f"found {found} disc components, expected {expected}"
    if dropped_sizes:
        return f"{text}; {kept_what(expected, anchor, surplus)}, dropped {len(dropped_sizes)} of {dropped_sizes} voxels"
    if not names:
        return f"{text}; nothing to label"
    return (
        f"{text}; named them {names[0]}..{names[-1]} counting from the {anchor} end "
        "(touching discs merge into one component; pass anchor= to count from the other end)"
    )
