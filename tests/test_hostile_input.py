"""The hostile-input corpus of issue 15: outputs that are inputs, files declaring huge sizes, malformed level
files, checkpoints and Keras configs, full disks. Each case: exit code 2, one stderr line naming the file,
no traceback, no file left behind and every input's sha256 unchanged."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import h5py
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

import discnet.cli
from discnet.io import read_volume, write_like
from tests.test_bad_input import AFFINE, SHAPE, nifti, save_checkpoint

KERAS = Path(__file__).resolve().parent / "fixtures" / "keras"


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


@pytest.fixture(scope="module")
def h(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("hostile")
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


# case -> (command line, the file the message names, words of the problem[, environment or fault])
CASES: dict[str, Callable[[SimpleNamespace], tuple]] = {
    # 2. no output is an input
    "convert -o its input": lambda h: (["convert", h.h5, "-o", h.h5], "unet.h5", "equals an input"),
    "convert -o its input spelled otherwise": lambda h: (
        ["convert", h.h5, "-o", h.root / "sub" / ".." / "unet.h5"],
        "unet.h5",
        "equals an input",
    ),
    "convert -o a symlink to its input": lambda h: (
        ["convert", h.h5, "-o", h.root / "link.h5"],
        "link.h5",
        "equals an input",
    ),
    "export -o its checkpoint": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.ckpt],
        "model.ckpt",
        "equals an input",
    ),
    "export -o a hard link to its checkpoint": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.root / "hard_link.pt"],
        "hard_link.pt",
        "equals an input",
    ),
    "split -o an image the manifest names": lambda h: (
        ["split", h.study / "subjects.csv", "--val", "1", "-o", h.study / "scan.nii.gz"],
        "scan.nii.gz",
        "equals a file the manifest names",
    ),
    "predict into the folder of the manifest's labels": lambda h: (
        predict(h, h.study / "subjects.csv", out=h.study),
        "sub11_discs.nii.gz",
        "equals a file its manifest names",
    ),
    "predict into its input folder": lambda h: (predict(h, h.scans, out=h.scans), "scans", "is an input folder"),
    "volumes -o a hard link to its input": lambda h: (
        volumes(h, h.label, out=h.root / "label_link.csv"),
        "label_link.csv",
        "equals an input",
    ),
    "export -o an existing folder": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.existing],
        "existing_folder",
        "existing folder",
    ),
    "convert -o an existing folder": lambda h: (["convert", h.h5, "-o", h.existing], "existing_folder", "folder"),
    # 5. declared sizes checked before allocating
    "nii.gz declaring 1 GiB": lambda h: (predict(h, h.bomb), "bomb.nii.gz", "DISCNET_MAX_IMAGE_"),
    "h5 declaring a 13.4 GiB weight": lambda h: (
        ["convert", h.huge_h5, "-o", h.root / "k.ckpt"],
        "huge_weights.h5",
        "DISCNET_MAX_KERAS_WEIGHT_BYTES",
    ),
    ".keras zip bomb": lambda h: (
        ["convert", h.zip_bomb, "-o", h.root / "k.ckpt"],
        "bomb.keras",
        "DISCNET_MAX_ARCHIVE_MEMBER_BYTES",
        {"DISCNET_MAX_ARCHIVE_MEMBER_BYTES": "1000000"},
    ),
    "checkpoint image_size=200000": lambda h: (predict(h, h.scan, ckpt=h.big_size), "big_size.ckpt", "image_size"),
    "checkpoint base_filters=200000": lambda h: (
        predict(h, h.scan, ckpt=h.big_filters),
        "big_filters.ckpt",
        "base_filters",
    ),
    "billion laughs config.yaml beside a checkpoint": lambda h: (
        predict(h, h.scan, ckpt=h.laughs),
        "laughs/config.yaml",
        "alias",
    ),
    # 6. one line for the rest
    "levels.csv row with a missing field": lambda h: (
        volumes(h, h.label, levels=h.root / "missing_field.csv"),
        "missing_field.csv",
        "row 3 has a missing field",
    ),
    "levels.csv not UTF-8": lambda h: (volumes(h, h.label, levels=h.root / "latin1.csv"), "latin1.csv", "UTF-8"),
    "levels.csv with a label value twice": lambda h: (
        volumes(h, h.label, levels=h.root / "duplicate_value.csv"),
        "duplicate_value.csv",
        "rows 2 and 4",
    ),
    ".label with an unbalanced quote": lambda h: (
        volumes(h, h.label, levels=h.root / "quote.label"),
        "quote.label",
        "line 2",
    ),
    ".label with a non-integer index": lambda h: (
        volumes(h, h.label, levels=h.root / "index.label"),
        "index.label",
        "non-integer label index",
    ),
    "checkpoint hyper_parameters a list": lambda h: (
        predict(h, h.scan, ckpt=h.hyper_list),
        "hyper_list.ckpt",
        "hyper_parameters",
    ),
    "checkpoint with an unknown net key": lambda h: (
        predict(h, h.scan, ckpt=h.unknown_key),
        "unknown_key.ckpt",
        "unknown network setting 'layers'",
    ),
    "checkpoint with a wrongly typed net key": lambda h: (
        predict(h, h.scan, ckpt=h.typed_key),
        "typed_key.ckpt",
        "wrong type",
    ),
    "checkpoint with depth=0": lambda h: (predict(h, h.scan, ckpt=h.depth0), "depth0.ckpt", "depth=0"),
    "checkpoint with image_size='abc'": lambda h: (predict(h, h.scan, ckpt=h.size_abc), "size_abc.ckpt", "abc"),
    "checkpoint whose state_dict is a list": lambda h: (
        predict(h, h.scan, ckpt=h.state_list),
        "state_list.ckpt",
        "state_dict",
    ),
    "${oc.env:...} in config.yaml beside a checkpoint": lambda h: (
        predict(h, h.scan, ckpt=h.env_yaml),
        "env/config.yaml",
        "interpolation",
    ),
    "Keras class_name a list": lambda h: (convert_with(h, "class_list.json"), "class_list.json", "Functional"),
    "Keras layers a mapping": lambda h: (convert_with(h, "layers_dict.json"), "layers_dict.json", "'layers'"),
    "Keras config a list": lambda h: (convert_with(h, "config_list.json"), "config_list.json", "'config'"),
    "Keras config nested 100k deep": lambda h: (convert_with(h, "deep.json"), "deep.json", "nested too deep"),
    "volumes on a full disk": lambda h: (volumes(h, h.label), "v.csv", "cannot be written", "ENOSPC"),
    "evaluate on a full disk": lambda h: (
        ["evaluate", "--pred", h.label, "--truth", h.label, "--levels", h.levels, "-o", h.root / "m.csv"],
        "m.csv",
        "cannot be written",
        "ENOSPC",
    ),
    "export on a read-only disk": lambda h: (
        ["export", h.ckpt, "--format", "torchscript", "-o", h.root / "m.pt"],
        "m.pt",
        "cannot be written",
        "EROFS",
    ),
    "convert on a full disk": lambda h: (
        ["convert", h.h5, "-o", h.root / "k.ckpt"],
        "k.ckpt",
        "cannot be written",
        "ENOSPC",
    ),
    "label +Inf": lambda h: (volumes(h, h.root / "inf_discs.nii.gz"), "inf_discs.nii.gz", "infinite"),
    "label NaN": lambda h: (volumes(h, h.root / "nan_discs.nii.gz"), "nan_discs.nii.gz", "NaN"),
    "label beyond int32": lambda h: (volumes(h, h.root / "int64_discs.nii.gz"), "int64_discs.nii.gz", "int32"),
    "evaluate truth beyond int32": lambda h: (
        ["evaluate", "--pred", h.root / "int64_discs.nii.gz", "--truth", h.root / "int64_discs.nii.gz"]
        + ["-o", h.root / "m.csv"],
        "int64_discs.nii.gz",
        "int32",
    ),
    "complex-valued image": lambda h: (predict(h, h.root / "complex.nii.gz"), "complex.nii.gz", "complex"),
    "synth --size 100000 100000": lambda h: (
        ["synth", h.root / "phantoms", "--size", "100000", "100000"],
        "--size",
        "DISCNET_MAX_IMAGE_SIDE",
    ),
}


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (symlinks by their target's content)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def failing_replace(code: int):
    def replace(src, dst):
        raise OSError(code, os.strerror(code))

    return replace


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_one_line_exit_2_nothing_written(case, h, capfd, monkeypatch):
    args, named, problem, *extra = CASES[case](h)
    for setting in extra:
        if isinstance(setting, dict):
            for key, value in setting.items():
                monkeypatch.setenv(key, value)
        else:
            monkeypatch.setattr("discnet.io.atomic.os.replace", failing_replace(getattr(errno, setting)))
    before = hashes(h.root)
    capfd.readouterr()
    code = discnet.cli.main([str(a) for a in args])
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (case, err)
    assert len(lines) == 1 and "Traceback" not in err, (case, err)
    assert lines[0].startswith(f"discnet {args[0]}: error: "), (case, err)
    assert named in lines[0] and problem in lines[0], (case, err)
    assert hashes(h.root) == before, case  # no input changed, nothing left behind


def test_the_corpus_counts_what_the_readme_says():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"{len(CASES)} hostile-input cases" in readme


def test_4d_file_with_trailing_singleton_gets_an_output_of_its_own_shape(tmp_path):
    image = nifti(tmp_path / "series.nii.gz", np.random.default_rng(0).normal(size=(*SHAPE, 1)).astype(np.float32))
    volume = read_volume(image)
    assert volume.shape == SHAPE
    out = write_like(np.ones(SHAPE, np.uint8), volume, tmp_path / "mask.nii.gz")
    written = nib.load(out)
    assert written.shape == (*SHAPE, 1) and np.array_equal(written.affine, nib.load(image).affine)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
@pytest.mark.parametrize("spacing", [(0.3333333333, 0.52, 3.3), (0.5, 0.25, 2.0)])
def test_nifti_output_of_an_itk_input_keeps_the_spacing_exactly(suffix, spacing, tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=SHAPE[::-1]).astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin((1.234567891, -20.5, 7.0))
    sitk.WriteImage(image, str(tmp_path / f"scan{suffix}"))
    volume = read_volume(tmp_path / f"scan{suffix}")
    out = write_like(np.zeros(volume.shape, np.uint8), volume, tmp_path / "mask.nii.gz")
    back = read_volume(out, kind="label")
    assert back.spacing == volume.spacing and np.allclose(volume.spacing, spacing, rtol=1e-9)
    assert np.array_equal(back.affine, volume.affine)


def test_limits_are_overridable(h, monkeypatch, capsys):
    monkeypatch.setenv("DISCNET_MAX_IMAGE_VOXELS", "100")
    assert discnet.cli.main(["volumes", str(h.label), "-o", str(h.root / "out" / "v.csv")]) == 2
    assert "DISCNET_MAX_IMAGE_VOXELS" in capsys.readouterr().err
    monkeypatch.setenv("DISCNET_MAX_IMAGE_VOXELS", str(2**40))
    out = h.root / "tmp_ok" / "v.csv"
    assert discnet.cli.main(["volumes", str(h.label), "-o", str(out)]) == 0
    shutil.rmtree(out.parent)
