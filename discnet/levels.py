"""Lumbar disc level names and their default label values.

Example:
    >>> LEVELS[0], DEFAULT_LABELS["L5-S1"]
    ('L1-L2', 1)
"""

from __future__ import annotations

#: Disc levels from superior to inferior.
LEVELS: tuple[str, ...] = ("L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1")

#: Default label value of each level (as in ../shared/data/lumbar-t2: 1 = L5-S1 ... 5 = L1-L2).
DEFAULT_LABELS: dict[str, int] = {level: 5 - i for i, level in enumerate(LEVELS)}
