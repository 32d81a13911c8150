"""``--spacing`` on every verb that reads images: TIFF stacks without spacing tags get their voxel size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

import discnet.cli
from discnet.io import read_volume
from tests.test_bad_input import save_checkpoint

SPACING = ("3.0", "0.5", "0.6")  # between pages (left -> right), rows (superior -> inferior), columns
SHAPE = (6, 40, 30)  # pages, rows, columns


def _stacks(root: Path) -> dict[str, Path]:
    """An untagged image stack and label stack (two discs: label 2 = L4-L5 above label 1 = L5-S1)."""
    labels = np.zeros(SHAPE, np.uint8)
    labels[1:5, 10:14, 8:22] = 2
    labels[1:5, 26:30, 8:22] = 1
    image = np.random.default_rng(0).normal(100, 5, SHAPE).astype(np.float32) + 50 * labels
    for reader in ("reader1", "reader2"):
        (root / reader).mkdir()
        tifffile.imwrite(root / reader / "sub1.tif", labels)  # no ImageJ tags, no resolution
    tifffile.imwrite(root / "sub1_T2w.tif", image)
    return {"image": root / "sub1_T2w.tif", "labels": root / "reader1" / "sub1.tif", "other": root / "reader2"}


COMMANDS = {
    "volumes": lambda f, out: ["volumes", str(f["labels"]), "-o", str(out / "volumes.csv")],
    "evaluate": lambda f, out: [
        "evaluate",
        "--pred",
        str(f["labels"]),
        "--truth",
        str(f["other"] / "sub1.tif"),
        "-o",
        str(out / "m.csv"),
    ],
    "overlay": lambda f, out: ["overlay", str(f["image"]), str(f["labels"]), "-o", str(out / "qc.png")],
    "measure": lambda f, out: ["measure", str(f["labels"]), "--images", str(f["image"]), "--out-dir", str(out)],
    "agreement": lambda f, out: ["agreement", str(f["labels"].parent), str(f["other"]), "-o", str(out / "a.csv")],
    "predict": lambda f, out: [
        "predict",
        "--ckpt",
        str(out.parent / "model.ckpt"),
        str(f["image"]),
        "--out-dir",
        str(out),
    ],
}


@pytest.mark.parametrize("verb", sorted(COMMANDS))
def test_every_image_verb_takes_the_spacing_of_untagged_tiff_stacks(verb, tmp_path, capsys):
    files = _stacks(tmp_path)
    save_checkpoint(tmp_path / "model.ckpt")
    without, given = tmp_path / "without", tmp_path / "given"
    without.mkdir(), given.mkdir()
    capsys.readouterr()
    assert discnet.cli.main(COMMANDS[verb](files, without)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no voxel spacing" in err[0] and "--spacing" in err[0]
    assert discnet.cli.main([*COMMANDS[verb](files, given), "--spacing", *SPACING]) == 0, capsys.readouterr().err
    if verb == "volumes":
        table = pd.read_csv(given / "volumes.csv")
        assert list(table["level"]) == ["L4-L5", "L5-S1"]
        assert np.allclose(table["volume_mm3"], 4 * 4 * 14 * 3.0 * 0.5 * 0.6)
    if verb == "predict":
        mask = read_volume(next(given.glob("*_discs.nii.gz")), kind="label")
        assert sorted(mask.spacing) == pytest.approx(sorted(float(s) for s in SPACING))


def test_tags_win_over_the_given_spacing(tmp_path):
    from discnet.io.tiff import given_spacing

    tifffile.imwrite(
        tmp_path / "tagged.tif",
        np.zeros(SHAPE, np.uint8),
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"spacing": 4.0, "unit": "mm"},
    )
    with given_spacing((1.0, 1.0, 1.0)):
        assert sorted(read_volume(tmp_path / "tagged.tif").spacing) == [0.5, 0.5, 4.0]
