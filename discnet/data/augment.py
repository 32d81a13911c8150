"""On-the-fly augmentation of training batches (``conf/augment``): nnU-Net's 2D transforms, batched.

Each transform is applied to a sample with its own probability, with parameters drawn per sample, in
nnU-Net's order: a spatial warp (rotation, scaling, elastic deformation and the anterior-posterior mirror
as one sampling grid, resampled by torch's ``grid_sample``: bilinear for the image, nearest neighbour for
the mask, so a label is never blended), Gaussian noise, Gaussian blur (MONAI's kernel), multiplicative
brightness, contrast, simulated low resolution and gamma. Every draw comes from the ``generator`` given,
so a batch is augmented alike for the same seed, epoch and step, on any device, whatever was drawn before
(a resumed run augments exactly as an uninterrupted one). Each transform works only on the slices it
picks. ``augment=none`` (the paper) changes nothing. MONAI's ``Warp`` and ``GaussianFilter`` do the same
resampling and filtering (the tests compare them) but rebuild a reference grid or pad on every call,
which at 512 px on a CPU cost more than the resampling itself.

Example:
    >>> import torch
    >>> cfg = AugmentConfig(rotation_p=1.0, gamma_p=1.0)
    >>> x, y = torch.rand(4, 1, 32, 32), (torch.rand(4, 32, 32) > 0.5).to(torch.uint8)
    >>> ax, ay = augment_batch(x, y, cfg, torch.Generator().manual_seed(0))
    >>> ax.shape, ay.shape, ay.dtype, bool(ay.max() <= 1)
    (torch.Size([4, 1, 32, 32]), torch.Size([4, 32, 32]), torch.uint8, True)
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from monai.networks.layers.convutils import gaussian_1d

from discnet.data.augment_config import AugmentConfig


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


@functools.lru_cache(maxsize=16)
def _cubic_upsampling(nodes: int, size: int) -> torch.Tensor:
    """(size, nodes) matrix of bicubic upsampling (corners aligned) from ``nodes`` samples to ``size``.

    Bicubic interpolation is separable and linear, so ``U_h @ field @ U_w.T`` is exactly
    ``F.interpolate(field, (h, w), mode="bicubic", align_corners=True)``, at the cost of two small matmuls.
    """
    basis = torch.eye(nodes).reshape(nodes, 1, nodes, 1)
    return F.interpolate(basis, size=(size, 1), mode="bicubic", align_corners=True)[:, 0, :, 0].T.contiguous()


def _sampling_grid(
    angle: torch.Tensor,
    zoom: torch.Tensor,
    noise: torch.Tensor | None,
    size: tuple[int, int],
    mirror: torch.Tensor | None = None,
) -> torch.Tensor:
    """(k, H, W, 2) ``grid_sample`` grids (corners aligned, x then y) of a rotation, a zoom, (``noise``:
    (k, 2, g, g) displacements in pixels, rows then columns; None: none) an elastic deformation and
    (``mirror``: k booleans) the anterior-posterior mirror of the result.

    Output pixel (r, c), centred, samples the input at the inverse rotation and scaling of (r, c)
    measured in pixels, so a rotation stays a rotation on a slice that is not square; the displacement
    is upsampled bicubically from its g x g draws (:func:`_cubic_upsampling`) and added; a mirrored
    slice samples column W-1-c. Every term is a product of a row factor and a column factor, so each
    grid is one (H, K) @ (K, 2W) matmul (K = 2, or 2 + 2g with a displacement) written in
    ``grid_sample``'s layout: no pass over the grid per term.
    """
    h, w = size
    k = len(angle)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    sign = 1.0 - 2.0 * mirror.to(torch.float32) if mirror is not None else torch.ones(k)
    x = sign[:, None] * torch.linspace(-1.0, 1.0, w)  # (k, w) columns, normalised, mirrored where asked
    y = torch.linspace(-1.0, 1.0, h)  # rows
    ry, rx = (h - 1) / max(w - 1, 1), (w - 1) / max(h - 1, 1)  # normalised units differ per axis
    rows = [torch.ones(k, h), y.expand(k, h)]  # (k, h) row factors ...
    cols = [  # ... and their (k, w, 2) column factors: x then y of the grid
        torch.stack([cos[:, None] * x, -(sin * rx)[:, None] * x], dim=-1),
        torch.stack([(sin * ry)[:, None], cos[:, None]], dim=-1).expand(k, w, 2),
    ]
    left = torch.stack(rows, dim=-1)
    right = torch.stack(cols, dim=1)  # (k, 2, w, 2)
    if noise is not None:
        g = noise.shape[-1]
        up = _cubic_upsampling(g, w)  # (w, g)
        up = torch.where(sign[:, None, None] < 0, up.flip(0), up)  # (k, w, g)
        zero = torch.zeros(k, g, w)
        along_x = torch.stack([up.transpose(1, 2) * (2.0 / max(w - 1, 1)), zero], dim=-1)  # columns -> x
        along_y = torch.stack([zero, up.transpose(1, 2) * (2.0 / max(h - 1, 1))], dim=-1)  # rows -> y
        field = _cubic_upsampling(g, h) @ noise  # (k, 2, h, g): rows, columns displacement per row
        left = torch.cat([left, field[:, 0], field[:, 1]], dim=-1)
        right = torch.cat([right, along_y, along_x], dim=1)
    right = right.reshape(k, right.shape[1], 2 * w)
    if noise is None:  # two terms: two broadcast passes (a K = 2 bmm is twice as slow on a CPU as K = 18)
        return torch.mul(left[..., :1], right[:, :1]).addcmul_(left[..., 1:], right[:, 1:]).view(k, h, w, 2)
    return torch.bmm(left, right).view(k, h, w, 2)


def _resample(images, labels, out, chosen: list[int], angle, zoom, noise, mirror) -> None:
    """The ``chosen`` slices resampled into ``out`` (images, labels) through their grids (``noise``: None or
    their displacements), the image bilinearly, the mask by nearest neighbour. A slice left over alone is
    resampled as one band of rows per thread (``grid_sample`` spreads only the batch over the threads)."""
    c, (h, w) = images.shape[1], images.shape[-2:]
    step = max(1, torch.get_num_threads()) if images.device.type == "cpu" else max(1, len(chosen))
    for start in range(0, len(chosen), step):
        part = chosen[start : start + step]  # slices copied through views: advanced indexing is 3-5x slower
        idx = torch.tensor(part)
        grid = _sampling_grid(angle[idx], zoom[idx], None if noise is None else noise[idx], (h, w), mirror[idx])
        bands = step if len(part) == 1 and h % step == 0 else 1
        grid = grid.to(images.device, images.dtype).view(len(part) * bands, h // bands, w, 2)
        if bands > 1:
            i = part[0]
            image, mask = images[i : i + 1].expand(bands, c, h, w), labels[i : i + 1, None].expand(bands, 1, h, w)
        else:
            image, mask = torch.stack([images[i] for i in part]), torch.stack([labels[i] for i in part])[:, None]
        image = F.grid_sample(image, grid, "bilinear", "zeros", align_corners=True)
        mask = F.grid_sample(mask.to(images.dtype), grid, "nearest", "zeros", align_corners=True)
        for j, i in enumerate(part):
            out[0][i].view(c, bands, h // bands, w).copy_(image[j * bands : (j + 1) * bands].transpose(0, 1))
            out[1][i].view(bands, h // bands, w).copy_(mask[j * bands : (j + 1) * bands, 0])


def _spatial(
    images, labels, cfg: AugmentConfig, g: torch.Generator, inplace: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation, scaling, elastic deformation and the mirror as one resampling of the chosen slices.

    Every draw is made for all samples (the generator advances alike whatever is chosen); grids are built
    only for the warped samples (their mirror folded in). On a CPU, as many slices at a time as there are
    threads, so each grid is in cache when the mask reuses it (1.32x over 8ab8961,
    ``experiments/benchmarks/results-cpu-augment-versions-8ab8961.json``); on a GPU, all in one call.
    Elastic slices apart (the others' grid has two terms); slices only mirrored are flipped, the others
    copied (``inplace``: left where they are, in the batch being overwritten).
    """
    n, (h, w) = len(images), images.shape[-2:]
    angle = torch.where(torch.rand(n, generator=g) < cfg.rotation_p, _uniform(n, (-1, 1), g), torch.zeros(n))
    angle = angle * math.radians(cfg.rotation_deg)
    zoom = torch.where(torch.rand(n, generator=g) < cfg.scaling_p, _uniform(n, cfg.scaling, g), torch.ones(n))
    elastic = torch.rand(n, generator=g) < cfg.elastic_p
    coarse = max(2, round(1.0 / max(cfg.elastic_sigma, 1e-3)))
    noise = torch.randn(n, 2, coarse, coarse, generator=g) * cfg.elastic_magnitude * max(h, w)
    mirror = torch.rand(n, generator=g) < cfg.mirror_p
    warped = (angle != 0) | (zoom != 1) | elastic
    out = (images, labels) if inplace else (torch.empty_like(images), torch.empty_like(labels))
    for deformed in (True, False):  # elastic slices apart: the others need only the two-term grid
        chosen = torch.nonzero(warped & (elastic if deformed else ~elastic)).flatten().tolist()
        _resample(images, labels, out, chosen, angle, zoom, noise if deformed else None, mirror)
    for i in torch.nonzero(~warped & (mirror | (not inplace))).flatten().tolist():
        out[0][i], out[1][i] = (images[i].flip(-1), labels[i].flip(-1)) if mirror[i] else (images[i], labels[i])
    return out


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """MONAI's Gaussian kernel (truncated at 4 sigma) applied along rows then columns, zero padded.

    The same filter as :class:`~monai.networks.layers.GaussianFilter`, as weighted sums of shifted views
    (on a CPU five times faster than a depthwise convolution of one large slice).
    """
    kernel = gaussian_1d(torch.tensor(sigma), truncated=4.0).tolist()
    half, (h, w) = len(kernel) // 2, x.shape[-2:]
    padded = F.pad(x, (half, half, half, half))
    rows = torch.zeros((*x.shape[:-2], h, w + 2 * half), dtype=x.dtype, device=x.device)
    for i, weight in enumerate(kernel):
        rows.add_(padded[..., i : i + h, :], alpha=weight)
    out = torch.zeros_like(x)
    for i, weight in enumerate(kernel):
        out.add_(rows[..., i : i + w], alpha=weight)
    return out


