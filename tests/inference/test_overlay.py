"""``discnet overlay`` and :mod:`discnet.inference.qc`: orientation (superior up, anterior left), Figure 6 colours,
level legend, and one-line errors."""

from __future__ import annotations

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest

import discnet.cli
from discnet.errors import InputError
from discnet.inference.qc import FN, FP, TP, overlay_figure, write_overlay
from discnet.io import Volume, read_volume


def cli(*args) -> int:
    return discnet.cli.main([str(a) for a in args])


def pixels_like(picture: np.ndarray, colour: tuple, tol: float = 0.12) -> np.ndarray:
    """Where a picture shows ``colour`` blended over grey (hue match: channel differences preserved)."""
    rgb = picture[..., :3]
    grey = rgb.mean(axis=-1, keepdims=True)
    want = np.asarray(colour) - np.mean(colour)
    return (np.abs((rgb - grey) / 0.55 - want) < 0.3).all(axis=-1) & (np.abs(rgb - grey).max(axis=-1) > tol)


def axes_pixels(fig, index: int = 0) -> np.ndarray:
    """RGB (0-1) of the drawn figure inside axes ``index`` (row 0 at the top)."""
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    box = fig.axes[index].get_window_extent()
    top = picture.shape[0] - int(box.y1)
    return picture[top + 2 : top + int(box.height) - 2, int(box.x0) + 2 : int(box.x1) - 2]


def test_sub11_errors_in_figure6_colours(lumbar_dir, tmp_path):
    image = read_volume(lumbar_dir / "sub11_T2w.nii.gz")
    truth = read_volume(lumbar_dir / "sub11_discs.nii.gz", kind="label").array
    pred = np.roll(truth, 3, axis=0)  # native axis 0 runs superior -> inferior: discs moved 3 mm down
    out = write_overlay(tmp_path / "sub11.png", image, pred, truth, subject="sub11")
    height, width = matplotlib.image.imread(out).shape[:2]
    assert 300 < width < 2000 and 300 < height < 2000
    picture = axes_pixels(overlay_figure(image, pred, truth))
    rows = {name: np.nonzero(pixels_like(picture, c))[0] for name, c in (("tp", TP), ("fn", FN), ("fp", FP))}
    assert all(len(r) > 100 for r in rows.values()), {k: len(v) for k, v in rows.items()}
    one = np.where(truth == 3, truth, 0)  # one disc, moved down: missed (green) band above extra (red) band
    picture = axes_pixels(overlay_figure(image, np.roll(one, 3, axis=0), one))
    rows = {name: np.nonzero(pixels_like(picture, c))[0] for name, c in (("tp", TP), ("fn", FN), ("fp", FP))}
    assert rows["fn"].mean() + 2 < rows["tp"].mean() < rows["fp"].mean() - 2


def test_superior_up_anterior_left_in_any_orientation():
    # axes: P, I, L (no axis in RAS order); marker at the most superior and most anterior corner
    affine = np.array([[0, 0, -2.0, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
    array = np.zeros((40, 40, 5), np.float32)
    array[0:8, 0:8, :] = 1000.0
    pred = np.zeros(array.shape, np.uint8)
    pred[20:24, 15:20, 1:4] = 1
    picture = axes_pixels(overlay_figure(Volume(array, affine), pred))
    bright = np.argwhere(picture.min(axis=-1) > 0.9)
    assert len(bright)
    assert (bright.max(axis=0) < 0.3 * np.array(picture.shape[:2])).all()  # only in the top-left corner


def test_levels_legend_and_chosen_slices(lumbar_dir):
    image = read_volume(lumbar_dir / "sub11_T2w.nii.gz")
    truth = read_volume(lumbar_dir / "sub11_discs.nii.gz", kind="label").array
    fig = overlay_figure(image, truth, slices=[20, 33], subject="sub11")
    assert [ax.get_title() for ax in fig.axes] == ["sagittal slice 20", "sagittal slice 33"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [text.split()[0] for text in labels] == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert labels[0] == f"L1-L2  {(truth == 5).sum() * image.voxel_volume / 1000:.2f} cm\u00b3"  # its volume
    with pytest.raises(InputError, match="outside"):
        overlay_figure(image, truth, slices=[67])


def test_cli_with_truth_and_errors(lumbar_dir, tmp_path, capsys):
    image, truth = lumbar_dir / "sub11_T2w.nii.gz", lumbar_dir / "sub11_discs.nii.gz"
    out = tmp_path / "qc.png"
    assert cli("overlay", image, truth, truth, "-o", out, "--slices", "30,31") == 0
    assert matplotlib.image.imread(out).shape[1] > 700  # two panels
    small = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), np.eye(4)), small)
    for args in (
        (image, small, "-o", tmp_path / "a.png"),
        (image, truth, "-o", tmp_path / "a.txt"),
        (image, truth, "-o", tmp_path / "a.png", "--slices", "99"),
        (image, truth, "-o", truth),
        (image, tmp_path / "missing.nii.gz", "-o", tmp_path / "a.png"),
    ):
        assert cli("overlay", *args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("discnet overlay: error:") and "\n" not in err, err
    assert not (tmp_path / "a.png").exists()


def test_pred_and_truth_named_as_in_evaluate(lumbar_dir, tmp_path, capsys):
    image, truth = lumbar_dir / "sub11_T2w.nii.gz", lumbar_dir / "sub11_discs.nii.gz"
    named, placed = tmp_path / "named.png", tmp_path / "placed.png"
    assert cli("overlay", image, "--pred", truth, "--truth", truth, "-o", named, "--slices", "30") == 0
    assert cli("overlay", image, truth, truth, "-o", placed, "--slices", "30") == 0
    assert np.array_equal(matplotlib.image.imread(named), matplotlib.image.imread(placed))
    for args in ((image, truth, "--pred", truth), (image,)):
        assert cli("overlay", *args, "-o", tmp_path / "b.png") == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("discnet overlay: error:") and "\n" not in err, err


#: Machado, Oliveira & Fernandes 2009 (severity 1.0) colour-vision deficiency matrices, applied to RGB.
CVD = {
    "normal": np.eye(3),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]]
    ),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
}


@pytest.mark.parametrize("vision", list(CVD))
def test_level_colours_stay_apart_for_colour_blind_readers(vision):
    from itertools import combinations

    from discnet.inference.qc import LEVEL_COLOURS

    seen = np.clip(np.asarray(LEVEL_COLOURS) @ CVD[vision].T, 0, 1)
    assert min(np.linalg.norm(a - b) for a, b in combinations(seen, 2)) > 0.18  # tab10's blue/cyan: 0.04


def test_overlay_montage_spans_the_disc_column(lumbar_dir, tmp_path):
    image, truth = lumbar_dir / "sub11_T2w.nii.gz", lumbar_dir / "sub11_discs.nii.gz"
    out = tmp_path / "m.png"
    assert cli("overlay", image, truth, "-o", out, "--montage", "5") == 0
    height, width = matplotlib.image.imread(out).shape[:2]
    assert width > 4 * height  # five panels side by side (one panel is taller than wide)
