"""A corpus of malformed inputs through every entry point: each gives exit code 2, one stderr line naming
the file and the problem, no traceback, and leaves no output file behind (issue 8, part 1)."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

import discnet.cli
from discnet.data.preprocess import InputConfig
from discnet.training.segmenter import DiscSegmenter
from tests.paths import FIXTURES
from tests.train_helpers import run_train_script

SHAPE = (12, 16, 6)
AFFINE = np.diag([1.0, 1.0, 3.0, 1.0])
NET = {"base_filters": 4, "depth": 2}


def save_checkpoint(path: Path, net: dict = NET) -> Path:
    """A tiny untrained discnet checkpoint of the layout ``discnet predict`` loads."""
    torch.manual_seed(0)
    model = DiscSegmenter(net=net, optim={})
    hyper = {"net": net, "input": dataclasses.asdict(InputConfig()), "image_size": 32}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hyper}, path)
    return path


def nifti(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def truncated(path: Path, source: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> SimpleNamespace:
    """Good and bad files, all in one folder (``d.root``)."""
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    image = rng.normal(100, 10, SHAPE).astype(np.float32)
    labels = np.zeros(SHAPE, np.uint8)
    labels[3:9, 2:4, 1:5], labels[3:9, 8:10, 1:5] = 1, 2
    d = SimpleNamespace(root=root)
    d.scan = nifti(root / "scan.nii.gz", image)
    d.label = nifti(root / "scan_discs.nii.gz", labels)
    d.levels = root / "levels.csv"
    d.levels.write_text("label,level\n1,L5-S1\n2,L4-L5\n3,L3-L4\n4,L2-L3\n5,L1-L2\n")
    d.ckpt = save_checkpoint(root / "model.ckpt")
    d.blocker = root / "plain.txt"
    d.blocker.write_text("a regular file\n")
    d.folder = root / "a_folder"
    d.folder.mkdir()
    (d.folder / "notes.txt").write_text("no image here\n")
    for name, kwargs in (("mha", {}), ("nrrd", {})):
        sitk.WriteImage(sitk.GetImageFromArray(image), str(root / f"good.{name}"), **kwargs)
    d.nrrd = truncated(root / "broken.nrrd", root / "good.nrrd")
    d.mha = truncated(root / "broken.mha", root / "good.mha")
    nifti(root / "good_big.nii", rng.normal(size=(40, 40, 40)).astype(np.float32))
    d.nii = truncated(root / "broken.nii", root / "good_big.nii", 0.3)
    d.text_nii = root / "notes.nii.gz"
    d.text_nii.write_text("this is not an image\n")
    d.image_2d = nifti(root / "flat.nii.gz", image[:, :, 0])
    d.image_4d = nifti(root / "series.nii.gz", np.stack([image, image], axis=-1))
    with_nan, with_inf = image.copy(), image.copy()
    with_nan[1, 2, 3], with_inf[4, 5, 1] = np.nan, np.inf
    d.nan = nifti(root / "nan.nii.gz", with_nan)
    d.inf = nifti(root / "inf.nii.gz", with_inf)
    d.constant = nifti(root / "blank.nii.gz", np.full(SHAPE, 7.0, np.float32))
    moved = AFFINE.copy()
    moved[:3, 3] = (500.0, 0.0, 0.0)  # another grid (evaluate resamples it) that misses the truth entirely
    d.other_grid = nifti(folder(root / "moved") / "scan_discs.nii.gz", labels, moved)
    unnamed = labels.copy()
    unnamed[0, 0, 0] = 7
    d.unnamed = nifti(folder(root / "unnamed") / "scan_discs.nii.gz", unnamed)
    d.empty = nifti(folder(root / "empty") / "scan_discs.nii.gz", np.zeros(SHAPE, np.uint8))
    d.fractional = nifti(root / "fractional_discs.nii.gz", labels.astype(np.float32) * 0.5)
    d.negative = nifti(root / "negative_discs.nii.gz", labels.astype(np.int16) - 1)
    d.pred = nifti(folder(root / "pred") / "scan_discs.nii.gz", labels)
    header = "subject,image,label,session,grade_L4-L5\n"
    d.manifests = {}
    for name, text in {
        "no_image": "subject,label\nsub-1,scan_discs.nii.gz\n",
        "duplicate": header + "sub-1,scan.nii.gz,scan_discs.nii.gz,1,II\nsub-1,scan.nii.gz,scan_discs.nii.gz,1,III\n",
        "grade": header + "sub-1,scan.nii.gz,scan_discs.nii.gz,1,VII\n",
        "missing_path": header + "sub-1,nowhere.nii.gz,scan_discs.nii.gz,1,II\n",
        "empty": "",
        "session": header + "sub-1,scan.nii.gz,scan_discs.nii.gz,first,II\n",
        "shape": "subject,image,label,split\nsub-1,scan.nii.gz,small/scan_discs.nii.gz,train\n"
        "sub-2,scan.nii.gz,small/scan_discs.nii.gz,val\n",
    }.items():
        d.manifests[name] = root / f"{name}.csv"
        d.manifests[name].write_text(text)
    d.other_arch = save_checkpoint(root / "other_arch.ckpt")
    data = torch.load(d.other_arch, weights_only=True)
    data["hyper_parameters"]["net"] = {"base_filters": 8, "depth": 2}
    torch.save(data, d.other_arch)
    d.corrupt_ckpt = truncated(root / "corrupt.ckpt", d.ckpt)
    d.pickle_ckpt = root / "list.ckpt"
    d.pickle_ckpt.write_bytes(pickle.dumps([1, 2, 3]))
    d.thoracic_levels = root / "thoracic.csv"
    d.thoracic_levels.write_text("label,level\n1,T12-L1\n")
    d.label300_levels = root / "label300.csv"
    d.label300_levels.write_text("label,level\n300,L5-S1\n")
    d.keras_lambda = FIXTURES / "keras" / "k2_lambda.h5"
    d.bad_levels = root / "bad_levels.csv"
    d.bad_levels.write_text("value,name\n1,L5-S1\n")
    return d


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def run_cli(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = discnet.cli.main([str(a) for a in args])
    return code, capsys.readouterr().err


def predict(d, image, out=None, ckpt=None) -> list:
    return ["predict", "--ckpt", ckpt or d.ckpt, image, "--out-dir", out or d.root / "out", "--levels", d.levels]


def evaluate(d, pred, truth, out=None, levels=None) -> list:
    return ["evaluate", "--pred", pred, "--truth", truth, "--levels", levels or d.levels, "-o", out or d.root / "m.csv"]


def volumes(d, labels, out=None) -> list:
    return ["volumes", labels, "--levels", d.levels, "-o", out or d.root / "v.csv"]


# case -> (command line, the file the message must name, words of the problem)
CASES: dict[str, Callable[[SimpleNamespace], tuple[list, object, str]]] = {
    "missing file": lambda d: (predict(d, d.root / "nope.nii.gz"), "nope.nii.gz", "not found"),
    "missing label file": lambda d: (volumes(d, d.root / "gone_discs.nii.gz"), "gone_discs.nii.gz", "not found"),
    "folder as checkpoint": lambda d: (predict(d, d.scan, ckpt=d.folder), d.folder, "checkpoint"),
    "folder without images": lambda d: (predict(d, d.folder), d.folder, "no image files"),
    "folder as levels file": lambda d: (evaluate(d, d.pred, d.label, levels=d.folder), d.folder, "is a folder"),
    "truncated NIfTI": lambda d: (predict(d, d.nii), d.nii, "cannot be read"),
    "truncated NRRD": lambda d: (predict(d, d.nrrd), d.nrrd, "cannot be read"),
    "truncated MHA": lambda d: (volumes(d, d.mha), d.mha, "cannot be read"),
    "text named .nii.gz": lambda d: (predict(d, d.text_nii), d.text_nii, "cannot be read"),
    "unknown suffix": lambda d: (predict(d, d.blocker), d.blocker, "unknown image format"),
    "2D image": lambda d: (predict(d, d.image_2d), d.image_2d, "2D"),
    "4D image": lambda d: (predict(d, d.image_4d), d.image_4d, "4D"),
    "NaN voxels": lambda d: (predict(d, d.nan), d.nan, "NaN"),
    "Inf voxels": lambda d: (predict(d, d.inf), d.inf, "infinite"),
    "constant image": lambda d: (predict(d, d.constant), d.constant, "constant"),
    "label far from the truth": lambda d: (evaluate(d, d.other_grid, d.label), d.other_grid, "does not overlap"),
    "label values not in levels": lambda d: (evaluate(d, d.pred, d.unnamed), d.unnamed, "[7]"),
    "empty truth": lambda d: (evaluate(d, d.pred, d.empty), d.empty, "no disc labelled"),
    "non-integer labels": lambda d: (volumes(d, d.fractional), d.fractional, "non-integer"),
    "negative labels": lambda d: (volumes(d, d.negative), d.negative, "negative"),
    "malformed levels file": lambda d: (
        volumes(d, d.label)[:2] + ["--levels", d.bad_levels, "-o", d.root / "v.csv"],
        d.bad_levels,
        "label,level",
    ),
    "manifest without image column": lambda d: (
        ["split", d.manifests["no_image"], "--val", "1"],
        "no_image.csv",
        "missing required column(s): image",
    ),
    "manifest duplicate subject+session": lambda d: (
        ["split", d.manifests["duplicate"], "--val", "1"],
        "duplicate.csv",
        "sub-1",
    ),
    "manifest unknown grade": lambda d: (["split", d.manifests["grade"], "--val", "1"], "grade.csv", "VII"),
    "manifest bad session": lambda d: (["split", d.manifests["session"], "--val", "1"], "session.csv", "first"),
    "empty manifest": lambda d: (["split", d.manifests["empty"], "--val", "1"], "empty.csv", "empty"),
    "manifest path that does not exist": lambda d: (
        predict(d, d.manifests["missing_path"]),
        "missing_path.csv",
        "nowhere.nii.gz",
    ),
    "checkpoint of another architecture": lambda d: (
        predict(d, d.scan, ckpt=d.other_arch),
        d.other_arch,
        "another architecture",
    ),
    "corrupt checkpoint": lambda d: (predict(d, d.scan, ckpt=d.corrupt_ckpt), d.corrupt_ckpt, "checkpoint"),
    "non-checkpoint pickle": lambda d: (predict(d, d.scan, ckpt=d.pickle_ckpt), d.pickle_ckpt, "other than weights"),
    "Keras Lambda layer": lambda d: (["convert", d.keras_lambda, "-o", d.root / "k.ckpt"], d.keras_lambda, "Lambda"),
    "predict into a file's folder": lambda d: (predict(d, d.scan, out=d.blocker / "out"), "plain.txt", "output"),
    "volumes into a file's folder": lambda d: (
        volumes(d, d.label, out=d.blocker / "v.csv"),
        "plain.txt",
        "cannot be created",
    ),
    "evaluate into a file's folder": lambda d: (
        evaluate(d, d.pred, d.label, out=d.blocker / "m.csv"),
        "plain.txt",
        "cannot be created",
    ),
    "predict output equals input": lambda d: (
        ["predict", "--ckpt", d.ckpt, d.scan, d.label, "--out-dir", d.root],
        d.label.name,
        "equals an input",
    ),
    "volumes output equals input": lambda d: (volumes(d, d.label, out=d.label), d.label.name, "input"),
    "evaluate output equals input": lambda d: (evaluate(d, d.pred, d.label, out=d.levels), d.levels.name, "input"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_exit_2_nothing_written(case, d, capfd):
    args, named, problem = CASES[case](d)
    if case == "Keras Lambda layer" and not d.keras_lambda.is_file():
        pytest.skip("the Keras fixtures are absent")
    before = files(d.root)
    code, err = run_cli(capfd, *args)
    assert code == 2, (case, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, (case, err)
    assert lines[0].startswith(f"discnet {args[0]}: error: "), (case, err)
    named = (
        str(named.relative_to(d.root) if d.root in named.parents else named.name) if isinstance(named, Path) else named
    )
    assert named in lines[0] and problem in lines[0], (case, err)
    assert files(d.root) == before, case


def test_debug_shows_the_traceback(d, capsys):
    with pytest.raises(Exception, match="not found"):
        discnet.cli.main(["--debug", *map(str, predict(d, d.root / "nope.nii.gz"))])


def train_py(monkeypatch, capsys, *overrides: str) -> tuple[int, str]:
    return run_train_script(monkeypatch, capsys, *overrides)


TRAIN_CASES: dict[str, Callable[[SimpleNamespace], tuple[list, str, str]]] = {
    "unknown option": lambda d: (["nosuchoption=3"], "nosuchoption=3", "unknown or invalid override"),
    "unknown config choice": lambda d: (["model=unet99"], "model=unet99", "unet75"),
    "malformed override": lambda d: (["seed=[1"], "seed=[1", "malformed override"),
    "sweep without -m": lambda d: (["seed=1,2"], "seed=1,2", "-m"),
    "manifest path that does not exist": lambda d: (
        [f"data.manifest={d.manifests['missing_path']}"],
        "missing_path.csv",
        "nowhere.nii.gz",
    ),
    "image and label of different shape": lambda d: (
        [f"data.manifest={d.manifests['shape']}"],
        "small/scan_discs.nii.gz",
        "shape",
    ),
    "init_from a non-checkpoint pickle": lambda d: (
        [f"model.init_from={d.pickle_ckpt}"],
        "list.ckpt",
        "other than weights",
    ),
    "seed from the environment": lambda d: (["seed=${oc.env:HOME}"], "seed=", "not a whole number"),
    "image_size not a number": lambda d: (["image_size=abc"], "image_size=abc", "not a whole number"),
    "image_size 0": lambda d: (["image_size=0"], "image_size=0", "at least 8"),
    "batch_size 0": lambda d: (["model.batch_size=0"], "model.batch_size=0", "at least 1"),
    "max_epochs -5": lambda d: (["trainer.max_epochs=-5"], "trainer.max_epochs=-5", "at least 1"),
    "net depth 0": lambda d: (["model.net.depth=0"], "model.net", "depth=0"),
    "levels with a thoracic name": lambda d: ([f"levels={d.thoracic_levels}"], "thoracic.csv", "unknown level"),
    "levels with label 300": lambda d: ([f"levels={d.label300_levels}"], "label300.csv", "300"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_py_bad_input_one_line_exit_2(case, d, tmp_path, monkeypatch, capsys):
    overrides, named, problem = TRAIN_CASES[case](d)
    run_dir = tmp_path / "run"
    tiny = ["trainer=smoke", "logger=none", "image_size=32", "model.net.base_filters=4", "model.net.depth=2"]
    common = [*tiny, f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}", "hydra/job_logging=none"]
    if not any(o.startswith("data.manifest") for o in overrides):
        common.append(f"data.manifest={d.manifests['shape']}")
    before = files(d.root)
    code, err = train_py(monkeypatch, capsys, *common, *overrides)
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err, (case, err)
    assert len(lines) == 1 and lines[0].startswith("train.py: error:"), (case, err)  # nothing else
    assert named in lines[0] and problem in lines[0], (case, err)
    assert files(d.root) == before
    assert not list(run_dir.rglob("*.ckpt"))
