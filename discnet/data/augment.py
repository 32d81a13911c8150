"""On-the-fly augmentation of training batches (``conf/augment``): nnU-Net's 2D transforms, batched.

Each transform is applied to a sample with its own probability, with parameters drawn per sample,
in nnU-Net's order: a spatial warp (rotation, scaling and elastic deformation combined into one
displacement field, resampled by MONAI's :class:`~monai.networks.blocks.Warp`: bilinear for images,
nearest for labels), the anterior-posterior mirror, Gaussian noise, Gaussian blur (MONAI's
:class:`~monai.networks.layers.GaussianFilter`), multiplicative brightness, contrast, simulated low
resolution and gamma. Every draw comes from the ``generator`` given, so a batch is augmented the same
way for the same seed, epoch and step, on any device, whatever was drawn before (a resumed run
augments exactly as an uninterrupted one). ``augment=none`` (the paper) changes nothing.

Example:
    >>> import torch
    >>> cfg = AugmentConfig(rotation_p=1.0, gamma_p=1.0)
    >>> x, y = torch.rand(4, 1, 32, 32), (torch.rand(4, 32, 32) > 0.5).to(torch.uint8)
    >>> ax, ay = augment_batch(x, y, cfg, torch.Generator().manual_seed(0))
    >>> ax.shape, ay.shape, ay.dtype, bool(ay.max() <= 1)
    (torch.Size([4, 1, 32, 32]), torch.Size([4, 32, 32]), torch.uint8, True)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from monai.networks.blocks import Warp
    from monai.networks.layers import GaussianFilter


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
            ``elastic_sigma`` x the side, upsampled cubically.
        mirror_p: mirror anterior <-> posterior (columns of a sagittal slice).
        noise_p, noise_std: additive Gaussian noise with a standard deviation drawn from the range.
        blur_p, blur_sigma: Gaussian blur, sigma in pixels.
        brightness_p, brightness: multiplicative factor.
        contrast_p, contrast: factor around the slice mean, clipped to the slice's range.
        lowres_p, lowres_scale: downsample (nearest) by the factor, upsample back (bicubic).
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

    @property
    def active(self) -> bool:
        """Whether any transform can fire."""
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self) if f.name.endswith("_p"))


def augment_config(fields: Mapping | None) -> AugmentConfig:
    """An :class:`AugmentConfig` from a config dict; ranges become tuples, unknown keys are ignored."""
    names = {f.name for f in dataclasses.fields(AugmentConfig)}
    values = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in dict(fields or {}).items() if k in names}
    return AugmentConfig(**values)


def batch_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    """The generator of one training step: a function of (seed, epoch, step) only."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(step)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _uniform(n: int, bounds, g: torch.Generator) -> torch.Tensor:
    low, high = float(bounds[0]), float(bounds[1])
    return low + (high - low) * torch.rand(n, generator=g)


def _chosen(n: int, p: float, g: torch.Generator) -> torch.Tensor:
    """Indices of the samples a transform with probability ``p`` applies to (always one draw per sample)."""
    return torch.nonzero(torch.rand(n, generator=g) < p).flatten()


def _displacement(n: int, size: tuple[int, int], cfg: AugmentConfig, g: torch.Generator):
    """The samples to warp and their (k, 2, H, W) displacement in pixels (rows, columns).

    Every draw is made for all ``n`` samples (the generator advances alike whatever is chosen); the
    field is built only for the samples a spatial transform applies to.
    """
    h, w = size
    angle = torch.where(torch.rand(n, generator=g) < cfg.rotation_p, _uniform(n, (-1, 1), g), torch.zeros(n))
    angle = angle * math.radians(cfg.rotation_deg)
    zoom = torch.where(torch.rand(n, generator=g) < cfg.scaling_p, _uniform(n, cfg.scaling, g), torch.ones(n))
    elastic = torch.rand(n, generator=g) < cfg.elastic_p
    coarse = max(2, round(1.0 / max(cfg.elastic_sigma, 1e-3)))
    noise = torch.randn(n, 2, coarse, coarse, generator=g) * cfg.elastic_magnitude * max(h, w)
    idx = torch.nonzero((angle != 0) | (zoom != 1) | elastic).flatten()
    if not len(idx):
        return idx, None
    angle, zoom, elastic, noise = angle[idx], zoom[idx], elastic[idx], noise[idx]
    rows = torch.arange(h, dtype=torch.float32) - (h - 1) / 2
    cols = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
    r, c = torch.meshgrid(rows, cols, indexing="ij")
    cos, sin = (torch.cos(angle) / zoom)[:, None, None], (torch.sin(angle) / zoom)[:, None, None]
    # Output pixel (r, c) samples the input at the inverse rotation / scaling of (r, c).
    ddf = torch.stack([cos * r - sin * c - r, sin * r + cos * c - c], dim=1)
    if bool(elastic.any()):
        bent = torch.nonzero(elastic).flatten()
        ddf[bent] += F.interpolate(noise[bent], size=(h, w), mode="bicubic", align_corners=True)
    return idx, ddf


