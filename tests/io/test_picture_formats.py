"""Every verb that writes a picture writes the format its name asks for (png, jpg, pdf, svg) or refuses
the name in one line."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import discnet.cli
from tests.test_bad_input import save_checkpoint

MAGIC = {"png": b"\x89PNG", "jpg": b"\xff\xd8\xff", "pdf": b"%PDF", "svg": b"<?xml"}


def _scan(root: Path) -> tuple[Path, Path]:
    labels = np.zeros((8, 24, 20), np.uint8)
    labels[2:6, 5:8, 4:14], labels[2:6, 14:17, 4:14] = 1, 2
    image = np.random.default_rng(0).normal(100, 5, labels.shape).astype(np.float32) + 40 * labels
    affine = np.diag([3.0, 1.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(image, affine), root / "scan.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), root / "scan_discs.nii.gz")
    return root / "scan.nii.gz", root / "scan_discs.nii.gz"


@pytest.mark.parametrize("fmt", sorted(MAGIC))
def test_overlay_and_predict_qc_write_the_format_asked(fmt, tmp_path):
    image, labels = _scan(tmp_path)
    out = tmp_path / f"overlay.{fmt}"
    assert discnet.cli.main(["overlay", str(image), str(labels), "-o", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC[fmt])
    ckpt = save_checkpoint(tmp_path / "model.ckpt")
    args = ["predict", "--ckpt", str(ckpt), str(image), "--out-dir", str(tmp_path / "pred"), "--qc", "--qc-format", fmt]
    assert discnet.cli.main(args) == 0
    assert (tmp_path / "pred" / f"scan_qc.{fmt}").read_bytes().startswith(MAGIC[fmt])


def test_a_picture_name_of_another_kind_is_refused_in_one_line(tmp_path, capsys):
    image, labels = _scan(tmp_path)
    assert discnet.cli.main(["overlay", str(image), str(labels), "-o", str(tmp_path / "qc.tif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a picture file name" in err[0] and ".svg" in err[0]
    assert not (tmp_path / "qc.tif").exists()


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_report_leaderboard_and_agreement_write_the_figure_format_asked(fmt, tmp_path):
    from tests.evaluation.test_volume_agreement import _write_tables

    table = tmp_path / "runs.csv"
    rows = [
        f"v{v},{s},s{j},{0.8 + 0.05 * v + 0.01 * s + 0.002 * j}" for v in range(2) for s in range(3) for j in range(3)
    ]
    table.write_text("version,seed,subject,dsc\n" + "\n".join(rows) + "\n")
    for verb in ("report", "leaderboard"):
        out = tmp_path / verb
        assert discnet.cli.main([verb, "--table", str(table), "--out-dir", str(out), "--figure-format", fmt]) == 0
        pictures = [p for p in out.iterdir() if p.suffix in (".png", f".{fmt}")]
        assert pictures and all(p.suffix == f".{fmt}" and p.read_bytes().startswith(MAGIC[fmt]) for p in pictures)
    pred, manual, _ = _write_tables(tmp_path)
    out = tmp_path / "agreement.csv"
    args = ["agreement", "--volumes", str(pred), str(manual), "-o", str(out), "--figure-format", fmt]
    assert discnet.cli.main(args) == 0
    assert (tmp_path / f"agreement_bland_altman.{fmt}").read_bytes().startswith(MAGIC[fmt])
    assert not (tmp_path / "agreement_bland_altman.png").exists()
