"""Check level names against anatomy: the discs' superior-to-inferior order in world coordinates.

A label map names its discs through label values (``levels.csv``, an ITK-SNAP ``.label`` file or the
default 1 = L5-S1 ... 5 = L1-L2). When the named levels, sorted L1-L2 ... L5-S1, are not the discs
sorted by their centroid's world superior coordinate (RAS+ S, highest first), the names contradict
anatomy: a file labelled 5 = most inferior disc read with the default table would call it L1-L2.

Example:
    >>> import numpy as np
    >>> from discnet.io import Volume
    >>> a = np.zeros((1, 1, 6), np.uint8); a[0, 0, 1], a[0, 0, 4] = 5, 1  # 5 low, 1 high (S = 3rd axis)
    >>> order_problem(Volume(a, np.eye(4)), {1: "L5-S1", 5: "L1-L2"})
    'discs superior to inferior (world S) are labels 1, 5, which the levels name L5-S1, L1-L2 (anatomy: L1-L2 above L5-S1)'
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from discnet.errors import InputError
from discnet.io.volume import Volume
from discnet.spine import LEVELS, level_sort_key

#: Command-line flag that turns the refusal into a warning.
OVERRIDE_FLAG = "--ignore-level-order"
#: The disc column counts as superior-inferior when its direction's S cosine is at least this (45 degrees).
MIN_S_COSINE = 0.7


class LevelOrderWarning(UserWarning):
    """Level names contradict the discs' world order and the user asked to go on."""


def world_centroids(volume: Volume, values: list[int]) -> dict[int, np.ndarray]:
    """World (RAS+ mm) voxel centroid of each label value present in ``volume``.

    Example:
        >>> {v: c.tolist() for v, c in world_centroids(Volume(np.array([[[1, 0, 2]]]), np.eye(4)), [1, 2]).items()}
        {1: [0.0, 0.0, 0.0], 2: [0.0, 0.0, 2.0]}
    """
    array = np.asarray(volume.array)
    present = [v for v in values if (array == v).any()]
    if not present:
        return {}
    centroids = ndimage.center_of_mass(np.ones(array.shape), array, present)
    affine = np.asarray(volume.affine, float)
    return {v: affine[:3, :3] @ np.asarray(c) + affine[:3, 3] for v, c in zip(present, centroids, strict=True)}


def _along_s(centroids: dict[int, np.ndarray]) -> bool:
    """Whether the disc column (principal direction of the centroids) runs superior-inferior in the world:
    its S cosine is at least :data:`MIN_S_COSINE`. Headers with mislabelled axes fail this."""
    points = np.stack(list(centroids.values()))
    direction = np.linalg.svd(points - points.mean(axis=0))[2][0]
    return bool(abs(direction[2]) >= MIN_S_COSINE)


def order_problem(volume: Volume, levels: Mapping[int, str]) -> str | None:
    """Why the level names of ``volume``'s labels contradict their world order, or None when they agree.

    Only label values naming a known lumbar level (:data:`discnet.spine.LEVELS`) are compared; fewer
    than two such discs cannot disagree, nor discs that do not stack along world S (a header with
    mislabelled axes gives no superior-inferior order to check against).
    """
    known = [v for v, name in levels.items() if name in LEVELS]
    centroids = world_centroids(volume, known)
    if len(centroids) < 2 or not _along_s(centroids):
        return None
    by_position = sorted(centroids, key=lambda v: -centroids[v][2])
    by_name = sorted(centroids, key=lambda v: level_sort_key(levels[v]))
    if by_position == by_name:
        return None
    names = ", ".join(levels[v] for v in by_position)
    expected = " above ".join(levels[v] for v in by_name)
    return (
        f"discs superior to inferior (world S) are labels {', '.join(map(str, by_position))}, which the levels name "
        f"{names} (anatomy: {expected})"
    )


def check_level_order(volume: Volume, levels: Mapping[int, str], ignore: bool = False) -> str | None:
    """InputError naming ``volume``'s file when its level names contradict anatomy; with ``ignore`` the
    problem is returned as a warning line instead (None when the names agree).

    Example:
        >>> check_level_order(Volume(np.array([[[1, 0, 2]]]), np.eye(4)), {1: "L5-S1", 2: "L4-L5"})
    """
    problem = order_problem(volume, levels)
    if problem is None:
        return None
    if not ignore:
        raise InputError(
            volume.path,
            f"level names contradict anatomy: {problem}",
            f"give --levels naming this file's label values (levels.csv or ITK-SNAP .label), or {OVERRIDE_FLAG}",
        )
    return f"{volume.path}: level names contradict anatomy: {problem}"