def _spatial(images, labels, cfg: AugmentConfig, g: torch.Generator):
    idx, ddf = _displacement(len(images), tuple(images.shape[-2:]), cfg, g)
    if ddf is not None:
        idx, ddf = idx.to(images.device), ddf.to(images.device)
        images, labels = images.clone(), labels.clone()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            images[idx] = Warp(mode="bilinear", padding_mode="zeros")(images[idx], ddf)
            warped = Warp(mode="nearest", padding_mode="zeros")(labels[idx][:, None].float(), ddf)
        labels[idx] = warped[:, 0].round().to(labels.dtype)
    mirror = _chosen(len(images), cfg.mirror_p, g).to(images.device)
    if len(mirror):
        images, labels = images.clone(), labels.clone()
        images[mirror] = images[mirror].flip(-1)
        labels[mirror] = labels[mirror].flip(-1)
    return images, labels


def _per_sample_range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.flatten(1)
    return flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)


def _intensity(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    n, dev = len(x), x.device
    x = x.clone()
    idx = _chosen(n, cfg.noise_p, g)
    std = _uniform(n, cfg.noise_std, g)
    noise = torch.randn((len(idx), *x.shape[1:]), generator=g) * std[idx].view(-1, 1, 1, 1)
    x[idx.to(dev)] += noise.to(dev)
    idx = _chosen(n, cfg.blur_p, g)
    sigma = _uniform(n, cfg.blur_sigma, g)
    for i in idx.tolist():
        x[i : i + 1] = GaussianFilter(spatial_dims=2, sigma=float(sigma[i])).to(dev)(x[i : i + 1])
    for p, bounds, op in ((cfg.brightness_p, cfg.brightness, "brightness"), (cfg.contrast_p, cfg.contrast, "contrast")):
        idx = _chosen(n, p, g)
        factor = _uniform(n, bounds, g)[idx].view(-1, 1, 1, 1).to(dev)
        if not len(idx):
            continue
        sel = x[idx.to(dev)]
        if op == "brightness":
            x[idx.to(dev)] = sel * factor
        else:
            low, high = _per_sample_range(sel)
            mean = sel.mean(dim=(1, 2, 3), keepdim=True)
            x[idx.to(dev)] = torch.minimum(torch.maximum((sel - mean) * factor + mean, low), high)
    idx = _chosen(n, cfg.lowres_p, g)
    scale = _uniform(n, cfg.lowres_scale, g)
    h, w = x.shape[-2:]
    for i in idx.tolist():
        small = F.interpolate(x[i : i + 1], scale_factor=float(scale[i]), mode="nearest")
        x[i : i + 1] = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    idx = _chosen(n, cfg.gamma_p, g)
    gamma = _uniform(n, cfg.gamma, g)[idx].view(-1, 1, 1, 1).to(dev)
    if len(idx):
        sel = x[idx.to(dev)]
        low, high = _per_sample_range(sel)
        span = (high - low).clamp_min(1e-8)
        x[idx.to(dev)] = ((sel - low) / span).clamp(0, 1) ** gamma * span + low
    return x


def augment_batch(
    images: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of a training batch; the inputs are not modified.

    Args:
        images: (B, C, H, W) float network inputs (C > 1: neighbouring slices, warped alike).
        labels: (B, H, W) integer disc masks (resampled nearest, never blended).
        cfg: the preset.
        generator: the source of every random draw (see :func:`batch_generator`).
    """
    if not cfg.active:
        return images, labels
    images, labels = _spatial(images, labels, cfg, generator)
    return _intensity(images, cfg, generator), labels
