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


def neighbour_rows(count: int, context: int, offset: int = 0) -> torch.Tensor:
    """(count, 2 * context + 1) row indices of each slice's neighbours within one scan of ``count`` slices.

    Example:
        >>> neighbour_rows(3, 1, offset=10).tolist()
        [[10, 10, 11], [10, 11, 12], [11, 12, 12]]
    """
    steps = torch.arange(-context, context + 1)
    return offset + (torch.arange(count)[:, None] + steps).clamp(0, count - 1)


def _square_padding(h: int, w: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that centres an h x w slice in a square."""
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return left, side - w - left, top, side - h - top


def _to_square(x: torch.Tensor, fit: str) -> torch.Tensor:
    if fit == "stretch":
        return x
    if fit != "pad":
        raise ValueError(f"input.fit must be stretch or pad, not {fit!r}")
    return F.pad(x, _square_padding(*x.shape[-2:]))


def resize_images(slices: torch.Tensor, size: int, fit: str = "stretch") -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) or (N, H, W) slices to ``size`` x ``size``.

    ``fit="stretch"`` scales rows and columns independently (the paper); ``fit="pad"`` first centres
    the slice in a zero-padded square, keeping its aspect ratio.
    """
    x = slices if slices.ndim == 4 else slices[:, None]
    x = _to_square(x.float(), fit)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return x if slices.ndim == 4 else x[:, 0]


def resize_labels(slices: torch.Tensor, size: int, fit: str = "stretch") -> torch.Tensor:
    """Nearest-neighbour resize of (N, H, W) integer label slices to ``size`` x ``size``."""
    x = _to_square(slices[:, None].float(), fit)
    x = F.interpolate(x, size=(size, size), mode="nearest-exact")
    return x[:, 0].to(slices.dtype)


def resize_back(probabilities: torch.Tensor, shape: tuple[int, int], fit: str = "stretch") -> torch.Tensor:
    """Bilinear resize of network outputs (N, C, h, w) back to the native slice grid ``shape``.

    The output grid is always exactly ``shape``, whatever the network's output size (e.g. the 388 x 388
    output of a valid-padding U-Net); with ``fit="pad"`` the padding added by :func:`resize_images` is
    cropped away.

    Example:
        >>> resize_back(torch.rand(2, 1, 16, 16), (30, 20), fit="pad").shape
        torch.Size([2, 1, 30, 20])
    """
    h, w = (int(v) for v in shape)
    if fit == "stretch":
        return F.interpolate(probabilities, size=(h, w), mode="bilinear", align_corners=False)
    side = max(h, w)
    left, _, top, _ = _square_padding(h, w)
    square = F.interpolate(probabilities, size=(side, side), mode="bilinear", align_corners=False)
    return square[..., top : top + h, left : left + w]
