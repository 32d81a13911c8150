"""One volume -> network-ready sagittal slices, the paper's Inputs 1-4 (Table 2).

The same function prepares training, validation and prediction data, so a model always sees its inputs
exactly as it was trained on them.

Example:
    >>> import numpy as np
    >>> from discnet.io import Volume
    >>> v = Volume(np.random.rand(6, 20, 30).astype(np.float32), np.diag([3.0, 0.5, 0.5, 1.0]))
    >>> stack = prepare_volume(v, None, InputConfig(stretch="volume"), size=16)
    >>> tuple(stack.images.shape), stack.native_shape
    ((6, 16, 16), (30, 20))
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from discnet.data.intensity import random_lower_percentiles, stretch, stretch_slices
from discnet.data.slices import resize_images, resize_labels, to_slices
from discnet.io import Volume, to_canonical


@dataclass(frozen=True)
class InputConfig:
    """An input preset (``conf/input/*.yaml``).

    Attributes:
        name: preset name (raw, deleted_blanks, stretched, augmented).
        paper_input: the number of the input in the paper (1-4).
        delete_blanks: training drops slices without disc voxels (validation and prediction never do).
        stretch: ``"none"``, ``"volume"`` (percentiles of the whole volume) or ``"slice"``.
        lower, upper: stretch percentiles mapped to 0 and 255.
        augment_copies: extra copies of each training slice stretched with random percentiles.
        augment_max_lower: the random lower percentile is drawn from [0, this]; upper = 100 - lower.
        scale: constant factor applied to every input (1/255 puts stretched inputs in [0, 1]).
        fit: how a slice becomes a square: ``"stretch"`` (resize rows and columns independently, as
            the paper) or ``"pad"`` (centre it in a zero-padded square first, keeping its aspect ratio).
    """

    name: str = "stretched"
    paper_input: int = 3
    delete_blanks: bool = True
    stretch: str = "volume"
    lower: float = 2.5
    upper: float = 97.5
    augment_copies: int = 0
    augment_max_lower: float = 10.0
    scale: float = 1.0 / 255.0
    fit: str = "stretch"

    def __post_init__(self):
        if self.stretch not in ("none", "volume", "slice"):
            raise ValueError(f"input.stretch must be none, volume or slice, not {self.stretch!r}")
        if self.fit not in ("stretch", "pad"):
            raise ValueError(f"input.fit must be stretch or pad, not {self.fit!r}")


#: discnet's Hydra configs, shipped inside the package (``discnet/conf``, the repository's ``conf/``).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def preset_names() -> list[str]:
    """Names of the input presets: the files of ``conf/input``.

    Example:
        >>> preset_names()
        ['augmented', 'deleted_blanks', 'raw', 'stretched']
    """
    return sorted(p.stem for p in (CONF_DIR / "input").glob("*.yaml"))


@functools.cache
def input_presets() -> dict[str, InputConfig]:
    """Every input preset of ``conf/input`` (paper Table 2) as Hydra composes it (its defaults list
    included): the one source that training's YAML and prediction both read.

    Example:
        >>> input_presets()["augmented"].augment_copies, input_presets()["raw"].stretch
        (1, 'none')
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    def composed() -> dict[str, InputConfig]:
        return {name: input_config(compose(config_name=f"input/{name}")["input"]) for name in preset_names()}

    if GlobalHydra.instance().is_initialized():  # inside a Hydra app (its search path holds these configs)
        return composed()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return composed()


def input_config(fields: Mapping | None) -> InputConfig:
    """An :class:`InputConfig` from a config or stored dict; keys that are not its fields are ignored."""
    names = {f.name for f in dataclasses.fields(InputConfig)}
    return InputConfig(**{k: v for k, v in dict(fields or {}).items() if k in names})


@dataclass
class SliceStack:
    """Sagittal slices of one scan, resized for the network, plus what is needed to go back.

    Attributes:
        images: (n, size, size) float16 network inputs.
        labels: (n, size, size) uint8 binary disc masks resized (nearest), or None.
        native_labels: (n, H, W) bool disc masks on the native slice grid, or None.
        native_shape: (H, W) of a native slice.
        has_disc: (n,) bool, slices with at least one disc voxel (all False without labels).
        extra_images: (k, size, size) augmented copies (training only).
        extra_labels: (k, size, size) their masks.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    native_labels: np.ndarray | None
    native_shape: tuple[int, int]
    has_disc: np.ndarray
    extra_images: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    extra_labels: torch.Tensor = field(default_factory=lambda: torch.empty(0))

    def training_pairs(self, delete_blanks: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) for training: blank slices dropped if asked, augmented copies appended."""
        keep = torch.as_tensor(self.has_disc) if delete_blanks else torch.ones(len(self.images), dtype=torch.bool)
        images, labels = self.images[keep], self.labels[keep]
        if len(self.extra_images):
            images = torch.cat([images, self.extra_images])
            labels = torch.cat([labels, self.extra_labels])
        return images, labels


def _intensity(slices: np.ndarray, cfg: InputConfig, volume: np.ndarray) -> np.ndarray:
    if cfg.stretch == "volume":
        return to_slices(stretch(volume, cfg.lower, cfg.upper))
    if cfg.stretch == "slice":
        return stretch_slices(np.ascontiguousarray(slices), cfg.lower, cfg.upper)
    return np.asarray(slices, np.float32)


def _augmented_copies(raw, volume, labels, cfg: InputConfig, keep, size, rng):
    """Input 4's extra copies, stretched with random percentiles over the scope ``cfg.stretch`` names:
    one draw per copy of the whole volume (``volume``), or one per slice (``slice``, ``none``)."""
    copies = []
    for _ in range(cfg.augment_copies):
        if cfg.stretch == "volume":
            lower = float(random_lower_percentiles(1, rng, cfg.augment_max_lower)[0])
            copies.append(to_slices(stretch(volume, lower, 100.0 - lower))[keep])
        else:
            lowers = random_lower_percentiles(int(keep.sum()), rng, cfg.augment_max_lower)
            copies.append(np.stack([stretch(s, lo, 100.0 - lo) for s, lo in zip(raw[keep], lowers, strict=True)]))
    images = torch.as_tensor(np.concatenate(copies) * cfg.scale)
    masks = torch.as_tensor(np.concatenate([labels[keep]] * cfg.augment_copies))
    return resize_images(images, size, cfg.fit).half(), resize_labels(masks, size, cfg.fit)


def prepare_volume(
    image: Volume,
    label: Volume | None,
    cfg: InputConfig,
    size: int,
    augment_rng: np.random.Generator | None = None,
) -> SliceStack:
    """Reorient to RAS, take sagittal slices, apply the input preset and resize to ``size``.

    Args:
        image: the scan.
        label: its disc label map (any positive value is disc), or None when predicting.
        cfg: the input preset.
        size: side of the network's square input.
        augment_rng: draws the augmented copies; None makes none (validation, prediction).
    """
    volume, _ = to_canonical(image)
    volume = volume.astype(np.float32, copy=False)
    raw = to_slices(volume)
    native_shape = tuple(int(s) for s in raw.shape[1:])
    images = resize_images(torch.as_tensor(_intensity(raw, cfg, volume) * cfg.scale), size, cfg.fit).half()
    if label is None:
        return SliceStack(images, None, None, native_shape, np.zeros(len(raw), bool))
    if label.shape != image.shape:
        raise ValueError(f"label shape {label.shape} differs from image shape {image.shape}")
    native = np.ascontiguousarray(to_slices(to_canonical(label)[0] > 0))
    has_disc = native.reshape(len(native), -1).any(axis=1)
    labels = resize_labels(torch.as_tensor(native.astype(np.uint8)), size, cfg.fit)
    stack = SliceStack(images, labels, native, native_shape, has_disc)
    if augment_rng is not None and cfg.augment_copies > 0:
        keep = has_disc if cfg.delete_blanks else np.ones(len(raw), bool)
        stack.extra_images, stack.extra_labels = _augmented_copies(
            raw, volume, native.astype(np.uint8), cfg, keep, size, augment_rng
        )
    return stack
