"""What a user sees while a model learns: one line per epoch in log files, no noise from Lightning.

In a terminal, Rich's progress bar shows the epoch; when the output is not a terminal (``nohup``, a
SLURM log, a pipe) the bar is switched off and :class:`EpochLine` prints one line per epoch instead::

    epoch 3/18  train/loss 0.4123  val/dsc 0.7012  val/dsc_orphan_removed 0.7104  elapsed 123 s

:func:`quiet_lightning` drops Lightning's advertising tip, its "estimate number of stepping batches"
note and a deprecation warning that Lightning itself triggers inside torch.

Example:
    >>> EpochLine.format(2, 18, {"train/loss_epoch": 0.5, "val/dsc": 0.25}, 61.0)
    'epoch 3/18  train/loss 0.5000  val/dsc 0.2500  elapsed 61 s'
"""

from __future__ import annotations

import logging
import sys
import time
import warnings

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

_NOISE = ("💡 Tip:", "Loading `train_dataloader` to estimate number of stepping batches")
_COLUMNS = (
    ("train/loss_epoch", "train/loss"),
    ("val/dsc", "val/dsc"),
    ("val/dsc_orphan_removed", "val/dsc_orphan_removed"),
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOISE)


def quiet_lightning() -> None:
    """Silence the Lightning messages that mean nothing to a user (idempotent)."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropNoise) for f in logger.filters):
        logger.addFilter(_DropNoise())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
    # on a SLURM login node: discnet reaches SLURM through Hydra's submitit launcher, which runs srun itself
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")


def is_terminal(stream=None) -> bool:
    """Whether ``stream`` (default: standard output) is an interactive terminal."""
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class EpochProgressBar(RichProgressBar):
    """Rich's bar counting epochs from 1: the third of 3 epochs shows as "Epoch 3/3", not "Epoch 2/2"."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"Epoch {current_epoch + 1}" + (f"/{self.trainer.max_epochs}" if self.trainer.max_epochs else "")
        return f"{text:{len(self.validation_description)}}"


class EpochLine(L.Callback):
    """Prints one line per finished epoch (rank 0 only) to ``stream`` (default: standard output)."""

    def __init__(self, stream=None):
        self.stream, self.start = stream, None

    @staticmethod
    def format(epoch: int, max_epochs: int, metrics: dict, elapsed: float) -> str:
        parts = [f"epoch {epoch + 1}/{max_epochs}"]
        parts += [f"{name} {float(metrics[key]):.4f}" for key, name in _COLUMNS if key in metrics]
        return "  ".join([*parts, f"elapsed {elapsed:.0f} s"])

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = {k: v for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        line = self.format(trainer.current_epoch, trainer.max_epochs, metrics, time.perf_counter() - self.start)
        print(line, file=self.stream or sys.stdout, flush=True)
