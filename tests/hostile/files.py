"""The files of the hostile-input corpus: scans, labels, checkpoints, Keras models and configs, level
files and YAML made to break a reader (huge declared sizes, wrong types, links to inputs)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import h5py
import nibabel as nib
import numpy as np
import torch

from tests.paths import FIXTURES
from tests.test_bad_input import AFFINE, SHAPE, nifti, save_checkpoint

KERAS = FIXTURES / "keras"


def hostile_checkpoint(path: Path, **changes) -> Path:
    """A tiny discnet checkpoint with ``hyper_parameters`` (or its ``net``) changed."""
    save_checkpoint(path)
    data = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if key.startswith("net_"):
            data["hyper_parameters"]["net"][key[4:]] = value
        elif key == "state_dict":
            data["state_dict"] = value
        else:
            data["hyper_parameters"][key] = value
    torch.save(data, path)
    return path


def nifti_bomb(path: Path, shape=(1024, 1024, 1024)) -> Path:
    """A few-KB .nii.gz whose header declares 1 GiB of voxels."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.uint8)
    header.set_qform(np.eye(4), code=1)
    with gzip.open(path, "wb") as f:
        f.write(header.binaryblock + b"\0" * 4 + b"\0" * 100_000)
    return path


def run_folder(root: Path, name: str, config: str) -> Path:
    """``root/name/checkpoints/m.ckpt`` (recording no input or image size) with ``config`` as config.yaml."""
    folder = root / name / "checkpoints"
    folder.mkdir(parents=True)
    ckpt = save_checkpoint(folder / "m.ckpt")
    data = torch.load(ckpt, weights_only=True)
    data["hyper_parameters"] = {"net": data["hyper_parameters"]["net"]}
    torch.save(data, ckpt)
    (root / name / "config.yaml").write_text(config)
    return ckpt


BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def hostile_files(root: Path) -> SimpleNamespace:
    """Every file of the corpus under ``root``; the namespace names the ones the cases use."""
    rng = np.random.default_rng(1)
    image = rng.normal(100, 10, SHAPE).astype(np.float32)
    labels = np.zeros(SHAPE, np.uint8)
    labels[3:9, 2:4, 1:5] = 1
    h = SimpleNamespace(root=root)
    h.scan = nifti(root / "scan.nii.gz", image)
    h.label = nifti(root / "scan_discs.nii.gz", labels)
    h.levels = root / "levels.csv"
    h.levels.write_text("label,level\n1,L5-S1\n2,L4-L5\n3,L3-L4\n4,L2-L3\n5,L1-L2\n")
    h.ckpt = save_checkpoint(root / "model.ckpt")
    os.link(h.ckpt, root / "hard_link.pt")
    os.link(h.label, root / "label_link.csv")
    h.h5 = root / "unet.h5"
    shutil.copy(KERAS / "k2_unet_same_bn.h5", h.h5)
    (root / "link.h5").symlink_to(h.h5)
    (root / "sub").mkdir()
    h.existing = root / "existing_folder"
    h.existing.mkdir()
    # a study folder L holding the manifest's labels, and a folder of scans
    study = root / "L"
    study.mkdir()
    nifti(study / "scan.nii.gz", image)
    nifti(study / "sub11_discs.nii.gz", labels)
    (study / "subjects.csv").write_text("subject,image,label\nsub11,scan.nii.gz,sub11_discs.nii.gz\n")
    h.study = study
    h.scans = root / "scans"
    h.scans.mkdir()
    nifti(h.scans / "a.nii.gz", image)
    # declared sizes
    h.bomb = nifti_bomb(root / "bomb.nii.gz")
    h.huge_h5 = root / "huge_weights.h5"
    shutil.copy(KERAS / "k2_unet_same_bn.h5", h.huge_h5)
    with h5py.File(h.huge_h5, "r+") as f:
        f["model_weights"].create_dataset("giant", shape=(60000, 60000), dtype="f4", chunks=(1000, 1000))
    h.zip_bomb = root / "bomb.keras"
    with zipfile.ZipFile(h.zip_bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", (KERAS / "k3_strided.json").read_text())
        z.writestr("model.weights.h5", b"\0" * 5_000_000)
    h.big_size = hostile_checkpoint(root / "big_size.ckpt", image_size=200000)
    h.big_filters = hostile_checkpoint(root / "big_filters.ckpt", net_base_filters=200000)
    h.laughs = run_folder(root, "laughs", BILLION_LAUGHS)
    h.env_yaml = run_folder(root, "env", "image_size: ${oc.env:HOME}\ninput: {name: stretched}\n")
    # level files
    for name, data in {
        "missing_field.csv": b"label,level\n1,L5-S1\n2\n",
        "latin1.csv": b"label,level\n1,L5-S1\n2,L4-L5\xe9\n",
        "duplicate_value.csv": b"label,level\n1,L5-S1\n2,L4-L5\n1,L3-L4\n",
        "quote.label": b'0 0 0 0 0 0 0 "Clear Label"\n1 255 0 0 1 1 1 "L5-S1\n',
        "index.label": b'0 0 0 0 0 0 0 "Clear Label"\none 255 0 0 1 1 1 "L5-S1"\n',
    }.items():
        (root / name).write_bytes(data)
    # checkpoints with malformed hyper_parameters
    h.hyper_list = hostile_checkpoint(root / "hyper_list.ckpt")
    data = torch.load(h.hyper_list, weights_only=True)
    data["hyper_parameters"] = [1, 2]
    torch.save(data, h.hyper_list)
    h.unknown_key = hostile_checkpoint(root / "unknown_key.ckpt", net_layers=7)
    h.typed_key = hostile_checkpoint(root / "typed_key.ckpt", net_depth="2")
    h.depth0 = hostile_checkpoint(root / "depth0.ckpt", net_depth=0)
    h.size_abc = hostile_checkpoint(root / "size_abc.ckpt", image_size="abc")
    h.state_list = hostile_checkpoint(root / "state_list.ckpt", state_dict=[1, 2])
    # Keras configs of the wrong JSON types or depth (bare weights + --config)
    h.weights = root / "strided.weights.h5"
    shutil.copy(KERAS / "k3_strided.weights.h5", h.weights)
    good = json.loads((KERAS / "k3_strided.json").read_text())
    for name, config in {
        "class_list": {**good, "class_name": ["Functional"]},
        "layers_dict": {**good, "config": {**good["config"], "layers": {"a": 1}}},
        "config_list": {**good, "config": [1, 2]},
    }.items():
        (root / f"{name}.json").write_text(json.dumps(config))
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    # label values and voxel types
    for name, values in {"inf": np.inf, "nan": np.nan}.items():
        bad = labels.astype(np.float32)
        bad[0, 0, 0] = values
        nifti(root / f"{name}_discs.nii.gz", bad)
    big = labels.astype(np.int64)
    big[0, 0, 0] = 2**40
    nib.save(nib.Nifti1Image(big, AFFINE, dtype=np.int64), root / "int64_discs.nii.gz")
    nifti(root / "complex.nii.gz", image.astype(np.complex64))
    return h


def predict(h, image, out=None, ckpt=None) -> list:
    return ["predict", "--ckpt", ckpt or h.ckpt, image, "--out-dir", out or h.root / "out", "--levels", h.levels]


def volumes(h, labels, out=None, levels=None) -> list:
    return ["volumes", labels, "--levels", levels or h.levels, "-o", out or h.root / "v.csv"]


def convert_with(h, config: str) -> list:
    return ["convert", h.weights, "--config", h.root / config, "-o", h.root / "k.ckpt"]
