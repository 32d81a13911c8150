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
import io
import shlex
from pathlib import Path

from discnet.errors import InputError
from discnet.io.limits import check_limit
from discnet.spine import DEFAULT_LABELS, LEVELS


def default_levels() -> dict[int, str]:
    """The default mapping (1 = L5-S1 ... 5 = L1-L2)."""
    return {value: level for level, value in DEFAULT_LABELS.items()}


def check_known_names(levels: dict[int, str], where: str | Path | None = None) -> dict[int, str]:
    """``levels`` unchanged when every name is a lumbar level (L1-L2 ... L5-S1), else an InputError.

    Example:
        >>> check_known_names({1: "L5-S1"})
        {1: 'L5-S1'}
    """
    unknown = [name for name in levels.values() if name not in LEVELS]
    if unknown:
        raise InputError(where, f"names unknown level(s) {unknown}", f"use the level names {', '.join(LEVELS)}")
    return levels


def _text(path: Path) -> str:
    check_limit("text_bytes", path.stat().st_size, path, "bytes")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(path, f"is not UTF-8 text (byte {err.start})", "save it as UTF-8 text") from err


def _add(levels: dict[int, str], rows: dict[int, int], value: int, level: str, row: int, path: Path) -> None:
    if value in levels:
        raise InputError(path, f"gives label value {value} twice (rows {rows[value]} and {row})", "keep one")
    levels[value], rows[value] = level, row


def _read_csv(path: Path) -> dict[int, str]:
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    if not reader.fieldnames or not {"label", "level"} <= set(reader.fieldnames):
        raise InputError(path, "needs the columns 'label,level'", "write one row per label value")
    levels: dict[int, str] = {}
    rows: dict[int, int] = {}
    for number, row in enumerate(reader, 2):
        label, level = row.get("label"), row.get("level")
        if label is None or level is None or not label.strip() or not level.strip():
            raise InputError(path, f"row {number} has a missing field", "give each row a label and a level")
        try:
            value = int(label)
        except ValueError as err:
            raise InputError(
                path, f"row {number} has a label that is not an integer ({label!r})", "use integers"
            ) from err
        _add(levels, rows, value, level.strip(), number, path)
    if not levels:
        raise InputError(path, "needs the columns 'label,level'", "write one row per label value")
    return levels


def _read_itksnap(path: Path) -> dict[int, str]:
    levels: dict[int, str] = {}
    rows: dict[int, int] = {}
    for number, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            fields = shlex.split(line)
        except ValueError as err:
            raise InputError(path, f"line {number} is not an ITK-SNAP label line ({err})", "export it again") from err
        if len(fields) < 8:
            raise InputError(path, f"line {number} is not an ITK-SNAP label line", "export it from ITK-SNAP again")
        try:
            index = int(fields[0])
        except ValueError as err:
            raise InputError(path, f"line {number} has a non-integer label index {fields[0]!r}", "fix it") from err
        if index != 0:
            _add(levels, rows, index, fields[7], number, path)
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
