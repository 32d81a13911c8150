"""A training callback for tests that must stop a run mid-training: it holds the run at the start of an
epoch while a flag file exists, so that what the test does next (``scancel``) cannot race the run's end.

The flag is ``$DISCNET_TEST_HOLD`` with ``{task}`` replaced by the SLURM array task id; when the hold
begins, ``<flag>.held`` is written (the run's checkpoints of the epochs before are on disk by then).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class HoldWhileFlagged(Callback):
    """Waits at the start of epoch ``epoch`` until the flag file is removed.

    Example:
        >>> HoldWhileFlagged(epoch=1).epoch
        1
    """

    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        pattern = os.environ.get("DISCNET_TEST_HOLD")
        if not pattern or trainer.current_epoch != self.epoch:
            return
        flag = Path(pattern.format(task=os.environ.get("SLURM_ARRAY_TASK_ID", "")))
        if flag.exists():
            flag.with_name(flag.name + ".held").touch()
        while flag.exists():
            time.sleep(0.1)
