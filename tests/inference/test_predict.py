"""``discnet predict`` and :mod:`discnet.inference.predict`: exact output geometry, the orientation round trip end to
end, ensembles, disc volumes, skip-existing, orphan removal and one-line errors."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

import discnet.cli
from discnet.data.preprocess import InputConfig, input_presets
from discnet.data.slices import to_slices
from discnet.evaluation.volumes import COLUMNS as VOLUME_COLUMNS
from discnet.evaluation.volumes import label_counts, volume_rows
from discnet.inference.predict import load_models, predict_volume
from discnet.io import Volume, read_levels, read_volume, to_canonical, write_like
from discnet.models.checkpoint import load_net
from discnet.training.segmenter import DiscSegmenter

NET = {"base_filters": 4, "depth": 2}


def save_checkpoint(path: Path, net: dict = NET, seed: int = 0, **hyper) -> Path:
    """A tiny untrained discnet checkpoint; ``hyper`` overrides the recorded input/image_size (None drops).

    The head is biased towards background so that the untrained model predicts small masks (fast).
    """
    torch.manual_seed(seed)
    model = DiscSegmenter(net=net, optim={})
    model.net.head.bias.data = torch.tensor([3.0, -3.0])
    stored = {"net": net, "input": dataclasses.asdict(InputConfig()), "image_size": 32, **hyper}
    path.parent.mkdir(parents=True, exist_ok=True)
    hyper_parameters = {k: v for k, v in stored.items() if v is not None}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hyper_parameters}, path)
    return path


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a small shared machine more threads make these tiny networks far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.ckpt")


def cli(*args) -> int:
    return discnet.cli.main([str(a) for a in args])


def fake_network(monkeypatch, truth: Volume) -> None:
    """Make the "networks" answer ``truth``'s disc mask as sagittal slices (probability 1 on discs)."""
    slices = to_slices(to_canonical(truth)[0] > 0).astype(np.float32)

    def probability(nets, images, native_shape, *args, **kwargs):
        assert images.shape[0] == slices.shape[0] and tuple(native_shape) == slices.shape[1:]
        return slices.copy()

    monkeypatch.setattr("discnet.inference.predict.disc_probability", probability)


def synthetic(tmp_path: Path, orphan: bool = False) -> tuple[Path, Volume]:
    """A small non-RAS scan (axes P, I, L; 0.8 x 0.5 x 3 mm = 1.2 mm^3) with three disc slabs."""
    affine = np.array([[0, 0, -3.0, 10], [-0.8, 0, 0, 5], [0, -0.5, 0, 40], [0, 0, 0, 1]])
    shape = (20, 48, 9)
    rng = np.random.default_rng(0)
    image = Volume(rng.normal(100, 10, shape).astype(np.float32), affine)
    labels = np.zeros(shape, np.uint8)
    for value, rows in ((1, slice(38, 42)), (2, slice(24, 28)), (3, slice(10, 14))):  # axis 1 runs inferior
        labels[4:16, rows, 2:7] = value
    if orphan:  # 4 voxels on the next slice, above the L5-S1 disc: 3D-attached, an orphan by size
        labels[6:8, 39:41, 7] = 1
    path = tmp_path / "scan.nii.gz"
    write_like(image.array, image, path, dtype=np.float32)
    return path, Volume(labels, affine)


def test_nifti_and_mha_outputs_keep_the_input_geometry(lumbar_dir, ckpt, tmp_path):
    src = lumbar_dir / "sub11_T2w.nii.gz"
    nii = tmp_path / "in" / "copy.nii"
    nii.parent.mkdir()
    nib.save(nib.load(src), nii)
    mha = tmp_path / "in" / "itk.mha"
    sitk.WriteImage(sitk.ReadImage(str(src)), str(mha))
    out = tmp_path / "out"
    assert cli("predict", "--ckpt", ckpt, src, nii, mha, "--out-dir", out, "--same-format") == 0
    for image, mask in ((src, out / "sub11_T2w_discs.nii.gz"), (nii, out / "copy_discs.nii")):
        a, b = nib.load(image), nib.load(mask)
        assert b.shape == a.shape and b.get_data_dtype() == np.uint8
        assert np.array_equal(b.affine, a.affine)
        for form in ("qform", "sform"):
            assert int(b.header[f"{form}_code"]) == int(a.header[f"{form}_code"])
            assert np.array_equal(getattr(b, f"get_{form}")(), getattr(a, f"get_{form}")())
    a, b = sitk.ReadImage(str(mha)), sitk.ReadImage(str(out / "itk_discs.mha"))
    assert (b.GetSize(), b.GetSpacing(), b.GetOrigin(), b.GetDirection()) == (
        a.GetSize(),
        a.GetSpacing(),
        a.GetOrigin(),
        a.GetDirection(),
    )


