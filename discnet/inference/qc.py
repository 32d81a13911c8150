"""Quality-control pictures: sagittal slices of a scan with its disc segmentation on top.

Slices are shown as radiologists read sagittal images (superior up, anterior left) with the true pixel
aspect ratio. With a ground truth the colours are the paper's Figure 6: yellow = correct (true
positive), green = false negative, red = false positive; without one each disc level has its colour.
Slice numbers count sagittal slices from the patient's left to right (the first axis of the RAS-canonical
array). Figures are drawn on matplotlib's Agg canvas without pyplot, so no global state is touched.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> from discnet.io import Volume
    >>> scan = Volume(np.random.rand(5, 30, 20).astype(np.float32), np.eye(4))
    >>> pred = np.zeros(scan.shape, np.uint8); pred[1:4, 10:14, 8:12] = 1
    >>> out = write_overlay(pathlib.Path(tempfile.mkdtemp()) / "qc.png", scan, pred, subject="demo")
    >>> out.name
    'qc.png'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from discnet.data.slices import to_slices
from discnet.errors import InputError
from discnet.evaluation.metrics import dice
from discnet.io import Volume, to_canonical
from discnet.io.atomic import atomic_path
from discnet.io.levels import default_levels
from discnet.io.pictures import check_picture_name
from discnet.postprocess import central_slice_index
from discnet.spine import level_sort_key

#: The paper's Figure 6 colours (RGB).
TP, FN, FP = (1.0, 0.9, 0.0), (0.0, 0.85, 0.0), (1.0, 0.0, 0.0)
#: One colour per level, superior to inferior: Okabe & Ito's colour-blind-safe palette (blue, orange, bluish
#: green, yellow, reddish purple), neighbouring levels far apart in hue and lightness.
LEVEL_COLOURS = ((0.0, 0.45, 0.70), (0.90, 0.60, 0.0), (0.0, 0.62, 0.45), (0.94, 0.89, 0.26), (0.80, 0.47, 0.65))
#: Sagittal slices in the default ``discnet predict --qc`` montage.
MONTAGE = 5
ALPHA = 0.55
PANEL_INCHES = 4.0


def _sagittal(volume: Volume, array: np.ndarray) -> np.ndarray:
    """(x, rows S->I, cols A->P) slices of a native-order array on ``volume``'s grid."""
    return to_slices(to_canonical(volume.with_array(array))[0])


def _pixel_aspect(volume: Volume) -> float:
    """Height / width of a displayed pixel: S-I spacing over A-P spacing on the canonical grid."""
    affine = to_canonical(volume.with_array(np.zeros(volume.shape, np.uint8)))[1]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return float(spacing[2] / spacing[1])


