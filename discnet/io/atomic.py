"""Atomic file writes: write to a temporary sibling, rename on success.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("hi")
    >>> out.read_text()
    'hi'
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from discnet.errors import InputError
from discnet.io.guard import check_output

#: Errors of a full, read-only or forbidden output disk: reported as one line naming the output.
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}
_DISK_FIX = "free disk space, fix the folder's rights or choose another output path"


def full_suffix(path: Path) -> str:
    """Suffix including a compression suffix, e.g. ``.nii.gz``."""
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-1].lower() in {".gz", ".bz2", ".xz"}:
        return "".join(suffixes[-2:])
    return path.suffix


def file_stem(path: str | Path) -> str:
    """The file name without its :func:`full_suffix`.

    Example:
        >>> file_stem("scans/sub11_T2w.nii.gz")
        'sub11_T2w'
    """
    path = Path(path)
    suffix = full_suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def _stem_and_suffix(final: Path) -> tuple[str, str]:
    return file_stem(final), full_suffix(final)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphaned_temporaries(final: str | os.PathLike) -> list[Path]:
    """Delete temporaries of ``final`` left by a killed writer (their process is gone); the deleted paths.

    A writer killed with SIGKILL cannot clean up; the next write of the same file does it. Temporaries of
    living processes (another writer at work) are kept.
    """
    final = Path(final)
    stem, suffix = _stem_and_suffix(final)
    removed = []
    for tmp in final.parent.glob(f".{stem}.tmp-*{suffix}"):
        pid = tmp.name[len(stem) + 6 :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` if the block succeeds.

    The temporary file keeps ``final``'s suffix so that format detection by extension still works. On an
    exception (or interruption) the temporary file is removed and ``final`` is left untouched; a full or
    read-only disk becomes an InputError naming ``final``.
    """
    final = Path(final)
    check_output(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        problem = f"output folder cannot be created ({err.strerror or err})"
        raise InputError(final.parent, problem, "choose another output path") from err
    stem, suffix = _stem_and_suffix(final)
    remove_orphaned_temporaries(final)
    tmp = final.with_name(f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as err:
        if err.errno not in _DISK_ERRORS:
            raise
        raise InputError(final, f"cannot be written ({err.strerror or err})", _DISK_FIX) from err
    except RuntimeError as err:  # torch.save reports a failed write as a RuntimeError
        if "write failed" not in str(err) and "failed writing" not in str(err):
            raise
        raise InputError(final, "cannot be written (the disk refused the data: full?)", _DISK_FIX) from err
    finally:
        if tmp.exists():
            tmp.unlink()
