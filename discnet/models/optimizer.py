"""The optimizer and learning-rate schedule of a training run (``conf/optim``).

The paper trained with "Adam, learning rate 0.001, beta1 0.95, beta2 0.999, weight decay 0.05" in
TensorFlow 2.8, where Keras's Adam had no decoupled weight decay, so ``algorithm`` names the three
readings of "weight decay" (the README's "Deviations and interpretations" table says why AdamW is the
default):

- ``adamw``: decoupled weight decay (Loshchilov and Hutter), ``torch.optim.AdamW``;
- ``adam_l2``: an L2 penalty added to the gradient, ``torch.optim.Adam(weight_decay=...)``;
- ``keras_decay``: Keras's legacy ``decay`` argument, a learning rate of lr / (1 + decay * iterations),
  with no penalty on the weights.

``schedule`` multiplies the learning rate per step: ``constant`` (the paper), ``cosine`` (to
``min_lr_ratio`` x lr at the last step) or ``poly`` (nnU-Net's (1 - progress) ** 0.9), after a linear
warm-up of ``warmup_epochs``.

Example:
    >>> import torch
    >>> params = [torch.nn.Parameter(torch.zeros(2))]
    >>> config = build_optimizer(params, {"algorithm": "adam_l2", "schedule": "cosine"}, total_steps=100)
    >>> type(config["optimizer"]).__name__, config["lr_scheduler"]["interval"]
    ('Adam', 'step')
    >>> lr_factor(99, {"schedule": "cosine", "min_lr_ratio": 0.0}, total_steps=100) < 0.001
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

ALGORITHMS = ("adamw", "adam_l2", "keras_decay")
SCHEDULES = ("constant", "cosine", "poly")


def lr_factor(step: int, optim: Mapping, total_steps: float, steps_per_epoch: float = 1.0) -> float:
    """The learning rate of optimizer step ``step`` (from 0) as a multiple of ``optim["lr"]``."""
    factor = 1.0
    if optim.get("algorithm", "adamw") == "keras_decay":
        factor /= 1.0 + float(optim.get("weight_decay", 0.0)) * step
    warmup = float(optim.get("warmup_epochs", 0)) * steps_per_epoch
    if warmup > 0 and step < warmup:
        factor *= (step + 1) / warmup
    schedule = optim.get("schedule", "constant")
    if schedule == "constant":
        return factor
    progress = min(max(step - warmup, 0.0) / max(total_steps - warmup, 1.0), 1.0)
    if schedule == "cosine":
        floor = float(optim.get("min_lr_ratio", 0.0))
        return factor * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    return factor * (1.0 - progress) ** 0.9


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], optim: Mapping, total_steps: float, max_epochs: int | None = None
):
    """The optimizer (and per-step scheduler unless the paper's constant rate) for Lightning.

    Args:
        parameters: what to optimise.
        optim: ``algorithm``, ``lr``, ``beta1``, ``beta2``, ``weight_decay``, ``schedule``,
            ``warmup_epochs``, ``min_lr_ratio``.
        total_steps: optimizer steps of the whole run (Lightning's ``estimated_stepping_batches``).
        max_epochs: epochs of the run (converts ``warmup_epochs`` to steps).
    """
    algorithm, schedule = optim.get("algorithm", "adamw"), optim.get("schedule", "constant")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"optim.algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    kwargs = dict(
        lr=float(optim.get("lr", 1e-3)), betas=(float(optim.get("beta1", 0.95)), float(optim.get("beta2", 0.999)))
    )
    decay = float(optim.get("weight_decay", 0.05))
    if algorithm == "adamw":
        optimizer = torch.optim.AdamW(parameters, weight_decay=decay, **kwargs)
    else:
        optimizer = torch.optim.Adam(parameters, weight_decay=decay if algorithm == "adam_l2" else 0.0, **kwargs)
    varies = schedule != "constant" or algorithm == "keras_decay" or float(optim.get("warmup_epochs", 0)) > 0
    if not varies:
        return optimizer
    if not math.isfinite(total_steps):
        raise ValueError(f"optim.schedule={schedule} needs a run of known length (trainer.max_epochs)")
    per_epoch = total_steps / max_epochs if max_epochs and max_epochs > 0 else 1.0
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, optim, total_steps, per_epoch)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
