"""On-disk cache of preprocessed slice stacks, keyed by the source files and the preprocessing settings.

A sweep of many runs over the same data preprocesses each volume once; later runs load tensors.

Example:
    >>> import pathlib, tempfile
    >>> scan = pathlib.Path(tempfile.mkdtemp()) / "a.nii.gz"
    >>> _ = scan.write_bytes(b"scan")
    >>> key = cache_key([scan], {"size": 256})
    >>> len(key), key == cache_key([scan], {"size": 512})
    (16, False)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from discnet.data.preprocess import SliceStack
from discnet.io.atomic import atomic_path


def cache_key(paths: list[str | os.PathLike | None], settings: dict) -> str:
    """Hash of the files' paths, sizes and modification times and of ``settings``."""
    parts = []
    for path in paths:
        if path is not None:
            stat = os.stat(path)
            parts.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    blob = json.dumps([parts, settings], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _to_dict(stack: SliceStack) -> dict:
    out = {}
    for name, value in asdict(stack).items():
        out[name] = torch.as_tensor(value) if isinstance(value, np.ndarray) else value
    return out


def _from_dict(data: dict) -> SliceStack:
    values = {f.name: data[f.name] for f in fields(SliceStack)}
    for name in ("native_labels", "has_disc"):
        if isinstance(values[name], torch.Tensor):
            values[name] = values[name].numpy()
    values["native_shape"] = tuple(values["native_shape"])
    return SliceStack(**values)


def cached_stack(cache_dir: str | os.PathLike | None, key: str, compute: Callable[[], SliceStack]) -> SliceStack:
    """Load the stack stored under ``key`` in ``cache_dir``, or compute and store it.

    Without a ``cache_dir`` this just computes. Files are loaded with ``weights_only=True``.
    """
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / f"{key}.pt"
    if path.is_file():
        try:
            return _from_dict(torch.load(path, weights_only=True))
        except Exception:
            path.unlink(missing_ok=True)
    stack = compute()
    with atomic_path(path) as tmp:
        torch.save(_to_dict(stack), tmp)
    return stack
