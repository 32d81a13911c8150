"""The one check that no output overwrites an input, used by every verb that writes.

Two paths are the same file when their resolved paths are equal or, for existing files, when they
share a device and inode (``os.stat``): so a different spelling, a symlink or a hard link to an input is
refused too. Manifests count with the files they name (:func:`manifest_files`).

Example:
    >>> refuse_input("metrics.csv", ["truth.nii.gz", None])
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from discnet.errors import InputError

_FIX = "choose another output path (discnet never overwrites an input)"


def _identity(path: str | os.PathLike) -> tuple[Path, tuple[int, int] | None]:
    path = Path(path)
    try:
        stat = path.stat()
        inode = (stat.st_dev, stat.st_ino)
    except OSError:
        inode = None
    return path.resolve(), inode


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (same resolved path, or same device and inode)."""
    (path_a, inode_a), (path_b, inode_b) = _identity(a), _identity(b)
    return path_a == path_b or (inode_a is not None and inode_a == inode_b)


def manifest_files(manifest: str | os.PathLike) -> list[Path]:
    """The image and label files a ``subjects.csv`` names (relative to it); [] when it cannot be read."""
    manifest = Path(manifest)
    try:
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return []
    names = [v for column in ("image", "label") if column in table for v in table[column] if v.strip()]
    return [manifest.parent / name for name in names]


class InputFiles:
    """The files a command reads, to check each of its outputs against (:meth:`refuse`).

    A ``.csv`` input also stands for the files it names (a manifest's images and labels).
    """

    def __init__(self, inputs: Iterable[str | os.PathLike | None], what: str = "an input file"):
        given = [Path(p) for p in inputs if p is not None]
        named = [f for p in given if p.suffix.lower() == ".csv" and p.is_file() for f in manifest_files(p)]
        self.files = [(path, what, *_identity(path)) for path in given]
        self.files += [(path, "a file its manifest names", *_identity(path)) for path in named]

    def refuse(self, out: str | os.PathLike) -> None:
        """InputError when ``out`` is (through any spelling or link) one of the inputs."""
        resolved, inode = _identity(out)
        for path, what, other, other_inode in self.files:
            if resolved == other or (inode is not None and inode == other_inode):
                shown = "" if Path(out).name == path.name else f" ({path})"
                raise InputError(out, f"output path equals {what}{shown}", _FIX)


_PROTECTED: list[InputFiles] = []


def protect(inputs: Iterable[str | os.PathLike | None], what: str = "an input file") -> None:
    """Register the files a command reads: every later :func:`~discnet.io.atomic.atomic_path` write in
    this process refuses to replace one of them (verbs whose outputs are named by the code, not the user:
    report, leaderboard, stats, measure). ``.csv`` inputs protect the files they name too."""
    _PROTECTED.append(InputFiles(inputs, what))


def check_output(out: str | os.PathLike) -> None:
    """InputError when ``out`` is a file registered with :func:`protect`."""
    for files in _PROTECTED:
        files.refuse(out)


def refuse_input(
    out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], what: str = "an input file"
) -> None:
    """InputError when ``out`` is (through any spelling or link) one of ``inputs`` (None entries ignored)."""
    InputFiles(inputs, what).refuse(out)


def refuse_input_folder(out_dir: str | os.PathLike, folders: Iterable[str | os.PathLike]) -> None:
    """InputError when the output folder ``out_dir`` is one of the input ``folders`` (a re-run would read
    the outputs as inputs)."""
    for folder in folders:
        if Path(out_dir).exists() and same_file(out_dir, folder):
            raise InputError(out_dir, "output folder is an input folder", "write the outputs to another folder")


def refuse_existing_folder(out: str | os.PathLike) -> None:
    """InputError when the output file ``out`` is an existing folder."""
    if Path(out).is_dir():
        raise InputError(out, "is an existing folder, not a file name", "give the path of the file to write")
