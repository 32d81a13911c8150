"""A training run's folder: the one place that knows its layout and reads and writes its summary.

    <run>/config.yaml            the resolved Hydra config
    <run>/summary.json           status, scores at the last and the best epoch, wall time (the schema:
                                 :func:`discnet.training.run.run_training` writes it, :func:`read_summary` reads it)
    <run>/val_scores.csv         every epoch's Dice per validation subject
    <run>/checkpoints/last.ckpt  the last epoch (what a run's score and the final model use)
    <run>/checkpoints/best.ckpt  the best validation epoch

Example:
    >>> folder = RunFolder("runs/r2-dropout/seed=1")
    >>> folder.checkpoint("last").as_posix(), folder.summary.name
    ('runs/r2-dropout/seed=1/checkpoints/last.ckpt', 'summary.json')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from discnet.io.atomic import atomic_path

SUMMARY = "summary.json"
CONFIG = "config.yaml"
EPOCHS = "val_scores.csv"
CHECKPOINTS = "checkpoints"
#: Checkpoint file of each score: ``last`` (the paper's "model resulting from each run") or ``best``.
CHECKPOINT_FILES = {"last": "last.ckpt", "best": "best.ckpt"}


@dataclass(frozen=True)
class RunFolder:
    """The files of one training run below ``root``."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def epochs(self) -> Path:
        return self.root / EPOCHS

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    def checkpoint(self, which: str = "last") -> Path:
        """``checkpoints/last.ckpt`` or ``checkpoints/best.ckpt``."""
        return self.checkpoints / CHECKPOINT_FILES[which]

    @classmethod
    def of_checkpoint(cls, ckpt: str | Path) -> RunFolder:
        """The run folder a checkpoint inside ``<run>/checkpoints/`` belongs to."""
        return cls(Path(ckpt).resolve().parent.parent)


def read_summary(folder: str | Path, strict: bool = False) -> dict | None:
    """The run's ``summary.json``, or None when absent or unreadable (``strict``: the OSError or ValueError)."""
    try:
        return json.loads(RunFolder(folder).summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if strict:
            raise
        return None


def write_json(data: dict, path: str | Path) -> None:
    """``data`` as indented JSON at ``path``, atomically (a full disk is an InputError)."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=float) + "\n", encoding="utf-8")


def write_summary(summary: dict, folder: str | Path) -> Path:
    """Write the run's ``summary.json`` atomically; its path."""
    path = RunFolder(folder).summary
    write_json(summary, path)
    return path