def test_ground_truth_round_trip_end_to_end(lumbar_dir, ckpt, tmp_path, monkeypatch):
    """A "network" answering sub11's true discs on its sagittal slices must give back the true label map:
    reorientation, slicing, resizing, orphan removal, level naming and writing all in the I,P,R file."""
    truth = read_volume(lumbar_dir / "sub11_discs.nii.gz", kind="label")
    fake_network(monkeypatch, truth)
    args = [
        "--ckpt",
        ckpt,
        lumbar_dir / "sub11_T2w.nii.gz",
        "--out-dir",
        tmp_path,
        "--levels",
        lumbar_dir / "levels.csv",
    ]
    assert cli("predict", *args, "--probabilities") == 0
    written = nib.load(tmp_path / "sub11_T2w_discs.nii.gz")
    assert np.array_equal(np.asarray(written.dataobj), truth.array)
    prob = np.asarray(nib.load(tmp_path / "sub11_T2w_prob.nii.gz").dataobj)
    assert prob.dtype == np.float32 and np.array_equal(prob > 0.5, truth.array > 0)
    table = pd.read_csv(tmp_path / "volumes.csv")
    counts = {v: int((truth.array == v).sum()) for v in range(1, 6)}
    assert table["level"].tolist() == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    assert dict(zip(table["label"], table["voxels"], strict=True)) == counts


def test_predict_volume_is_pure_and_native(lumbar_dir):
    image = read_volume(lumbar_dir / "sub11_T2w.nii.gz")
    truth = read_volume(lumbar_dir / "sub11_discs.nii.gz", kind="label")
    before = image.array.copy()
    slices = to_slices(to_canonical(truth)[0] > 0).astype(np.float32)
    labels, prob, info = predict_volume(
        [],
        image,
        input_presets()["stretched"],
        32,
        levels=read_levels(lumbar_dir / "levels.csv"),
        probability_fn=lambda *a: slices,
    )
    assert np.array_equal(labels, truth.array) and prob.shape == image.shape
    assert info["found"] == 5 and info["warning"] is None and info["orphan_voxels"] == 0
    assert np.array_equal(image.array, before)


def test_ensemble_averages_probabilities(tmp_path):
    scan = Volume(np.random.default_rng(1).random((6, 24, 20), np.float32), np.diag([3.0, 0.5, 0.5, 1.0]))
    paths = [save_checkpoint(tmp_path / f"{s}.ckpt", seed=s) for s in (1, 2)]
    nets, settings = load_models(paths)
    cfg, size = settings.input, settings.image_size
    assert size == 32 and cfg == InputConfig()
    single = [predict_volume([n], scan, cfg, size, expected_discs=1)[1] for n in nets]
    both = predict_volume(nets, scan, cfg, size, expected_discs=1)[1]
    assert not np.allclose(single[0], single[1])
    np.testing.assert_allclose(both, (single[0] + single[1]) / 2, atol=1e-5)


def test_disc_volumes_in_mm3(tmp_path, ckpt, monkeypatch):
    path, truth = synthetic(tmp_path)
    fake_network(monkeypatch, truth)
    assert cli("predict", "--ckpt", ckpt, path, "--out-dir", tmp_path / "out", "--expected-discs", "3", "--qc") == 0
    assert (tmp_path / "out" / "scan_qc.png").stat().st_size > 1000
    table = pd.read_csv(tmp_path / "out" / "volumes.csv")
    assert table.columns.tolist() == VOLUME_COLUMNS  # as discnet volumes writes them
    np.testing.assert_allclose(table["volume_cm3"], 240 * 1.2 / 1000)
    assert table["level"].tolist() == ["L3-L4", "L4-L5", "L5-S1"]  # superior first; default values 3, 2, 1
    assert table["label"].tolist() == [3, 2, 1] and (table["subject"] == "scan").all()
    assert (table["voxels"] == 12 * 4 * 5).all()
    np.testing.assert_allclose(table["volume_mm3"], 240 * 1.2)
    rows = volume_rows(label_counts(truth.array), 1.2, {1: "L5-S1", 2: "L4-L5", 3: "L3-L4"})
    assert rows[-1] == {"level": "L5-S1", "label": 1, "voxels": 240, "volume_mm3": 288.0, "volume_cm3": 0.288}


