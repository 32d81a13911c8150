"""Spine vocabulary: the lumbar disc levels, their anatomical order, default label values, Pfirrmann grades.

Every module that names, sorts or parses a level or a grade uses these; nothing else lists them.

Example:
    >>> LEVELS[0], DEFAULT_LABELS["L5-S1"], GRADES[3]
    ('L1-L2', 1, 'IV')
    >>> sorted_levels(["L5-S1", "T12-L1", "L1-L2"])
    ['L1-L2', 'L5-S1', 'T12-L1']
    >>> grade_number("iv"), grade_name(2), grade_name("NA")
    (4, 'II', None)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

#: Disc levels from superior to inferior.
LEVELS: tuple[str, ...] = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")

#: Default label value of each level (as in ../shared/data/lumbar-t2: 1 = L5-S1 ... 5 = L1-L2).
DEFAULT_LABELS: dict[str, int] = {level: 5 - i for i, level in enumerate(LEVELS)}

#: Which discs are kept when more are found than expected: the largest, or those nearest the anchor end
#: (see :func:`discnet.postprocess.levels.label_levels`).
SURPLUS: tuple[str, ...] = ("largest", "anchor")

#: Test-time augmentations (predict's ``--tta``, a model's ``tta``): axes of the canonical (RAS) array mirrored, 1 = anterior-posterior (the columns
#: of a sagittal slice as the network sees it), 2 = superior-inferior (its rows).
FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "flip": ((), (1,)),
    "flip-all": ((), (1,), (2,), (1, 2)),
}

#: Pfirrmann grades, I (healthy) to V (collapsed), as roman numerals.
GRADES: tuple[str, ...] = ("I", "II", "III", "IV", "V")

#: Cell texts that mean "not known" (upper case): a grade, an age.
UNKNOWN_TEXTS = frozenset({"", "NA", "N/A", "NAN"})


def natural_key(text) -> tuple:
    """Sort key ordering digits by value: ``model2`` before ``model10``.

    Example:
        >>> sorted(["m10", "m2", "m1"], key=natural_key)
        ['m1', 'm2', 'm10']
    """
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(text)))


def level_sort_key(name) -> tuple:
    """Sort key putting the known lumbar levels superior to inferior, other names after them (naturally).

    Example:
        >>> sorted(["L5-S1", "T12-L1", "L1-L2"], key=level_sort_key)
        ['L1-L2', 'L5-S1', 'T12-L1']
    """
    name = str(name)
    return (LEVELS.index(name), ()) if name in LEVELS else (len(LEVELS), natural_key(name))


def sorted_levels(names: Iterable) -> list[str]:
    """The distinct level names in ``names``, superior to inferior, unknown names after them."""
    return sorted({str(n) for n in names}, key=level_sort_key)


def ordered_levels(levels: Mapping[int, str]) -> dict[int, str]:
    """``levels`` (label value -> name) reordered superior to inferior.

    Example:
        >>> ordered_levels({1: "L5-S1", 2: "L4-L5"})
        {2: 'L4-L5', 1: 'L5-S1'}
    """
    return dict(sorted(levels.items(), key=lambda item: level_sort_key(item[1])))


def _missing(value) -> bool:
    """NaN, pandas' NA or NaT (without importing pandas)."""
    try:
        return bool(value != value)
    except TypeError:
        return True


def grade_number(value) -> int | None:
    """Pfirrmann grade 1-5 from ``1``-``5`` or ``I``-``V`` (any case); None when unknown.

    Raises:
        ValueError: ``value`` is neither a grade nor one of :data:`UNKNOWN_TEXTS`.
    """
    if value is None or _missing(value):
        return None
    text = str(value).strip().upper()
    if text in UNKNOWN_TEXTS:
        return None
    if text in GRADES:
        return GRADES.index(text) + 1
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if number.is_integer() and 1 <= number <= len(GRADES):
        return int(number)
    raise ValueError(f"{value!r} is not a Pfirrmann grade (1-5 or I-V)")


def grade_name(value) -> str | None:
    """Pfirrmann grade as a roman numeral (1-5 or I-V in); None for an unknown or invalid grade."""
    try:
        number = grade_number(value)
    except ValueError:
        return None
    return None if number is None else GRADES[number - 1]