def _intensity(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> None:
    """nnU-Net's intensity transforms, in its order, each on the slices it picks. Works in place."""
    n, dev = len(x), x.device
    idx = _chosen(n, cfg.noise_p, g)
    std = _uniform(n, cfg.noise_std, g)
    noise = torch.randn((len(idx), *x.shape[1:]), generator=g)
    for j, i in enumerate(idx.tolist()):
        x[i] += noise[j].mul_(std[i]).to(dev)
    idx = _chosen(n, cfg.blur_p, g)
    sigma = _uniform(n, cfg.blur_sigma, g)
    for i in idx.tolist():
        x[i : i + 1] = _blur(x[i : i + 1], float(sigma[i]))
    for p, bounds, op in ((cfg.brightness_p, cfg.brightness, "brightness"), (cfg.contrast_p, cfg.contrast, "contrast")):
        idx = _chosen(n, p, g)
        factor = _uniform(n, bounds, g)
        for i in idx.tolist():
            if op == "brightness":
                x[i] *= float(factor[i])
            else:
                v = x[i]
                (low, high), mean = torch.aminmax(v), v.mean()
                v.sub_(mean).mul_(float(factor[i])).add_(mean).clamp_(low, high)
    idx = _chosen(n, cfg.lowres_p, g)
    scale = _uniform(n, cfg.lowres_scale, g)
    h, w = x.shape[-2:]
    for i in idx.tolist():
        small = F.interpolate(x[i : i + 1], scale_factor=float(scale[i]), mode="nearest-exact")
        x[i : i + 1] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    idx = _chosen(n, cfg.gamma_p, g)
    gamma = _uniform(n, cfg.gamma, g)
    for i in idx.tolist():
        v = x[i]
        low, high = torch.aminmax(v)
        span = (high - low).clamp_min(1e-8)
        # x ** gamma as exp(gamma log x): the same values (0 -> 0) at half the cost of pow on a CPU; (v - low) / span
        # lies in [0, 1] exactly (rounding is monotonic, span / span = 1), so no clamp
        v.sub_(low).div_(span).log_().mul_(float(gamma[i])).exp_().mul_(span).add_(low)


def augment_batch(
    images: torch.Tensor, labels: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator, inplace: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of a training batch; the inputs are not modified unless ``inplace``.

    Args:
        images: (B, C, H, W) float network inputs (C > 1: neighbouring slices, warped alike).
        labels: (B, H, W) integer binary disc masks (warped by nearest neighbour: never blended).
        cfg: the preset.
        generator: the source of every random draw (see :func:`batch_generator`).
        inplace: overwrite ``images`` and ``labels`` (a batch nobody else holds; the same values) and return them.
    """
    if not cfg.active:
        return images, labels
    images, labels = _spatial(images, labels, cfg, generator, inplace)
    _intensity(images, cfg, generator)
    return images, labels