def test_skip_existing_keeps_outputs_and_rereads_volumes(tmp_path, ckpt, monkeypatch):
    path, truth = synthetic(tmp_path)
    fake_network(monkeypatch, truth)
    out = tmp_path / "out"
    args = ["predict", "--ckpt", ckpt, path, "--out-dir", out, "--expected-discs", "3"]
    assert cli(*args) == 0
    mask = out / "scan_discs.nii.gz"
    edited = read_volume(mask, kind="label")
    changed = edited.array.copy()
    changed[changed == 3] = 0  # as if the user had edited the mask
    write_like(changed, read_volume(path), mask)
    stamp = mask.stat().st_mtime_ns
    assert cli(*args, "--skip-existing") == 0
    assert mask.stat().st_mtime_ns == stamp
    assert pd.read_csv(out / "volumes.csv")["level"].tolist() == ["L4-L5", "L5-S1"]
    assert cli(*args) == 0  # without the flag the scan is segmented again
    assert pd.read_csv(out / "volumes.csv")["level"].tolist() == ["L3-L4", "L4-L5", "L5-S1"]


def test_second_predict_merges_volumes_and_a_scan_without_discs_gets_a_row(tmp_path, ckpt, monkeypatch):
    path, truth = synthetic(tmp_path)
    other = tmp_path / "other.nii.gz"
    shutil.copy(path, other)
    out = tmp_path / "out"
    fake_network(monkeypatch, truth)
    assert cli("predict", "--ckpt", ckpt, path, "--out-dir", out, "--expected-discs", "3") == 0
    fake_network(monkeypatch, truth.with_array(np.zeros_like(truth.array)))  # the second scan: nothing found
    assert cli("predict", "--ckpt", ckpt, other, "--out-dir", out, "--expected-discs", "3") == 0
    table = pd.read_csv(out / "volumes.csv")
    assert table["subject"].tolist() == ["scan"] * 3 + ["other"]
    assert table.iloc[-1][["level", "voxels", "note"]].tolist() == ["none", 0, "no disc found"]
    fake_network(monkeypatch, truth.with_array(np.where(truth.array == 3, 0, truth.array)))
    assert (
        cli("predict", "--ckpt", ckpt, path, "--out-dir", out, "--expected-discs", "3") == 0
    )  # scan again: newest wins
    table = pd.read_csv(out / "volumes.csv")
    assert table["subject"].tolist() == ["other", "scan", "scan"]
    assert not table.duplicated(["subject", "level"]).any()


def test_qc_is_a_montage_across_the_disc_column_with_volumes(tmp_path, ckpt, monkeypatch):
    path, truth = synthetic(tmp_path)
    lateral = truth.array.copy()
    lateral[4:10, 24:28, 7] = 2  # a false positive on a lateral slice beyond the discs, attached to L4-L5
    fake_network(monkeypatch, truth.with_array(lateral))
    seen = {}

    def spy(out, image, labels, **kwargs):
        from discnet.inference.qc import overlay_figure

        figure = overlay_figure(image, labels, **kwargs)
        seen["titles"] = [ax.get_title() for ax in figure.axes]
        seen["legend"] = [t.get_text() for t in figure.legends[0].get_texts()]
        return out

    monkeypatch.setattr("discnet.inference.qc.write_overlay", spy)
    args = ["predict", "--ckpt", ckpt, path, "--out-dir", tmp_path / "out", "--expected-discs", "3", "--qc"]
    assert cli(*args, "--no-orphan-removal") == 0
    assert len(seen["titles"]) >= 5  # file slices 2..7 (RAS x 6..1: the file's third axis runs right to left)
    assert seen["titles"][0] == "sagittal slice 1" and seen["titles"][-1] == "sagittal slice 6"
    assert seen["legend"][0] == "L3-L4  0.29 cm\u00b3"  # 240 voxels x 1.2 mm^3


def test_every_skipped_folder_entry_is_reported(tmp_path, ckpt, monkeypatch, capsys):
    path, truth = synthetic(tmp_path / "scans")
    series = tmp_path / "scans" / "series1"
    series.mkdir()
    image = sitk.GetImageFromArray(np.zeros((3, 4, 4), np.int16))
    for k in range(3):
        part = image[:, :, k]
        for tag, value in {"0020|000e": "1.2.3", "0020|0013": str(k + 1), "0008|0060": "MR"}.items():
            part.SetMetaData(tag, value)
        sitk.WriteImage(part, str(series / f"{k}.dcm"))
    (tmp_path / "scans" / "notes.txt").write_text("x")
    fake_network(monkeypatch, truth)
    assert (
        cli("predict", "--ckpt", ckpt, tmp_path / "scans", "--out-dir", tmp_path / "out", "--expected-discs", "3") == 0
    )
    out = capsys.readouterr().out
    assert f"note: skipped {series} (a DICOM series folder: give it as its own INPUT)" in out
    assert f"note: skipped {tmp_path / 'scans' / 'notes.txt'} (not an image file)" in out


