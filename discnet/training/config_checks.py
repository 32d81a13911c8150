"""Checks of a composed training config's values, before anything is read or written.

Hydra checks that keys exist; this checks what they hold: ``seed`` an integer from 0 to 2**32 - 1, ``image_size`` an integer
from 8 to its limit, ``model.batch_size`` and ``trainer.max_epochs`` positive (``-1``: no epoch limit),
the network's settings of the right types and sizes, a ``levels`` file of lumbar level names at label values
1..255 (what predict accepts from the checkpoint). Each failure is an InputError naming the override.

Example:
    >>> from omegaconf import OmegaConf
    >>> check_train_config(OmegaConf.create({"seed": 0, "image_size": 64, "model": {"batch_size": 2, "net": {}},
    ...                                      "trainer": {"max_epochs": 3}}))
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from discnet.errors import InputError
from discnet.inference.predict import levels_and_values
from discnet.io.levels import read_levels
from discnet.io.limits import check_limit
from discnet.models.checkpoint import check_net_kwargs
from discnet.spine import FLIPS, SURPLUS

FIX = "see python train.py --help for the options"


def _value(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except (OmegaConfBaseException, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(key, f"cannot be resolved ({first})", FIX) from err


def _integer(cfg: DictConfig, key: str, lowest: int, allowed: tuple[int, ...] = ()) -> int:
    value = _value(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{key}={value}", "is not a whole number", FIX)
    if value < lowest and value not in allowed:
        extra = f" (or {', '.join(map(str, allowed))})" if allowed else ""
        raise InputError(f"{key}={value}", f"must be at least {lowest}{extra}", FIX)
    return value


def check_train_config(cfg: DictConfig) -> None:
    """InputError for the first value of ``cfg`` a training run cannot use."""
    seed = _integer(cfg, "seed", 0)
    if seed > 2**32 - 1:
        raise InputError(f"seed={seed}", "is above 4294967295 (the largest seed numpy takes)", FIX)
    size = _integer(cfg, "image_size", 8)
    check_limit("image_size", size, f"image_size={size}", "image_size")
    _integer(cfg, "model.batch_size", 1)
    if _value(cfg, "trainer.max_epochs") is not None:
        _integer(cfg, "trainer.max_epochs", 1, allowed=(-1,))
    net = _value(cfg, "model.net")
    check_net_kwargs(OmegaConf.to_container(net, resolve=True) if net is not None else {}, "model.net")
    surplus = _value(cfg, "surplus") if "surplus" in cfg else "largest"
    if surplus not in SURPLUS:
        raise InputError(f"surplus={surplus}", f"is not one of {', '.join(SURPLUS)}", "set surplus=largest or anchor")
    tta = _value(cfg, "tta") if "tta" in cfg else "none"
    if tta not in FLIPS:
        raise InputError(f"tta={tta}", f"is not one of {', '.join(FLIPS)}", "set tta=none, flip or flip-all")
    levels = _value(cfg, "levels")
    if levels is not None:  # lumbar names, label values 1..255: what predict accepts from the checkpoint
        levels_and_values(read_levels(str(levels)), str(levels))
