"""Picture files: the formats discnet writes (by file name ending), the check of a name, and atomic saving.

Example:
    >>> check_picture_name("qc.svg").name
    'qc.svg'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from discnet.errors import InputError
from discnet.io.atomic import atomic_path

#: Picture formats matplotlib writes here, by file name ending.
FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_picture_name(path: str | Path) -> Path:
    """``path`` when its ending is a picture format of :data:`FORMATS`; InputError otherwise.

    Example:
        >>> check_picture_name("qc.svg").name
        'qc.svg'
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise InputError(path, "is not a picture file name", f"end it with one of {', '.join(FORMATS)}")
    return path


_FORMAT: ContextVar[str | None] = ContextVar("figure_format", default=None)


@contextmanager
def figure_format(fmt: str | None) -> Iterator[None]:
    """Figures saved inside the block by :func:`save` take the format ``fmt`` (``svg``; None: their own).

    The ``--figure-format`` option of the verbs that write figures under fixed names (report,
    leaderboard, agreement).

    Example:
        >>> with figure_format("svg"):
        ...     _named("leaderboard.png").name
        'leaderboard.svg'
    """
    if fmt is not None:
        check_picture_name(f"figure.{fmt}")
    token = _FORMAT.set(fmt)
    try:
        yield
    finally:
        _FORMAT.reset(token)


def _named(path: str | Path) -> Path:
    fmt = _FORMAT.get()
    return check_picture_name(Path(path) if fmt is None else Path(path).with_suffix(f".{fmt}"))


def save(fig, path: str | Path, dpi: int = 150) -> Path:
    """Write ``fig`` atomically and return its path: format from the suffix (one of :data:`FORMATS`),
    or the one :func:`figure_format` sets."""
    path = _named(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    return path