def test_orphan_removal_on_by_default(tmp_path, ckpt, monkeypatch):
    path, truth = synthetic(tmp_path, orphan=True)
    fake_network(monkeypatch, truth)
    voxels = {}
    for flag in ([], ["--no-orphan-removal"]):
        out = tmp_path / f"out{len(flag)}"
        assert cli("predict", "--ckpt", ckpt, path, "--out-dir", out, "--expected-discs", "3", *flag) == 0
        table = pd.read_csv(out / "volumes.csv").set_index("level")
        voxels[bool(flag)] = table.loc["L5-S1", "voxels"]
    assert voxels == {False: 240, True: 244}


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("predict", "--help")
    assert exit_.value.code == 0 and "--ckpt" in capsys.readouterr().out


def bad_checkpoints(tmp_path: Path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    other = save_checkpoint(tmp_path / "other.ckpt")
    data = torch.load(other, weights_only=True)
    data["hyper_parameters"]["net"] = {"base_filters": 8, "depth": 2}
    torch.save(data, other)
    return {"corrupt": corrupt, "other": other, "size": save_checkpoint(tmp_path / "size.ckpt", image_size=64)}


def test_bad_input_is_one_line_and_exit_2(tmp_path, ckpt, capsys):
    image = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.eye(4)), image)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    csv = tmp_path / "subjects.csv"
    csv.write_text("subject,image\n../../x,scan.nii.gz\n")
    bad = bad_checkpoints(tmp_path)
    cases = {
        "missing input": (ckpt, tmp_path / "nope.nii.gz", tmp_path / "o1"),
        "corrupt checkpoint": (bad["corrupt"], image, tmp_path / "o2"),
        "other architecture": (bad["other"], image, tmp_path / "o3"),
        "mixed ensemble": ([ckpt, bad["size"]], image, tmp_path / "o4"),
        "output is an input": (ckpt, image, image),
        "unwritable output": (ckpt, image, blocker / "out"),
        "escaping subject": (ckpt, csv, tmp_path / "o5"),
    }
    for case, (models, source, out) in cases.items():
        models = models if isinstance(models, list) else [models]
        ckpts = [a for m in models for a in ("--ckpt", m)]
        assert cli("predict", *ckpts, source, "--out-dir", out) == 2, case
        err = capsys.readouterr().err.strip()
        assert err.startswith("discnet predict: error:") and "\n" not in err, (case, err)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))
    assert load_net(ckpt)[0].base_filters == 4


def test_output_never_overwrites_an_input(tmp_path, ckpt, capsys):
    source = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.eye(4)), source)
    shutil.copy(source, tmp_path / "a_discs.nii.gz")
    assert cli("predict", "--ckpt", ckpt, source, tmp_path / "a_discs.nii.gz", "--out-dir", tmp_path) == 2
    assert "equals an input" in capsys.readouterr().err


def test_disc_count_warning_is_one_line(tmp_path, ckpt, monkeypatch, capsys):
    path, truth = synthetic(tmp_path)
    fake_network(monkeypatch, truth)
    assert cli("predict", "--ckpt", ckpt, path, "--out-dir", tmp_path / "out") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert lines == [
        "warning: scan: found 3 disc components, expected 5: named them L3-L4..L5-S1 from the inferior end "
        "(touching discs merge into one; --anchor superior counts from the other end)"
    ]
    assert cli("predict", "--ckpt", ckpt, path, "--out-dir", tmp_path / "up", "--anchor", "superior") == 0
    assert pd.read_csv(tmp_path / "up" / "volumes.csv")["level"].tolist() == ["L1-L2", "L2-L3", "L3-L4"]


def test_surplus_discs_keep_the_largest_or_the_anchor_end(tmp_path, ckpt, monkeypatch, capsys):
    path, truth = synthetic(tmp_path)
    labels = truth.array.copy()
    labels[4:16, 8:10, 2:7] = 3  # the superior slab (rows 8-13) is the largest (360 voxels) ...
    labels[4:16, 41, 2:7] = 0  # ... the inferior one (rows 38-40) the smallest (180); expect two discs
    fake_network(monkeypatch, Volume(labels, truth.affine))
    low, big = tmp_path / "low", tmp_path / "big"
    assert cli("predict", "--ckpt", ckpt, path, "--out-dir", big, "--expected-discs", "2") == 0
    assert "kept the 2 largest, dropped 1 (180 voxels; --surplus anchor" in capsys.readouterr().err
    assert cli("predict", "--ckpt", ckpt, path, "--out-dir", low, "--expected-discs", "2", "--surplus", "anchor") == 0
    assert "kept the 2 nearest the inferior end, dropped 1 (360 voxels; --surplus largest" in capsys.readouterr().err
    for out, kept, dropped in ((low, slice(38, 41), slice(8, 14)), (big, slice(8, 14), slice(38, 41))):
        written = np.asarray(nib.load(out / "scan_discs.nii.gz").dataobj)
        assert written[:, kept].any() and not written[:, dropped].any() and written[:, 24:28].any()
        assert pd.read_csv(out / "volumes.csv")["level"].tolist() == ["L4-L5", "L5-S1"]
