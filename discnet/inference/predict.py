"""Disc segmentation of whole scans with trained models: load an ensemble, predict one volume, measure.

:func:`load_models` rebuilds the networks of one or more checkpoints with the settings they were
trained with; :func:`predict_volume` turns one scan into a level-labelled disc map
in the scan's own voxel order (no files involved); :func:`discnet.evaluation.volumes.volume_rows` measures it.

Example:
    >>> import numpy as np
    >>> from discnet.data.preprocess import input_presets
    >>> from discnet.io import Volume
    >>> from discnet.models.unet import UNet
    >>> scan = Volume(np.random.rand(8, 24, 20).astype(np.float32), np.diag([3.0, 0.5, 0.5, 1.0]))
    >>> labels, prob, info = predict_volume([UNet(base_filters=4, depth=2).eval()], scan, input_presets()["stretched"], 32)
    >>> labels.shape == prob.shape == scan.shape, labels.dtype.name, prob.dtype.name
    (True, 'uint8', 'float32')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from discnet.data.preprocess import InputConfig, prepare_volume
from discnet.data.slices import from_slices
from discnet.errors import InputError
from discnet.inference.probability import disc_probability
from discnet.inference.uncertainty import voxel_uncertainty
from discnet.io import Volume, from_canonical, to_canonical
from discnet.io.levels import check_known_names, default_levels
from discnet.models.checkpoint import load_net
from discnet.models.model_settings import ModelSettings, ensemble_settings, model_settings
from discnet.postprocess import DiscCountWarning, disc_mask, label_levels
from discnet.postprocess.levels import kept_what
from discnet.spine import FLIPS, LEVELS

#: A stand-in for a network: ``(images (n, S, S), native_shape) -> (n, H, W)`` disc probability.
ProbabilityFn = Callable[[torch.Tensor, tuple[int, int]], np.ndarray]


def member_probabilities(
    members: Sequence[ProbabilityFn],
    volume: Volume,
    input_cfg: InputConfig,
    image_size: int,
    tta: str = "none",
) -> list[np.ndarray]:
    """Disc probability of every member (each of ``members`` on each transform of ``FLIPS[tta]``) on the
    canonical (RAS) grid.

    A transform mirrors the canonical scan (axis 1: anterior-posterior, the columns of a sagittal slice;
    axis 2: superior-inferior, its rows) before preprocessing, and the member's probability is mirrored
    back, so every member is a full prediction of a mirrored scan seen in the scan's own frame.

    Example:
        >>> from discnet.data.preprocess import input_presets
        >>> scan = Volume(np.random.rand(2, 6, 4).astype(np.float32), np.eye(4))
        >>> def ramp(images, shape): return np.broadcast_to(np.arange(shape[1]) / 10, (len(images), *shape))
        >>> [float(p[0, 0, 0]) for p in member_probabilities([ramp], scan, input_presets()["raw"], 8, "flip")]
        [0.5, 0.0]
    """
    if tta not in FLIPS:
        raise InputError(None, f"unknown test-time augmentation '{tta}'", f"use one of {', '.join(FLIPS)}")
    ras, affine = to_canonical(volume) if FLIPS[tta] != ((),) else (None, None)
    out = []
    for axes in FLIPS[tta]:
        scan = Volume(np.flip(ras, axes).copy(), affine) if axes else volume
        stack = prepare_volume(scan, None, input_cfg, image_size)
        for member in members:
            prob = from_slices(np.asarray(member(stack.images, stack.native_shape), np.float32))
            out.append(np.flip(prob, axes).copy() if axes else prob)
    return out


def _network(net: nn.Module, batch_size: int, device, precision: str, fit: str = "stretch") -> ProbabilityFn:
    return lambda images, shape: disc_probability([net], images, shape, batch_size, device, precision, fit=fit)


def load_models(
    paths: Sequence[str | Path],
    input_preset: str | None = None,
    image_size: int | None = None,
    device: str | torch.device = "cpu",
    levels: Mapping[int, str] | None = None,
    surplus: str | None = None,
    tta: str | None = None,
) -> tuple[list[nn.Module], ModelSettings]:
    """Networks of one or more checkpoints (an ensemble), with the settings they share.

    Each checkpoint's settings (input preset, image size, threshold, level names, surplus rule, test-time
    augmentation) are read by
    :func:`~discnet.models.model_settings.model_settings`: stored, else from the run's ``config.yaml``,
    else ``input_preset`` / ``image_size``; ``levels``, ``surplus`` and ``tta`` override the stored ones. The members
    must agree (:func:`~discnet.models.model_settings.ensemble_settings`); InputError otherwise. Pass the
    settings' ``surplus`` and ``tta`` on to :func:`predict_volume` (its own defaults are ``largest``, ``none``).
    """
    if not paths:
        raise InputError(None, "no model given", "pass --ckpt MODEL.ckpt")
    nets, members = [], []
    for path in map(Path, paths):
        net, checkpoint = load_net(path)
        members.append((path, model_settings(path, checkpoint, input_preset, image_size, levels, surplus, tta)))
        nets.append(net.to(device).eval())
    return nets, ensemble_settings(members)


def levels_and_values(levels: Mapping[int, str], where: str | Path | None = None) -> tuple[list[str], dict[str, int]]:
    """Level names superior to inferior and the label value of each, from a ``{value: name}`` mapping.

    Example:
        >>> levels_and_values({1: "L5-S1", 2: "L4-L5"})
        (['L4-L5', 'L5-S1'], {'L5-S1': 1, 'L4-L5': 2})
    """
    check_known_names(levels, where)
    bad = [value for value in levels if not 1 <= int(value) <= 255]
    if bad:
        raise InputError(where, f"has label values {bad} outside 1..255", "use values that fit a uint8 label map")
    values = {name: int(value) for value, name in levels.items()}
    return [name for name in LEVELS if name in values], values


@torch.inference_mode()
def predict_volume(
    nets: Sequence[nn.Module],
    volume: Volume,
    input_cfg: InputConfig,
    image_size: int,
    *,
    levels: Mapping[int, str] | None = None,
    expected_discs: int = 5,
    orphan_removal: bool = True,
    anchor: str = "inferior",
    surplus: str = "largest",
    threshold: float = 0.5,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    precision: str = "32",
    probability_fn: ProbabilityFn | Sequence[ProbabilityFn] | None = None,
    tta: str = "none",
    uncertainty: str | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Segment and level-label the discs of one scan.

    Sagittal slices (after RAS reorientation) go through every member (each network on each test-time
    transform, :func:`member_probabilities`); their mean probability, on the native slice grid, is
    thresholded, cleaned of orphans (paper 2.6) on the canonical grid, and its 3D components are named by
    level from the inferior end (world coordinates). Each member is thresholded and cleaned the same way.

    Args:
        nets: the networks (an ensemble is averaged); unused with ``probability_fn``.
        volume: the scan.
        input_cfg, image_size: how the networks were trained (see :func:`load_models`).
        levels: label value -> level name (default 1 = L5-S1 ... 5 = L1-L2).
        expected_discs: discs in the field of view; other counts give ``info["warning"]``.
        orphan_removal: apply orphan removal.
        anchor: ``"inferior"`` or ``"superior"``: the end level names start from when too few discs are
            found, and (``surplus="anchor"``) the end whose discs are kept when too many are.
        surplus: ``"largest"`` or ``"anchor"`` (keep those nearest the ``anchor`` end): which discs are kept
            when too many are found (see :func:`~discnet.postprocess.label_levels`).
        threshold: probability above which a voxel is disc.
        batch_size, device, precision: passed to :func:`~discnet.inference.probability.disc_probability`.
        probability_fn: replaces the networks (tests, other models); a list gives several members.
        tta: test-time augmentation, a key of :data:`~discnet.spine.FLIPS` (``none``, ``flip``, ``flip-all``).
        uncertainty: ``"entropy"`` or ``"variance"``: also compute the per-voxel uncertainty map.

    Returns:
        ``(labels, probability, info)``: uint8 level labels and float32 disc probability, both in
        ``volume``'s native voxel order and shape; ``info`` has the ``label_levels`` entries (``discs``,
        ``dropped``, ``found``, ``expected``), ``orphan_voxels`` removed, ``warning`` (text or None),
        ``members`` (count), ``member_voxels`` (each member's disc voxels as flat native indices, with two
        members or more, else None) and ``uncertainty`` (the native float32 map, or None).
    """
    names, values = levels_and_values(default_levels() if levels is None else levels)
    if not 1 <= expected_discs <= len(names):
        raise InputError(None, f"expected discs {expected_discs} is not in 1..{len(names)}", "fix --expected-discs")
    if np.ptp(volume.array) == 0:
        raise InputError(volume.path, "image is constant (no contrast to segment)", "give the scan itself")
    if probability_fn is None:
        fns = [_network(net, batch_size, device, precision, input_cfg.fit) for net in nets]
    else:
        fns = list(probability_fn) if isinstance(probability_fn, Sequence) else [probability_fn]
    members = member_probabilities(fns, volume, input_cfg, image_size, tta)
    prob_ras = members[0] if len(members) == 1 else np.mean(members, axis=0, dtype=np.float32)
    mask_ras = disc_mask(prob_ras, threshold, orphan_removal=False)
    cleaned = disc_mask(prob_ras, threshold, orphan_removal)
    mask = from_canonical(cleaned, volume)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DiscCountWarning)
        labels, info = label_levels(
            mask, volume.affine, names, values, expected=expected_discs, anchor=anchor, surplus=surplus
        )
    counted = any(issubclass(w.category, DiscCountWarning) for w in caught)
    info["warning"] = count_warning(info, anchor, surplus) if counted else None
    info["orphan_voxels"] = int(mask_ras.sum() - cleaned.sum())
    info["members"] = len(members)
    info["member_voxels"] = None
    if len(members) > 1:
        info["member_voxels"] = [
            np.flatnonzero(from_canonical(disc_mask(m, threshold, orphan_removal), volume)) for m in members
        ]
    info["uncertainty"] = None
    if uncertainty is not None:
        info["uncertainty"] = from_canonical(voxel_uncertainty(np.stack(members), uncertainty), volume)
    return labels, from_canonical(prob_ras, volume).astype(np.float32, copy=False), info


