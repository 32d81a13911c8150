"""What a trained model needs at prediction time, read from its checkpoint in one place.

A discnet checkpoint carries, besides the network, everything prediction needs (as nnU-Net's model folder
carries its plans): the input preset it was trained on, the image size, the probability threshold it was
validated with, the level names of the label values it writes, which discs it keeps of too many found
and the test-time augmentation it is predicted with.
:func:`model_settings` reads them from ``hyper_parameters``, fills what an older checkpoint lacks from its
run's ``config.yaml`` (two folders up), then from the caller's flags; :func:`ensemble_settings` checks that the members of an ensemble agree.

Example:
    >>> import dataclasses
    >>> from discnet.data.preprocess import input_presets
    >>> hyper = {"input": dataclasses.asdict(input_presets()["raw"]), "image_size": 64, "threshold": 0.6}
    >>> s = model_settings("m.ckpt", {"hyper_parameters": hyper})
    >>> s.input == input_presets()["raw"], s.image_size, s.threshold, s.levels[1], s.surplus, s.tta
    (True, 64, 0.6, 'L5-S1', 'largest', 'none')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from discnet.data.preprocess import InputConfig, input_config, input_presets, preset_names
from discnet.errors import InputError
from discnet.io.levels import check_known_names, default_levels
from discnet.io.safe_yaml import read_plain_yaml
from discnet.models.checkpoint import check_image_size
from discnet.models.run_folder import RunFolder
from discnet.spine import FLIPS, SURPLUS

#: The ``hyper_parameters`` keys prediction reads (a run's ``config.yaml`` may supply the first two).
KEYS = ("input", "image_size", "threshold", "levels", "surplus", "tta")
_RETRAIN = "retrain it or pass a checkpoint written by discnet train"
_LEVELS = "pass --levels levels.csv (label,level)"


@dataclass(frozen=True)
class ModelSettings:
    """How a model prepares scans and labels its output.

    Attributes:
        input: the input preset (stretch, fit, scale) scans are prepared with.
        image_size: side of the square network input.
        threshold: probability above which a voxel is disc.
        levels: label value -> level name of the written masks.
        surplus: of more discs found than expected, those kept (``largest`` or ``anchor``; see
            :func:`~discnet.postprocess.levels.label_levels`).
        tta: test-time augmentation, a key of :data:`~discnet.spine.FLIPS` (``none``, ``flip``, ``flip-all``).
    """

    input: InputConfig
    image_size: int
    threshold: float
    levels: dict[int, str]
    surplus: str = "largest"
    tta: str = "none"


def same_preprocessing(a: InputConfig, b: InputConfig) -> bool:
    """Whether two presets prepare scans identically at prediction time (augmentation and blank
    deletion only matter in training).

    Example:
        >>> p = input_presets()
        >>> same_preprocessing(p["stretched"], p["augmented"]), same_preprocessing(p["raw"], p["stretched"])
        (True, False)
    """
    if a.stretch != b.stretch or a.fit != b.fit or not math.isclose(a.scale, b.scale, rel_tol=1e-9):
        return False
    return a.stretch == "none" or (math.isclose(a.lower, b.lower) and math.isclose(a.upper, b.upper))


def stored_levels(value, where) -> dict[int, str]:
    """The ``levels`` a checkpoint records (``{level name: label value}``) as ``{value: name}``.

    Example:
        >>> stored_levels({"L5-S1": 1, "L4-L5": 2}, "m.ckpt")
        {1: 'L5-S1', 2: 'L4-L5'}
    """
    if not isinstance(value, Mapping) or not value:
        raise InputError(where, f"records levels {value!r}, not a mapping of level names to label values", _LEVELS)
    levels = {}
    for name, label in value.items():
        if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= 255 or label in levels:
            raise InputError(
                where, f"records level {name!r} at label {label!r}: not a distinct value in 1..255", _RETRAIN
            )
        levels[label] = str(name)
    try:
        return check_known_names(levels, where)
    except InputError as err:
        raise InputError(where, err.problem, _LEVELS) from err


def _run_config(path: Path) -> dict:
    """``input`` and ``image_size`` from the run's resolved ``config.yaml`` (``<run>/checkpoints/x.ckpt``)."""
    config = RunFolder.of_checkpoint(path).config
    if not config.is_file():
        return {}
    cfg = read_plain_yaml(config)  # no aliases, no interpolation: the file may come with a foreign checkpoint
    return {k: cfg[k] for k in ("input", "image_size") if isinstance(cfg, dict) and cfg.get(k) is not None}


def stored_settings(path: str | Path, checkpoint: dict) -> dict:
    """The settings a checkpoint records (``hyper_parameters``, then its run's ``config.yaml``), unchecked."""
    hyper = checkpoint.get("hyper_parameters") or {}
    stored = {k: hyper[k] for k in KEYS if hyper.get(k) is not None}
    if "input" not in stored or "image_size" not in stored:
        stored = {**_run_config(Path(path)), **stored}
    return stored


