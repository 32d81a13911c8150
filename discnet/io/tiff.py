"""TIFF stacks, the format of the paper's pipeline (one sagittal slice per page).

A TIFF carries no orientation, so discnet fixes one: pages run left -> right, rows superior -> inferior,
columns anterior -> posterior (axis codes ``R, I, P``), i.e. each page is a sagittal slice as a radiologist
views it. Spacing comes from ImageJ metadata (``spacing`` between pages, ``unit``) and the X/Y resolution
tags, or is given explicitly. discnet also stores the exact spacing as ``discnet_spacing`` in the ImageJ
description so that its own files round-trip bit for bit. Stacks without spacing tags take the spacing
set by :func:`given_spacing` (the ``--spacing`` option of every verb that reads images).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import tifffile

from discnet.errors import InputError
from discnet.io.volume import Volume

_UNIT_MM = {
    "mm": 1.0,
    "millimeter": 1.0,
    "cm": 10.0,
    "micron": 1e-3,
    "um": 1e-3,
    "\\u00B5m": 1e-3,
    "µm": 1e-3,
}
_RESOLUTION_UNIT_MM = {2: 25.4, 3: 10.0}


_GIVEN_SPACING: ContextVar[tuple[float, float, float] | None] = ContextVar("discnet_tiff_spacing", default=None)


@contextmanager
def given_spacing(spacing: tuple[float, float, float] | None) -> Iterator[None]:
    """TIFF stacks read inside the block without spacing tags get ``spacing`` (page, row, column in mm).

    Example:
        >>> with given_spacing((3.0, 0.5, 0.5)):
        ...     _GIVEN_SPACING.get()
        (3.0, 0.5, 0.5)
    """
    token = _GIVEN_SPACING.set(None if spacing is None else tuple(float(s) for s in spacing))
    try:
        yield
    finally:
        _GIVEN_SPACING.reset(token)


def tiff_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """Affine of a (pages, rows, columns) stack: pages -> R, rows -> I, columns -> P."""
    s_page, s_row, s_col = spacing
    return np.array([[s_page, 0, 0, 0], [0, 0, -s_col, 0], [0, -s_row, 0, 0], [0, 0, 0, 1.0]])


def _tag_spacing(tif: tifffile.TiffFile) -> tuple[float, float, float] | None:
    meta = tif.imagej_metadata or {}
    if "discnet_spacing" in meta:
        return tuple(float(s) for s in str(meta["discnet_spacing"]).split())
    page = tif.pages[0]
    unit_mm = _UNIT_MM.get(str(meta.get("unit", "")).lower())
    if unit_mm is None:
        unit_mm = _RESOLUTION_UNIT_MM.get(int(getattr(page.tags.get("ResolutionUnit"), "value", 1)))
    if unit_mm is None or "spacing" not in meta or "XResolution" not in page.tags:
        return None
    x_num, x_den = page.tags["XResolution"].value
    y_num, y_den = page.tags["YResolution"].value
    return (float(meta["spacing"]) * unit_mm, unit_mm * y_den / y_num, unit_mm * x_den / x_num)


def read_tiff(path: Path, spacing: tuple[float, float, float] | None = None) -> Volume:
    """Read a TIFF stack; ``spacing`` (page, row, column in mm) overrides the file's tags, which override
    :func:`given_spacing`'s."""
    with tifffile.TiffFile(str(path)) as tif:
        array = tif.asarray()
        found = _tag_spacing(tif)
    spacing = tuple(spacing) if spacing is not None else found or _GIVEN_SPACING.get()
    if spacing is None:
        raise InputError(path, "TIFF stack has no voxel spacing in its tags", "give the spacing explicitly (--spacing)")
    if array.ndim == 2:
        array = array[None]
    return Volume(array=array, affine=tiff_affine(spacing), path=path, header={"tiff_spacing": spacing})


def write_tiff(array: np.ndarray, reference: Volume, out: Path) -> None:
    """Write a (pages, rows, columns) stack with the reference's spacing in ImageJ metadata."""
    spacing = reference.spacing
    if isinstance(reference.header, dict) and "tiff_spacing" in reference.header:
        spacing = reference.header["tiff_spacing"]
    tifffile.imwrite(
        str(out),
        np.ascontiguousarray(array),
        imagej=True,
        resolution=(1.0 / spacing[2], 1.0 / spacing[1]),
        metadata={
            "spacing": spacing[0],
            "unit": "mm",
            "axes": "ZYX",
            "discnet_spacing": " ".join(map(repr, spacing)),
        },
    )