def count_warning(info: dict, anchor: str = "inferior", surplus: str = "largest") -> str:
    """One short line on a disc count that differs from the expected one (from ``label_levels`` info).

    Example:
        >>> text = count_warning({"found": 7, "expected": 5, "discs": [], "dropped": [{"voxels": 9}, {"voxels": 4}]})
        >>> found, kept = text.split(": ")
        >>> found
        'found 7 disc components, expected 5'
        >>> kept
        'kept the 5 largest, dropped 2 (13 voxels; --surplus anchor keeps those nearest the inferior end)'
    """
    text = f"found {info['found']} disc components, expected {info['expected']}"
    if info.get("fragments"):
        voxels = sum(d["voxels"] for d in info["fragments"])
        text += f" (and dropped {len(info['fragments'])} fragment(s) of {voxels} voxels)"
    if info["dropped"]:
        voxels = sum(d["voxels"] for d in info["dropped"])
        other = "largest keeps the largest" if surplus == "anchor" else f"anchor keeps those nearest the {anchor} end"
        kept = kept_what(info["expected"], anchor, surplus)
        return f"{text}: {kept}, dropped {len(info['dropped'])} ({voxels} voxels; --surplus {other})"
    if not info["discs"]:
        return f"{text}: nothing to label"
    first, last = info["discs"][0]["level"], info["discs"][-1]["level"]
    other = "superior" if anchor == "inferior" else "inferior"
    return (
        f"{text}: named them {first}..{last} from the {anchor} end (touching discs merge into one; "
        f"--anchor {other} counts from the other end)"
    )
