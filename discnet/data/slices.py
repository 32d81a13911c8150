"""Sagittal slices of a canonical (RAS) volume, resized to the network's square input and back.

A slice is shown as a radiologist reads a sagittal image: rows run superior -> inferior, columns
anterior -> posterior. :func:`to_slices` and :func:`from_slices` are exact inverses.

Example:
    >>> import numpy as np
    >>> ras = np.random.rand(3, 4, 5)
    >>> s = to_slices(ras)
    >>> s.shape, bool(np.array_equal(from_slices(s), ras))
    ((3, 5, 4), True)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_slices(array_ras: np.ndarray) -> np.ndarray:
    """(x, y, z) RAS array -> (x, rows=S->I, cols=A->P) stack of sagittal slices (a view)."""
    return np.transpose(array_ras, (0, 2, 1))[:, ::-1, ::-1]


def from_slices(slices: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_slices` (a contiguous copy)."""
    return np.ascontiguousarray(np.transpose(slices[:, ::-1, ::-1], (0, 2, 1)))


def resize_images(slices: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) or (N, H, W) slices to ``size`` x ``size``."""
    x = slices if slices.ndim == 4 else slices[:, None]
    x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return x if slices.ndim == 4 else x[:, 0]


def resize_labels(slices: torch.Tensor, size: int) -> torch.Tensor:
    """Nearest-neighbour resize of (N, H, W) integer label slices to ``size`` x ``size``."""
    x = F.interpolate(slices[:, None].float(), size=(size, size), mode="nearest-exact")
    return x[:, 0].to(slices.dtype)


def resize_back(probabilities: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of network outputs (N, C, h, w) back to the native slice grid ``shape``.

    The output grid is always exactly ``shape``, whatever the network's output size (e.g. the 388 x 388
    output of a valid-padding U-Net).
    """
    return F.interpolate(probabilities, size=tuple(shape), mode="bilinear", align_corners=False)
