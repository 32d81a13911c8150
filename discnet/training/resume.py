"""Resuming a training run as the same run: which checkpoint to resume from, and every random state.

:class:`RandomStates` stores the torch (CPU and CUDA), numpy and Python random states in each checkpoint
and puts them back when the resumed epoch starts (the training sampler's generator is the datamodule's
state, :meth:`~discnet.data.datamodule.DiscDataModule.state_dict`), so an interrupted run ends with the
same weights, bit for bit, as an uninterrupted one.
:func:`resume_path` picks the checkpoint: ``ckpt_path`` when given (remote only when allowed), else the
run's ``last.ckpt``; an unreadable ``last.ckpt`` (a truncated write) is set aside and the run resumes
from ``best.ckpt`` or starts fresh, saying which in one line.

Example:
    >>> states = RandomStates().state_dict()
    >>> sorted(states)
    ['cuda', 'numpy', 'python', 'torch']
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from discnet.errors import InputError
from discnet.models.checkpoint import read_checkpoint
from discnet.models.checkpoint_io import read_any_checkpoint
from discnet.models.run_folder import RunFolder


class RandomStates(Callback):
    """Saves the random states in each checkpoint; restores them when the resumed training epoch starts.

    Restoring at the start of the epoch (not when the checkpoint is read) skips the draws that only a
    resumed run makes (building the model, preparing data), so the next epoch draws what it drew in the
    uninterrupted run: the states were saved at the end of the previous epoch, with nothing drawn between.
    """

    def __init__(self):
        self._pending: dict | None = None

    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {
                "kind": kind,
                "keys": torch.as_tensor(keys.astype(np.int64)),
                "pos": pos,
                "gauss": [has_gauss, gauss],
            },
            "python": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = dict(state_dict)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self._pending = self._pending, None
        if not state:
            return
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], *n["gauss"]))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


class WallTime(Callback):
    """A run's wall time over all its segments: each checkpoint stores the time trained so far, and a
    resumed run adds its own segment to the time read from the checkpoint it resumed from.

    Example:
        >>> clock = WallTime()
        >>> clock.load_state_dict({"wall_time_s": 60.0})
        >>> clock.total(segment=5.0)
        65.0
    """

    def __init__(self):
        self.previous = 0.0
        self._start: float | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._start = time.perf_counter()

    def segment(self) -> float:
        """Seconds since this segment's fit started."""
        return 0.0 if self._start is None else time.perf_counter() - self._start

    def total(self, segment: float | None = None) -> float:
        """The previous segments' time plus ``segment`` (default: this one so far)."""
        return self.previous + (self.segment() if segment is None else segment)

    def state_dict(self) -> dict:
        return {"wall_time_s": self.total()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.previous = float(state_dict.get("wall_time_s", 0.0))


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.unreadable-<time>`` beside it (kept for inspection); the new path."""
    aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    path.replace(aside)
    return aside


def _epoch(path: Path) -> str:
    return str(read_checkpoint(path).get("epoch", "?"))


def resume_path(ckpt_path: str | None, out: Path, automatic: bool, allow_remote: bool = False) -> str | None:
    """The checkpoint to resume from, or None to start fresh.

    Args:
        ckpt_path: the configured ``ckpt_path`` (checked now: refused when remote and not allowed,
            one-line InputError when unreadable).
        out: the run folder (its ``checkpoints/last.ckpt`` is the automatic choice).
        automatic: resume from ``last.ckpt`` when no ``ckpt_path`` is given.
        allow_remote: accept ``scheme://`` checkpoint paths.
    """
    if ckpt_path:
        read_any_checkpoint(ckpt_path, allow_remote)
        return str(ckpt_path)
    folder = RunFolder(out)
    last, best = folder.checkpoint("last"), folder.checkpoint("best")
    if not automatic or not last.is_file():
        return None
    try:
        read_checkpoint(last)
        return str(last)
    except InputError as err:
        aside = set_aside(last)
        problem = err.problem
    try:
        then = f"resuming from {best} (epoch {_epoch(best)})" if best.is_file() else "starting fresh"
        chosen = str(best) if best.is_file() else None
    except InputError:
        then, chosen = f"{best} is unreadable too: starting fresh", None
    print(f"train.py: warning: {last} {problem}; moved it to {aside.name}; {then}", file=sys.stderr)
    return chosen
