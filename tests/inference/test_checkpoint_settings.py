"""What prediction reads from a checkpoint and its run folder: the input preset and image size (stored,
else the run's config.yaml, else the flags), presets as training composes them, and the threshold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

import discnet.cli
from discnet.data.preprocess import input_config, input_presets
from discnet.errors import InputError
from discnet.inference.predict import load_models
from tests.inference.test_predict import save_checkpoint


def test_settings_from_run_config_then_flags(tmp_path):
    bare = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt", input=None, image_size=None)
    with pytest.raises(InputError, match="--input-preset"):
        load_models([bare])
    settings = load_models([bare], "raw", 48)[1]
    assert (settings.input, settings.image_size) == (input_presets()["raw"], 48)
    with pytest.raises(InputError, match="not 'raw'"):
        load_models([save_checkpoint(tmp_path / "full.ckpt")], "raw")
    config = {"input": {**dataclasses.asdict(input_presets()["augmented"]), "defaults": None}, "image_size": 64}
    OmegaConf.save(OmegaConf.create(config), tmp_path / "run" / "config.yaml")
    settings = load_models([bare])[1]
    assert (settings.input, settings.image_size) == (input_presets()["augmented"], 64)


@pytest.mark.parametrize("inside_hydra", [False, True])
def test_prediction_prepares_scans_as_the_training_config_composes_them(inside_hydra):
    from hydra import compose, initialize_config_dir

    from discnet.data.preprocess import CONF_DIR, preset_names

    assert preset_names() == ["augmented", "deleted_blanks", "raw", "stretched"]
    input_presets.cache_clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        presets = input_presets() if inside_hydra else None
        training = {name: compose(config_name="train", overrides=[f"input={name}"]).input for name in preset_names()}
    presets = presets or input_presets()
    for name in preset_names():
        assert input_config(training[name]) == presets[name], name


def _with_threshold(source: Path, out: Path, threshold) -> Path:
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint["hyper_parameters"]["threshold"] = threshold
    torch.save(checkpoint, out)
    return out


def test_predict_thresholds_at_the_checkpoints_own_threshold(tmp_path):
    from tests.test_bad_input import save_checkpoint

    plain = save_checkpoint(tmp_path / "plain.ckpt")
    strict = _with_threshold(plain, tmp_path / "strict.ckpt", 0.999)
    assert load_models([plain])[1].threshold == 0.5 and load_models([strict, strict])[1].threshold == 0.999
    with pytest.raises(InputError, match="different thresholds"):
        load_models([plain, strict])
    with pytest.raises(InputError, match="not a probability"):
        load_models([_with_threshold(plain, tmp_path / "bad.ckpt", 1.5)])
    scan = tmp_path / "scan.nii.gz"
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.normal(100, 30, (6, 32, 32)).astype(np.float32), np.eye(4)), scan)
    voxels = {}
    for ckpt in (plain, strict):
        out = tmp_path / ckpt.stem
        assert (
            discnet.cli.main(["predict", "--ckpt", str(ckpt), str(scan), "--out-dir", str(out), "--no-orphan-removal"])
            == 0
        )
        voxels[ckpt.stem] = int((nib.load(out / "scan_discs.nii.gz").get_fdata() > 0).sum())
    assert voxels["strict"] < voxels["plain"], voxels


def test_predict_names_discs_by_the_levels_the_checkpoint_records(tmp_path, monkeypatch):
    from tests.inference.test_predict import fake_network, synthetic

    scan, truth = synthetic(tmp_path)
    fake_network(monkeypatch, truth)
    recorded = {"L5-S1": 11, "L4-L5": 12, "L3-L4": 13, "L2-L3": 14, "L1-L2": 15}
    ckpt = save_checkpoint(tmp_path / "named.ckpt", levels=recorded)
    (tmp_path / "levels.csv").write_text("label,level\n1,L5-S1\n2,L4-L5\n3,L3-L4\n4,L2-L3\n5,L1-L2\n")
    found = {}
    for name, extra in (("stored", []), ("flag", ["--levels", str(tmp_path / "levels.csv")])):
        args = ["predict", "--ckpt", str(ckpt), str(scan), "--out-dir", str(tmp_path / name), "--expected-discs", "3"]
        assert discnet.cli.main(args + extra) == 0
        found[name] = set(np.unique(nib.load(tmp_path / name / "scan_discs.nii.gz").get_fdata()).astype(int))
    assert found == {"stored": {0, 11, 12, 13}, "flag": {0, 1, 2, 3}}  # --levels overrides what is stored


@pytest.mark.parametrize(
    "levels, problem",
    [
        ({"L5-S1": 0}, "not a distinct value"),
        ({"L5-S1": 1, "L4-L5": 1}, "not a distinct value"),
        ({"S1-S2": 1}, "unknown level"),
        ([1, 2], "not a mapping"),
        ({}, "not a mapping"),
    ],
)
def test_bad_recorded_levels_are_refused(tmp_path, levels, problem):
    with pytest.raises(InputError, match=problem):
        load_models([save_checkpoint(tmp_path / "bad.ckpt", levels=levels)])


def test_ensemble_members_must_name_levels_alike_unless_levels_are_given(tmp_path):
    a = save_checkpoint(tmp_path / "a.ckpt", levels={"L5-S1": 1})
    b = save_checkpoint(tmp_path / "b.ckpt", levels={"L5-S1": 2})
    with pytest.raises(InputError, match="names levels"):
        load_models([a, b])
    assert load_models([a, b], levels={3: "L5-S1"})[1].levels == {3: "L5-S1"}


def test_predict_keeps_the_surplus_discs_the_checkpoint_records_unless_told(tmp_path, monkeypatch, capsys):
    from tests.inference.test_predict import fake_network, synthetic

    scan, truth = synthetic(tmp_path)
    labels = truth.array.copy()
    labels[4:16, 8:10, 2:7] = 3  # the superior slab (rows 8-13) is the largest (360 voxels) ...
    labels[4:16, 41, 2:7] = 0  # ... the inferior one (rows 38-40) the smallest (180); expect two discs
    fake_network(monkeypatch, type(truth)(labels, truth.affine))
    kept = {}
    for name, recorded, flag in (("anchor", "anchor", []), ("told", "anchor", ["--surplus", "largest"]),
                                 ("old", None, [])):  # fmt: skip
        ckpt = save_checkpoint(tmp_path / f"{name}.ckpt", surplus=recorded)
        args = ["predict", "--ckpt", str(ckpt), str(scan), "--out-dir", str(tmp_path / name), "--expected-discs", "2"]
        assert discnet.cli.main(args + flag) == 0
        written = np.asarray(nib.load(tmp_path / name / "scan_discs.nii.gz").dataobj)
        kept[name] = (bool(written[:, 8:14].any()), bool(written[:, 38:41].any()))
    assert kept == {"anchor": (False, True), "told": (True, False), "old": (True, False)}
    assert "kept the 2 nearest the inferior end" in capsys.readouterr().err


def test_a_bad_recorded_surplus_or_members_that_disagree_are_refused(tmp_path):
    with pytest.raises(InputError, match="records surplus 'smallest'"):
        load_models([save_checkpoint(tmp_path / "bad.ckpt", surplus="smallest")])
    a = save_checkpoint(tmp_path / "a.ckpt", surplus="anchor")
    with pytest.raises(InputError, match="keeps the largest discs of a surplus"):
        load_models([a, save_checkpoint(tmp_path / "b.ckpt")])
    assert load_models([a, a])[1].surplus == "anchor"
    assert load_models([a, save_checkpoint(tmp_path / "b.ckpt")], surplus="largest")[1].surplus == "largest"
    assert load_models([save_checkpoint(tmp_path / "bad.ckpt", surplus="smallest")], surplus="anchor")[1].surplus


def test_predict_applies_the_test_time_augmentation_the_checkpoint_records_unless_told(tmp_path):
    from tests.inference.test_predict import synthetic

    scan, _ = synthetic(tmp_path)
    members = {}
    for name, recorded, flag in (("flip", "flip", []), ("told", "flip", ["--tta", "none"]), ("old", None, [])):
        ckpt = save_checkpoint(tmp_path / f"{name}.ckpt", tta=recorded)
        args = ["predict", "--ckpt", str(ckpt), str(scan), "--out-dir", str(tmp_path / name)]
        assert discnet.cli.main(args + flag) == 0
        table = tmp_path / name / "members.csv"  # written for an ensemble: here, of one network's mirrors
        members[name] = len(pd.read_csv(table)) if table.is_file() else 1
    assert members == {"flip": 2, "told": 1, "old": 1}


def test_a_bad_recorded_tta_or_members_that_disagree_are_refused(tmp_path):
    with pytest.raises(InputError, match="records test-time augmentation 'rotate'"):
        load_models([save_checkpoint(tmp_path / "bad.ckpt", tta="rotate")])
    a = save_checkpoint(tmp_path / "a.ckpt", tta="flip")
    with pytest.raises(InputError, match="is predicted with --tta none, but .* with --tta flip"):
        load_models([a, save_checkpoint(tmp_path / "b.ckpt")])
    assert load_models([a, save_checkpoint(tmp_path / "b.ckpt")], tta="none")[1].tta == "none"
