"""Contrast stretching of the paper's Inputs 3 and 4 (section 2.5.2), with torchio's RescaleIntensity.

The ``lower`` percentile maps to 0 and the ``upper`` one to 255; values beyond are clipped (winsorized).

Example:
    >>> import numpy as np
    >>> out = stretch(np.arange(1001, dtype=np.float32))
    >>> float(out[25]), float(out[975]), float(out.min()), float(out.max())
    (0.0, 255.0, 0.0, 255.0)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torchio as tio

OUT_MAX = 255.0


def stretch(array: np.ndarray, lower: float = 2.5, upper: float = 97.5) -> np.ndarray:
    """Map the ``lower``/``upper`` percentiles of ``array`` to 0/255 and clip (a new float32 array).

    A constant array (no contrast to stretch) maps to zeros.
    """
    if not 0 <= lower < upper <= 100:
        raise ValueError(f"need 0 <= lower < upper <= 100, got {lower}, {upper}")
    lo, hi = np.percentile(array, [lower, upper])
    if hi <= lo:
        return np.zeros(array.shape, np.float32)
    tensor = torch.as_tensor(np.asarray(array, np.float32).reshape(1, -1, 1, 1))
    rescale = tio.RescaleIntensity(out_min_max=(0.0, OUT_MAX), percentiles=(lower, upper))
    # torchio draws a seed from the global torch RNG on every call: fork it, so that preparing data (or not,
    # with a warm cache) never changes what training draws afterwards.
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", RuntimeWarning)
        out = rescale(tio.ScalarImage(tensor=tensor)).data
    return out.numpy().reshape(array.shape).astype(np.float32, copy=False)


def stretch_slices(slices: np.ndarray, lower: float = 2.5, upper: float = 97.5) -> np.ndarray:
    """:func:`stretch` each slice (first axis) on its own percentiles."""
    return np.stack([stretch(s, lower, upper) for s in slices]) if len(slices) else slices.astype(np.float32)


def random_lower_percentiles(n: int, rng: np.random.Generator, max_lower: float = 10.0) -> np.ndarray:
    """The paper's augmentation draws: lower percentile uniform in [0, ``max_lower``]; upper = 100 - lower."""
    return rng.uniform(0.0, max_lower, size=n)