def _input(path, stored: dict, preset: str | None) -> InputConfig:
    if preset is not None and preset not in preset_names():
        raise InputError(None, f"unknown input preset '{preset}'", f"use one of {', '.join(preset_names())}")
    if "input" not in stored:
        if preset is None:
            raise InputError(
                path,
                "does not record the input preset it was trained with",
                f"pass --input-preset ({', '.join(preset_names())})",
            )
        return input_presets()[preset]
    try:
        cfg = input_config(stored["input"])
    except (TypeError, ValueError) as err:
        raise InputError(path, f"records an invalid input preset ({err})", "retrain or pass a good checkpoint") from err
    if preset is not None and not same_preprocessing(cfg, input_presets()[preset]):
        raise InputError(path, f"was trained on input '{cfg.name}', not '{preset}'", "drop --input-preset")
    return cfg


def _image_size(path, stored: dict, image_size: int | None) -> int:
    if "image_size" not in stored:
        if image_size is None:
            raise InputError(path, "does not record the image size it was trained with", "pass --image-size (e.g. 256)")
        return int(image_size)
    size = check_image_size(stored["image_size"], path)
    if image_size is not None and image_size != size:
        raise InputError(path, f"was trained at image size {size}, not {image_size}", "drop --image-size")
    return size


def _threshold(path, stored: dict) -> float:
    value = stored.get("threshold", 0.5)  # 0.5: the default of training, for checkpoints that predate it
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
        raise InputError(path, f"records threshold {value!r}, not a probability in (0, 1)", _RETRAIN)
    return float(value)


def _surplus(path, stored: dict) -> str:
    value = stored.get("surplus", "largest")  # largest: the rule of checkpoints that predate the setting
    if value not in SURPLUS:
        raise InputError(path, f"records surplus {value!r}, not one of {', '.join(SURPLUS)}", "pass --surplus")
    return str(value)


def _tta(path, stored: dict) -> str:
    value = stored.get("tta", "none")  # none: what predict did for checkpoints that predate the setting
    if value not in FLIPS:
        raise InputError(path, f"records test-time augmentation {value!r}, not one of {', '.join(FLIPS)}", "pass --tta")
    return str(value)


def model_settings(
    path: str | Path,
    checkpoint: dict,
    input_preset: str | None = None,
    image_size: int | None = None,
    levels: Mapping[int, str] | None = None,
    surplus: str | None = None,
    tta: str | None = None,
) -> ModelSettings:
    """The settings of one checkpoint (already read with :func:`~discnet.models.checkpoint.read_checkpoint`).

    ``input_preset`` and ``image_size`` stand in for what the checkpoint and its run do not record, and
    must agree with what they do (InputError otherwise); ``levels`` (e.g. from ``--levels``) overrides
    the recorded level names, which default to 1 = L5-S1 ... 5 = L1-L2; ``surplus`` (e.g. from ``--surplus``)
    the recorded surplus rule, which defaults to ``largest``; ``tta`` (``--tta``) the recorded test-time
    augmentation, which defaults to ``none``.
    """
    stored = stored_settings(path, checkpoint)
    if levels is None:
        levels = stored_levels(stored["levels"], path) if "levels" in stored else default_levels()
    return ModelSettings(
        _input(path, stored, input_preset),
        _image_size(path, stored, image_size),
        _threshold(path, stored),
        dict(levels),
        _surplus(path, stored if surplus is None else {"surplus": surplus}),
        _tta(path, stored if tta is None else {"tta": tta}),
    )


def ensemble_settings(members: Sequence[tuple[Path, ModelSettings]]) -> ModelSettings:
    """The settings shared by the members of an ensemble (``(path, settings)`` pairs); InputError when
    they prepare scans differently, were validated at different thresholds, name levels differently or
    keep different discs of a surplus or are predicted with different test-time augmentations."""
    (first, settings), *rest = members
    for path, other in rest:
        if other.image_size != settings.image_size or not same_preprocessing(other.input, settings.input):
            raise InputError(
                path,
                f"was trained on input '{other.input.name}' at size {other.image_size}, but {first} on "
                f"'{settings.input.name}' at {settings.image_size}",
                "ensemble only models trained with the same input preset and image size",
            )
        if other.threshold != settings.threshold:
            listed = ", ".join(f"{Path(p).name} {s.threshold}" for p, s in members)
            raise InputError(
                None, f"the models were validated at different thresholds ({listed})", "ensemble alike models"
            )
        if other.levels != settings.levels:
            raise InputError(path, f"names levels {other.levels}, but {first} {settings.levels}", "pass --levels")
        if other.surplus != settings.surplus:
            raise InputError(
                path,
                f"keeps the {other.surplus} discs of a surplus, but {first} the {settings.surplus}",
                "pass --surplus",
            )
        if other.tta != settings.tta:
            raise InputError(
                path, f"is predicted with --tta {other.tta}, but {first} with --tta {settings.tta}", "pass --tta"
            )
    return settings
