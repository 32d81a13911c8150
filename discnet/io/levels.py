"""Level names of label values: a ``levels.csv`` (``label,level``) or an ITK-SNAP label description.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "levels.csv"
    >>> _ = p.write_text("label,level\\n1,L5-S1\\n2,L4-L5\\n")
    >>> read_levels(p)
    {1: 'L5-S1', 2: 'L4-L5'}
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

from discnet.errors import InputError
from discnet.levels import DEFAULT_LABELS


def default_levels() -> dict[int, str]:
    """The default mapping (1 = L5-S1 ... 5 = L1-L2)."""
    return {value: level for level, value in DEFAULT_LABELS.items()}


def _read_csv(path: Path) -> dict[int, str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"label", "level"} <= set(rows[0]):
        raise InputError(path, "needs the columns 'label,level'", "write one row per label value")
    try:
        return {int(row["label"]): row["level"].strip() for row in rows}
    except ValueError as err:
        raise InputError(path, f"has a label that is not an integer ({err})", "use integer label values") from err


def _read_itksnap(path: Path) -> dict[int, str]:
    levels = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = shlex.split(line)
        if len(fields) < 8:
            raise InputError(path, f"line {number} is not an ITK-SNAP label line", "export it from ITK-SNAP again")
        index = int(fields[0])
        if index != 0:
            levels[index] = fields[7]
    return levels


def read_levels(path: str | Path | None) -> dict[int, str]:
    """Label value -> level name from ``levels.csv`` or an ITK-SNAP ``.label``/``.txt`` file.

    ``None`` gives the default mapping. Label 0 (ITK-SNAP's "Clear") is background and left out.
    """
    if path is None:
        return default_levels()
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a levels file" if path.is_dir() else "levels file not found"
        raise InputError(path, problem, "give a levels.csv (label,level) or ITK-SNAP .label file")
    levels = _read_csv(path) if path.suffix.lower() == ".csv" else _read_itksnap(path)
    if len(set(levels.values())) != len(levels):
        raise InputError(path, "names the same level twice", "give each level one label value")
    return levels
