"""An augmentation preset (``conf/augment/*.yaml``) as a frozen, checked dataclass.

Example:
    >>> cfg = augment_config({"rotation_p": 0.2, "scaling": [0.7, 1.4], "unknown": 1})
    >>> cfg.rotation_p, cfg.scaling, cfg.active, augment_config(None).active
    (0.2, (0.7, 1.4), True, False)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentConfig:
    """An augmentation preset (``conf/augment/*.yaml``); each ``*_p`` is a per-sample probability.

    Ranges are ``(low, high)`` drawn uniformly. Intensities are those the network sees (a stretched
    input lies in [0, 1]).

    Attributes:
        name: preset name.
        rotation_p, rotation_deg: in-plane rotation by up to +-``rotation_deg`` degrees.
        scaling_p, scaling: zoom factor (> 1 enlarges the anatomy).
        elastic_p, elastic_sigma, elastic_magnitude: smooth random displacement: a Gaussian field of
            ``elastic_magnitude`` pixels (a fraction of the image side, times the side) on a grid of
            ``elastic_sigma`` x the side, upsampled bicubically.
        mirror_p: mirror anterior <-> posterior (columns of a sagittal slice).
        noise_p, noise_std: additive Gaussian noise with a standard deviation drawn from the range.
        blur_p, blur_sigma: Gaussian blur, sigma in pixels.
        brightness_p, brightness: multiplicative factor.
        contrast_p, contrast: factor around the slice mean, clipped to the slice's range.
        lowres_p, lowres_scale: downsample (nearest) by the factor, upsample back (bilinear, as
            nnU-Net v2's batchgeneratorsv2 does).
        gamma_p, gamma: ``x -> x ** gamma`` on the slice's [min, max] range.
    """

    name: str = "none"
    rotation_p: float = 0.0
    rotation_deg: float = 15.0
    scaling_p: float = 0.0
    scaling: tuple[float, float] = (0.85, 1.25)
    elastic_p: float = 0.0
    elastic_sigma: float = 0.125
    elastic_magnitude: float = 0.01
    mirror_p: float = 0.0
    noise_p: float = 0.0
    noise_std: tuple[float, float] = (0.0, 0.1)
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.0)
    brightness_p: float = 0.0
    brightness: tuple[float, float] = (0.75, 1.25)
    contrast_p: float = 0.0
    contrast: tuple[float, float] = (0.75, 1.25)
    lowres_p: float = 0.0
    lowres_scale: tuple[float, float] = (0.5, 1.0)
    gamma_p: float = 0.0
    gamma: tuple[float, float] = (0.7, 1.5)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name.endswith("_p") and not 0.0 <= float(getattr(self, f.name)) <= 1.0:
                raise ValueError(f"augment.{f.name} must be a probability in [0, 1], not {getattr(self, f.name)}")
        if min(self.gamma) <= 0:
            raise ValueError(f"augment.gamma must be a range of positive exponents, not {list(self.gamma)}")

    @property
    def active(self) -> bool:
        """Whether any transform can fire."""
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self) if f.name.endswith("_p"))


def augment_config(fields: Mapping | None) -> AugmentConfig:
    """An :class:`AugmentConfig` from a config dict; ranges become tuples, unknown keys are ignored."""
    names = {f.name for f in dataclasses.fields(AugmentConfig)}
    values = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in dict(fields or {}).items() if k in names}
    return AugmentConfig(**values)