def montage_slices(reference: np.ndarray, count: int = MONTAGE) -> list[int]:
    """``count`` sagittal slices spread evenly over the disc column of ``reference`` (x, rows, cols), from its
    first to its last slice with disc voxels, plus the central slice; the middle slice when it is empty.

    Example:
        >>> r = np.zeros((20, 4, 4), bool); r[3:12, 1, 1] = True
        >>> montage_slices(r)
        [3, 5, 7, 9, 11]
    """
    hits = np.flatnonzero(reference.reshape(len(reference), -1).any(axis=1))
    if not hits.size:
        return [len(reference) // 2]
    spread = np.round(np.linspace(hits[0], hits[-1], count)).astype(int).tolist()
    return sorted({*spread, central_slice_index(reference)})


def _choose_slices(slices: Sequence[int] | None, reference: np.ndarray, montage: int | None = None) -> list[int]:
    n = len(reference)
    if slices is None and montage:
        return montage_slices(reference, montage)
    if slices is None:
        return [central_slice_index(reference) if reference.any() else n // 2]
    bad = [s for s in slices if not 0 <= s < n]
    if bad or not slices:
        raise InputError(None, f"slice(s) {bad or 'none'} outside 0..{n - 1}", f"choose sagittal slices 0..{n - 1}")
    return list(slices)


def _rgba(colours: list[tuple[np.ndarray, tuple]], shape: tuple[int, int]) -> np.ndarray:
    rgba = np.zeros((*shape, 4), np.float32)
    for where, colour in colours:
        rgba[where] = (*colour, ALPHA)
    return rgba


def _layers(pred: np.ndarray, truth: np.ndarray | None, levels: Mapping[int, str], voxel_mm3: float):
    """Per-slice overlay colours and the legend entries (each level with its predicted volume)."""
    if truth is not None:
        p, t = pred > 0, truth > 0
        legend = [("correct (TP)", TP), ("false negative", FN), ("false positive", FP)]
        return (lambda x: [(p[x] & t[x], TP), (~p[x] & t[x], FN), (p[x] & ~t[x], FP)]), legend
    present = [int(v) for v in np.unique(pred) if v != 0]
    names = {v: levels.get(v, f"label {v}") for v in present}
    order = sorted(present, key=lambda v: level_sort_key(names[v]))
    colour = {v: LEVEL_COLOURS[i % len(LEVEL_COLOURS)] for i, v in enumerate(order)}
    legend = [(f"{names[v]}  {np.count_nonzero(pred == v) * voxel_mm3 / 1000:.2f} cm\u00b3", colour[v]) for v in order]
    return (lambda x: [(pred[x] == v, colour[v]) for v in order]), legend


def overlay_figure(
    image: Volume,
    prediction: np.ndarray,
    truth: np.ndarray | None = None,
    slices: Sequence[int] | None = None,
    subject: str | None = None,
    levels: Mapping[int, str] | None = None,
    montage: int | None = None,
) -> Figure:
    """A figure with one panel per sagittal slice: the scan in grey, the segmentation in colour.

    Args:
        image: the scan.
        prediction: label map in ``image``'s native voxel order (any non-zero value is disc).
        truth: ground-truth label map on the same grid, or None.
        slices: sagittal slice indices (RAS x, left to right); default the central slice
            (:func:`~discnet.postprocess.central_slice_index`) of the truth, else of the prediction.
        subject: name for the title.
        levels: label value -> level name for the legend (default 1 = L5-S1 ... 5 = L1-L2); without a
            truth each level's legend entry gives its volume.
        montage: without ``slices``, show this many slices across the disc column (:func:`montage_slices`)
            instead of the central one.
    """
    for name, array in (("prediction", prediction), ("truth", truth)):
        if array is not None and np.shape(array) != image.shape:
            raise InputError(
                None, f"{name} has shape {np.shape(array)}, the image {image.shape}", "give maps of this scan"
            )
    scan = _sagittal(image, np.asarray(image.array, np.float32))
    pred = _sagittal(image, np.asarray(prediction))
    true = None if truth is None else _sagittal(image, np.asarray(truth))
    chosen = _choose_slices(slices, (true if true is not None else pred) > 0, montage)
    colours, legend = _layers(pred, true, default_levels() if levels is None else levels, image.voxel_volume)
    aspect = _pixel_aspect(image)
    rows, cols = scan.shape[1:]
    panel_h = PANEL_INCHES * rows * aspect / cols
    fig = Figure(figsize=(PANEL_INCHES * len(chosen), panel_h + 0.9), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    shown = scan[chosen]
    lo, hi = np.percentile(shown, [1.0, 99.5]) if shown.size else (0.0, 1.0)
    for i, x in enumerate(chosen):
        ax = fig.add_subplot(1, len(chosen), i + 1)
        ax.imshow(scan[x], cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, aspect=aspect, interpolation="nearest")
        ax.imshow(_rgba(colours(x), (rows, cols)), aspect=aspect, interpolation="nearest")
        ax.set_title(f"sagittal slice {x}", fontsize=9)
        ax.set_xlabel("anterior  \u2190  \u2192  posterior", fontsize=8)
        ax.set_ylabel("inferior  \u2190  \u2192  superior", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    title = subject or ""
    if truth is not None:
        title = f"{title}   Dice {dice(prediction, truth):.3f}".strip()
    if title:
        fig.suptitle(title, fontsize=11)
    if legend:
        handles = [Patch(facecolor=c, alpha=ALPHA, label=name) for name, c in legend]
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=min(len(handles), 3 * len(chosen)),
            fontsize=8,
            frameon=False,
        )
    return fig


def write_overlay(
    out: str | Path, image: Volume, prediction: np.ndarray, truth: np.ndarray | None = None, **kwargs
) -> Path:
    """Draw :func:`overlay_figure` and write it atomically to ``out`` (.png, .pdf, .svg or .jpg)."""
    out = check_picture_name(out)
    fig = overlay_figure(image, prediction, truth, **kwargs)
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    return out
