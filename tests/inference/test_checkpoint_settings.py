"""What prediction reads from a checkpoint and its run folder: the input preset and image size (stored,
else the run's config.yaml, else the flags), presets as training composes them, and the threshold."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import discnet.cli
from discnet.data.preprocess import input_presets
from discnet.errors import InputError
from discnet.inference.predict import input_config, load_models
from tests.inference.test_predict import save_checkpoint


def test_settings_from_run_config_then_flags(tmp_path):
    bare = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.ckpt", input=None, image_size=None)
    with pytest.raises(InputError, match="--input-preset"):
        load_models([bare])
    assert load_models([bare], "raw", 48)[1:] == (input_presets()["raw"], 48)
    with pytest.raises(InputError, match="not 'raw'"):
        load_models([save_checkpoint(tmp_path / "full.ckpt")], "raw")
    config = {"input": {**dataclasses.asdict(input_presets()["augmented"]), "defaults": None}, "image_size": 64}
    OmegaConf.save(OmegaConf.create(config), tmp_path / "run" / "config.yaml")
    assert load_models([bare])[1:] == (input_presets()["augmented"], 64)


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
    from discnet.models.checkpoint import stored_threshold
    from tests.test_bad_input import save_checkpoint

    plain = save_checkpoint(tmp_path / "plain.ckpt")
    strict = _with_threshold(plain, tmp_path / "strict.ckpt", 0.999)
    assert stored_threshold([plain]) == 0.5 and stored_threshold([strict, strict]) == 0.999
    with pytest.raises(InputError, match="different thresholds"):
        stored_threshold([plain, strict])
    with pytest.raises(InputError, match="not a probability"):
        stored_threshold([_with_threshold(plain, tmp_path / "bad.ckpt", 1.5)])
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
