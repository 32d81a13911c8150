"""``discnet train [-m] [overrides]``: train with Hydra, the configs shipped in the package.

The same command line as ``python train.py`` (which is an alias of this verb): group choices
(``model=unet50``), values (``seed=3``, ``trainer.max_epochs=5``), ``-m`` sweeps and ``hydra.*``
options (``hydra.run.dir=runs/first``). Configs are read from ``discnet/conf`` inside the installed
package, so no clone is needed.

Example:
    discnet train trainer=smoke hydra.run.dir=runs/smoke
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from discnet.data.preprocess import CONF_DIR
from discnet.training.entry import check_overrides, guarded_run


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return guarded_run(cfg)


def main(argv: list[str]) -> int:
    """Run Hydra on ``argv`` (the words after ``train``); the exit code."""
    check_overrides(argv, CONF_DIR, "train")
    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        _hydra_main()
    finally:
        sys.argv = saved
    return 0
