"""discnet agreement: hand-worked Dice, three perturbed sub11 "readers" (Convert3D oracle), summary, errors."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from discnet.cli import main
from discnet.errors import InputError
from discnet.evaluation.agreement import COLUMNS, agreement_rows, agreement_summary, agreement_table
from discnet.evaluation.metrics import dice

LEVELS = {1: "L5-S1", 2: "L4-L5", 3: "L3-L4", 4: "L2-L3", 5: "L1-L2"}


def _save(array: np.ndarray, path: Path, affine=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array, np.uint8), np.eye(4) if affine is None else affine), path)
    return path


def test_agreement_rows_hand_worked():
    a = np.array([[[1, 1, 1, 0, 2, 2, 0, 0]]])
    b = np.array([[[1, 1, 0, 0, 2, 2, 2, 3]]])  # level 3 only in b; level 5 in neither
    rows = agreement_rows(a, b, {1: "L5-S1", 2: "L4-L5", 3: "L3-L4", 5: "L1-L2"})
    assert [r["level"] for r in rows] == ["all", "L3-L4", "L4-L5", "L5-S1"]
    assert [r["dice"] for r in rows] == pytest.approx([2 * 4 / 11, 0.0, 0.8, 0.8])
    assert [(r["voxels_a"], r["voxels_b"]) for r in rows] == [(5, 6), (0, 1), (2, 3), (3, 2)]


def test_agreement_table_and_summary_small(tmp_path):
    truth = np.zeros((1, 2, 10), np.uint8)
    truth[0, :, 0:4], truth[0, :, 6:10] = 1, 2  # 8 voxels each
    b, c = truth.copy(), truth.copy()
    b[0, 0, 0:2] = 0  # b misses 2 voxels of L5-S1
    c[0, :, 4] = 1  # c adds 2 voxels to L5-S1
    readers = {}
    for name, array in (("A", truth), ("B", b), ("C", c)):
        readers[name] = {"s1": _save(array, tmp_path / name / "s1_discs.nii.gz")}
    readers["C"]["s2"] = _save(c, tmp_path / "C" / "s2_discs.nii.gz")  # only C has s2: no pair, no row
    table = agreement_table(readers, {1: "L5-S1", 2: "L4-L5"})
    assert table.columns.tolist() == COLUMNS and set(table["subject"]) == {"s1"}
    l51 = table[table["level"] == "L5-S1"].set_index(["reader_a", "reader_b"])["dice"]
    assert l51.to_dict() == pytest.approx({("A", "B"): 12 / 14, ("A", "C"): 16 / 18, ("B", "C"): 12 / 16})
    whole = table[table["level"] == "all"]["dice"].to_numpy()
    assert whole == pytest.approx([28 / 30, 32 / 34, 28 / 32])
    summary = agreement_summary(table).set_index("level")
    assert summary.index.tolist() == ["all", "L4-L5", "L5-S1"]
    assert summary.loc["all", "n"] == 3 and summary.loc["all", "mean"] == pytest.approx(whole.mean())
    assert summary.loc["all", "sd"] == pytest.approx(whole.std(ddof=1))
    assert (summary.loc["all", "min"], summary.loc["all", "max"]) == pytest.approx((28 / 32, 32 / 34))
    assert summary.loc["L4-L5", "mean"] == 1.0


def test_agreement_table_checks_grids(tmp_path):
    a = _save(np.ones((2, 2, 2)), tmp_path / "A" / "s1.nii.gz")
    b = _save(np.ones((2, 2, 2)), tmp_path / "B" / "s1.nii.gz", np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(InputError, match="geometry"):
        agreement_table({"A": {"s1": a}, "B": {"s1": b}}, LEVELS)
    with pytest.raises(InputError, match="at least two readers"):
        agreement_table({"A": {"s1": a}}, LEVELS)


@pytest.fixture(scope="module")
def sub11(lumbar_dir):
    image = nib.load(lumbar_dir / "sub11_discs.nii.gz")
    return np.asarray(image.dataobj), image


def _readers(truth: np.ndarray) -> dict[str, np.ndarray]:
    ben = truth.copy()
    ben[ndimage.binary_dilation(truth == 2) & (ben == 0)] = 2  # generous on L4-L5
    carl = truth.copy()
    carl[(truth == 4) & ~ndimage.binary_erosion(truth == 4)] = 0  # tight on L2-L3
    carl[(truth == 5) & (np.arange(truth.shape[2]) < 25)[None, None, :]] = 0  # stops early on L1-L2
    return {"anna": truth, "ben": ben, "carl": carl}


def test_three_readers_on_sub11(sub11, lumbar_dir, tmp_path, capsys, c3d_overlap):
    truth, image = sub11
    arrays = _readers(truth)
    folders = []
    for reader, array in arrays.items():
        _save(array, tmp_path / reader / "sub11_discs.nii.gz", image.affine)
        folders.append(str(tmp_path / reader))
    out = tmp_path / "agreement.csv"
    assert main(["agreement", "--readers", *folders, "--levels", str(lumbar_dir / "levels.csv"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out)
    assert len(table) == 3 * 6 and table["subject"].astype(str).eq("sub11").all()
    for row in table.itertuples():
        a, b = arrays[row.reader_a], arrays[row.reader_b]
        expected = dice(a, b) if row.level == "all" else dice(a == row.label, b == row.label)
        assert row.dice == pytest.approx(expected, abs=1e-12)
    lookup = table.set_index(["reader_a", "reader_b", "level"])["dice"]
    assert lookup[("anna", "ben", "L5-S1")] == 1.0 and lookup[("anna", "ben", "L4-L5")] < 1.0
    assert lookup[("anna", "carl", "L1-L2")] < lookup[("anna", "carl", "L3-L4")] == 1.0
    # per-level Dice equals Convert3D's -overlap on the multi-label maps
    for label, level in ((2, "L4-L5"), (5, "L1-L2")):
        *_, c3d_dice = c3d_overlap(
            tmp_path / "ben" / "sub11_discs.nii.gz", tmp_path / "carl" / "sub11_discs.nii.gz", label
        )
        assert lookup[("ben", "carl", level)] == pytest.approx(c3d_dice, abs=1e-6)
    whole = table[table["level"] == "all"]["dice"]
    assert f"all         3   {whole.mean():.3f}  {whole.std():.3f}  {whole.min():.3f}-{whole.max():.3f}" in printed
    assert "3 reader pair(s) x 1 subject(s)" in printed


def test_agreement_cli_errors(tmp_path, capsys):
    _save(np.ones((2, 2, 2)), tmp_path / "A" / "s1.nii.gz")
    assert main(["agreement", str(tmp_path / "A")]) == 2
    assert "at least two READER_DIR" in capsys.readouterr().err
    _save(np.ones((2, 2, 2)), tmp_path / "B" / "s2.nii.gz")
    assert main(["agreement", str(tmp_path / "A"), str(tmp_path / "B")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no subject is labelled by two readers" in err
    assert "(subjects found: A: s1; B: s2)" in err  # what each folder held


def test_readers_after_readers_or_bare_read_alike_and_not_both(tmp_path, capsys):
    for reader in ("A", "B"):
        _save(np.ones((2, 2, 2)), tmp_path / reader / "s1.nii.gz")
    folders = [str(tmp_path / "A"), str(tmp_path / "B")]
    tables = []
    for form in (["--readers", *folders], folders):
        out = tmp_path / f"agreement{len(tables)}.csv"
        assert main(["agreement", *form, "-o", str(out)]) == 0
        tables.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(*tables)
    capsys.readouterr()
    assert main(["agreement", folders[0], "--readers", folders[1], "-o", str(tmp_path / "x.csv")]) == 2
    assert "after --readers" in capsys.readouterr().err
