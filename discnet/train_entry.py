"""Error handling around a training run (:func:`discnet.training.run`).

A single run with bad input prints one line and exits with code 2. In a sweep (``-m``), a failing run
is recorded as failed in its own ``summary.json`` and the sweep goes on with the other runs.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from discnet.errors import InputError
from discnet.training import SUMMARY, run, write_json

log = logging.getLogger("discnet.train")


def _multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        return False


def guarded_run(cfg: DictConfig) -> float | None:
    """Run; return the best ``val/dsc`` (the value Hydra sweepers optimise)."""
    try:
        return run(cfg)["best_val_dsc"]
    except Exception as err:
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(
            {
                "status": "failed",
                "version": cfg.get("version"),
                "seed": cfg.get("seed"),
                "error": f"{type(err).__name__}: {err}",
            },
            out / SUMMARY,
        )
        if _multirun():
            log.error("run failed (recorded in %s): %s\n%s", out / SUMMARY, err, traceback.format_exc())
            return None
        if isinstance(err, InputError):
            print(f"train.py: error: {err}", file=sys.stderr)
            sys.exit(2)
        raise
