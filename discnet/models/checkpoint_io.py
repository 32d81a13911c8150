"""The Lightning ``CheckpointIO`` of discnet: every checkpoint that training opens or writes goes through it.

Reading uses discnet's safe reader (:func:`~discnet.models.checkpoint.read_checkpoint`:
``torch.load(weights_only=True)``, passed explicitly so that ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn
it off), also for Lightning's own resume paths (``ckpt_path``, ``last``, SLURM ``hpc`` checkpoints).
Remote checkpoints (``http://``, ``s3://``, ...) are refused unless ``allow_remote=True``, and are then
read into memory and loaded with ``weights_only=True`` as well. Writing goes to a temporary file in the
destination folder, flushed to disk and renamed (:func:`~discnet.io.atomic.atomic_path`), so a full
disk or a kill never leaves a truncated checkpoint under its final name.

Example:
    >>> io = SafeCheckpointIO()
    >>> is_remote("https://example.org/m.ckpt"), is_remote("runs/a/last.ckpt")
    (True, False)
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import CheckpointIO

from discnet.errors import InputError
from discnet.io.atomic import atomic_path
from discnet.io.limits import limit
from discnet.models.checkpoint import read_checkpoint

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local file."""
    return bool(_URL.match(str(path))) and not str(path).startswith("file://")


def refuse_remote(path: str | os.PathLike, allow_remote: bool) -> None:
    """InputError for a remote checkpoint unless ``allow_remote``."""
    if is_remote(path) and not allow_remote:
        raise InputError(
            path,
            "is a remote checkpoint: refused (a checkpoint from elsewhere may carry code)",
            "download it and give the local file, or set allow_remote_checkpoints=true (still read weights-only)",
        )


def _fetch(url: str) -> bytes:
    """The bytes of a remote file, at most the checkpoint size limit."""
    import fsspec

    most = limit("checkpoint_bytes")
    try:
        with fsspec.open(url, "rb") as f:
            data = f.read(most + 1)
    except Exception as err:  # network, protocol or missing-backend errors of any fsspec filesystem
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        raise InputError(url, f"cannot be downloaded ({first})", "check the URL or download it yourself") from err
    if len(data) > most:
        raise InputError(url, f"is larger than {most} bytes", "raise DISCNET_MAX_CHECKPOINT_BYTES if it is right")
    return data


def read_any_checkpoint(path: str | os.PathLike, allow_remote: bool = False) -> dict:
    """A local or (if allowed) remote checkpoint, read weights-only; InputError on anything else."""
    refuse_remote(path, allow_remote)
    if is_remote(path):
        return read_checkpoint(io.BytesIO(_fetch(str(path))), where=str(path))
    return read_checkpoint(Path(str(path).removeprefix("file://")))


class SafeCheckpointIO(CheckpointIO):
    """Reads checkpoints weights-only (local or allowed remote), writes them atomically in place.

    Args:
        allow_remote: accept ``scheme://`` checkpoint paths (``train.py allow_remote_checkpoints=true``).
    """

    def __init__(self, allow_remote: bool = False):
        self.allow_remote = allow_remote

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO.save_checkpoint takes no storage_options")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        return read_any_checkpoint(path, self.allow_remote)

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)
