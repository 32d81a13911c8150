"""One training run from a composed Hydra config: ``python train.py`` calls :func:`run_training`.

Every run writes, next to its checkpoints (``<output_dir>/checkpoints``): ``config.yaml`` (resolved),
``summary.json`` (machine-readable result) and ``val_scores.csv`` (per-epoch, per-subject Dice).
A run whose folder already holds a complete ``summary.json`` is skipped (so a sweep can be re-run to
finish what is missing); a run with a ``last.ckpt`` but no complete summary resumes from it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import hydra
import lightning as L
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from discnet.io.atomic import atomic_path
from discnet.io.levels import read_levels
from discnet.models.checkpoint import load_weights, read_checkpoint
from discnet.models.checkpoint_io import SafeCheckpointIO
from discnet.models.run_folder import CHECKPOINT_FILES, CHECKPOINTS, SUMMARY, RunFolder, read_summary, write_summary
from discnet.models.unet import count_parameters
from discnet.training.config_checks import check_train_config
from discnet.training.epoch_log import EpochLine, is_terminal, quiet_lightning
from discnet.training.resume import RandomStates, WallTime, resume_path
from discnet.training.run_scores import SCORE_KEYS, epoch_scores
from discnet.training.segmenter import DiscSegmenter

log = logging.getLogger("discnet.train")


def _written(path: Path, write) -> None:
    """``write(tmp)`` to a temporary beside ``path``, renamed onto it (a full disk is an InputError)."""
    with atomic_path(path) as tmp:
        write(tmp)


def _wandb_offline_without_key() -> None:
    if not os.environ.get("WANDB_API_KEY") and "WANDB_MODE" not in os.environ:
        os.environ["WANDB_MODE"] = "offline"


def _container(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if cfg is not None else {}


def use_channels_last(cfg: DictConfig) -> bool:
    """``model.channels_last``: true, false or auto (on when training runs on a GPU)."""
    value = cfg.model.get("channels_last", "auto")
    if str(value) == "auto":
        accelerator = str(cfg.trainer.get("accelerator", "auto"))
        return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return bool(value)


def _build(cfg: DictConfig, out: Path):
    model = DiscSegmenter(
        net=_container(cfg.model.net),
        optim=_container(cfg.optim),
        loss=_container(cfg.model.get("loss")),
        context_slices=int(cfg.model.get("context_slices", 0)),
        input=_container(cfg.input),
        image_size=int(cfg.image_size),
        channels_last=use_channels_last(cfg),
        levels={name: value for value, name in read_levels(cfg.get("levels")).items()},
        surplus=str(cfg.get("surplus") or "largest"),
        tta=str(cfg.get("tta") or "none"),
    )
    if cfg.model.get("init_from"):
        load_weights(model.net, read_checkpoint(cfg.model.init_from), cfg.model.init_from)
    datamodule = hydra.utils.instantiate(
        cfg.data,
        input=_container(cfg.input),
        augment=_container(cfg.get("augment")),
        context_slices=int(cfg.model.get("context_slices", 0)),
    )
    datamodule.setup("fit")  # bad data fails here, before the trainer prints anything
    if cfg.model.get("compile", False):
        model.net = torch.compile(model.net)
    if any(k == "wandb" for k in cfg.logger):
        _wandb_offline_without_key()
    loggers = [hydra.utils.instantiate(c) for c in cfg.logger.values()]
    for logger in loggers:
        logger.log_hyperparams(_container(cfg))
    quiet_lightning()
    terminal = is_terminal()  # a progress bar in a terminal, one line per epoch in a log file
    callbacks = [hydra.utils.instantiate(c) for k, c in cfg.callbacks.items() if terminal or k != "progress"]
    callbacks += [RandomStates(), WallTime()] + ([] if terminal else [EpochLine()])
    trainer = hydra.utils.instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=terminal,
        default_root_dir=str(out),
        plugins=[SafeCheckpointIO(allow_remote=bool(cfg.get("allow_remote_checkpoints", False)))],
    )
    return datamodule, model, trainer


def _summary(cfg: DictConfig, model: DiscSegmenter, trainer: L.Trainer, wall: float, status: str) -> dict:
    """The run's result. ``last`` and ``best``: the last and the best epoch's Dice (mean and per subject,
    raw and after orphan removal); the top-level ``subjects`` are the best epoch's (older readers).
    ``wall_time_s`` counts every segment of a resumed run, ``segment_wall_time_s`` this one (``wall``)."""
    clock = next(c for c in trainer.callbacks if isinstance(c, WallTime))
    best = model.best
    last = epoch_scores(model.history[-1]) if model.history else None
    return {
        "status": status,
        "version": cfg.version,
        "round": cfg.get("round"),
        "seed": int(cfg.seed),
        "model": cfg.model.name,
        "params": float(cfg.model.net.params),
        "input": cfg.input.name,
        "image_size": int(cfg.image_size),
        "parameter_count": count_parameters(model.net),
        "best_val_dsc": best["dsc"] if best["epoch"] is not None else None,
        "best_epoch": best["epoch"],
        "subjects": best["subjects"],
        "subjects_orphan_removed": best.get("subjects_orphan_removed", {}),
        "last_val_dsc": last["dsc"] if last else None,
        "last_val_dsc_orphan_removed": last["dsc_orphan_removed"] if last else None,
        "last": last,
        "best": {k: best.get(k) for k in SCORE_KEYS} if best["epoch"] is not None else None,
        "train_on_val": bool(cfg.data.get("train_on_val", False)),
        "epochs": int(trainer.current_epoch),
        "wall_time_s": round(clock.total(wall), 2),
        "segment_wall_time_s": round(wall, 2),
        "device": str(trainer.strategy.root_device),
        "accelerator": type(trainer.accelerator).__name__,
        "precision": str(trainer.precision),
        "best_checkpoint": str(Path(CHECKPOINTS) / CHECKPOINT_FILES["best"]),
    }


def _log_to_wandb(trainer: L.Trainer, summary: dict) -> None:
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            run.summary.update({k: v for k, v in summary.items() if not isinstance(v, dict)})
            last = (summary["last"] or {}).get("subjects", {})
            for subject, dsc in summary["subjects"].items():
                run.summary[f"best/dsc/{subject}"] = dsc
                run.summary[f"last/dsc/{subject}"] = last.get(subject)
            logger.log_table(
                "val/subjects",
                columns=["subject", "dsc_last_epoch", "dsc_best_epoch"],
                data=[[s, last.get(s), d] for s, d in summary["subjects"].items()],
            )
            run.finish()


def run_training(cfg: DictConfig) -> dict:
    """Train one model as configured; returns the run's summary."""
    check_train_config(cfg)
    out = Path(cfg.paths.output_dir)
    previous = read_summary(out)
    if cfg.get("skip_complete", True) and previous and previous.get("status") == "complete":
        log.info("skipping %s: it already holds a complete %s", out, SUMMARY)
        return previous
    allow_remote = bool(cfg.get("allow_remote_checkpoints", False))
    ckpt_path = resume_path(cfg.get("ckpt_path"), out, bool(cfg.get("skip_complete", True)), allow_remote)
    _written(RunFolder(out).config, lambda tmp: OmegaConf.save(cfg, tmp, resolve=True))
    L.seed_everything(int(cfg.seed), workers=True)
    datamodule, model, trainer = _build(cfg, out)
    start = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit as err:  # Lightning exits after a graceful shutdown on Ctrl+C
        if trainer.interrupted:
            raise KeyboardInterrupt from err
        raise
    summary = _summary(cfg, model, trainer, time.perf_counter() - start, "complete")
    if trainer.is_global_zero:
        _written(RunFolder(out).epochs, lambda tmp: pd.DataFrame(model.history).to_csv(tmp, index=False))
        write_summary(summary, out)
        _log_to_wandb(trainer, summary)
    log.info(
        "best val/dsc %.4f at epoch %s; outputs in %s",
        summary["best_val_dsc"] or float("nan"),
        summary["best_epoch"],
        out,
    )
    return summary
