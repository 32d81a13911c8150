"""Model files never run code, no shell or eval on user input, manifest paths are relative to the
manifest, and no subject name writes outside the output folder (issue 8, part 3)."""

from __future__ import annotations

import ast
import base64
import json
import marshal
import pickle
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

import discnet.cli
from discnet.data.manifest import load_manifest
from discnet.errors import InputError
from discnet.models.checkpoint import read_checkpoint
from tests.train_helpers import run_train_script

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "discnet").rglob("*.py")) + [REPO / "train.py"]
LAMBDA_H5 = REPO / "tests" / "fixtures" / "keras" / "k2_lambda.h5"


class Evil:
    """Unpickling this calls ``open(path, "w")``: it creates the file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def evil_checkpoints(folder: Path, marker: Path) -> list[Path]:
    """The payload as torch.save'd checkpoint contents and as a bare pickle, both named .ckpt."""
    saved, dumped = folder / "evil.ckpt", folder / "evil_pickle.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(1)}, "hyper_parameters": {"net": Evil(marker)}}, saved)
    with dumped.open("wb") as f:
        pickle.dump({"state_dict": Evil(marker)}, f)
    return [saved, dumped]


def test_the_payload_really_creates_a_file(tmp_path):
    """The test's teeth: loading the evil file without weights_only would create the marker."""
    saved, dumped = evil_checkpoints(tmp_path, tmp_path / "control")
    torch.load(saved, weights_only=False)
    assert (tmp_path / "control").exists()
    (tmp_path / "control").unlink()
    with dumped.open("rb") as f:
        pickle.load(f)
    assert (tmp_path / "control").exists()


def test_evil_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "pwned"
    scan = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).normal(size=(8, 8, 4)).astype(np.float32), np.eye(4)), scan)
    for ckpt in evil_checkpoints(tmp_path, marker):
        with pytest.raises(InputError, match="refused without running them"):
            read_checkpoint(ckpt)
        capsys.readouterr()
        assert discnet.cli.main(["predict", "--ckpt", str(ckpt), str(scan), "-o", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ckpt.name in err and "Traceback" not in err
        assert not marker.exists()
    code, err = train_py(monkeypatch, capsys, tmp_path, f"model.init_from={evil_checkpoints(tmp_path, marker)[0]}")
    assert code == 2 and "evil.ckpt" in err and "Traceback" not in err
    assert not marker.exists()


def train_py(monkeypatch, capsys, tmp_path: Path, *overrides: str) -> tuple[int, str]:
    """``python train.py`` (tiny smoke run into ``tmp_path/run``) in this process; (exit code, stderr).

    The manifest does not exist: ``model.init_from`` is loaded before any data is read.
    """
    args = [
        "trainer=smoke",
        "logger=none",
        "image_size=32",
        "model.net.base_filters=4",
        "model.net.depth=2",
        f"data.manifest={tmp_path / 'none.csv'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "hydra/job_logging=none",
        *overrides,
    ]
    return run_train_script(monkeypatch, capsys, *args)


def lambda_payload(marker: Path) -> str:
    """A Keras-style marshalled function body that creates ``marker`` when executed."""
    code = compile(f"open({str(marker)!r}, 'w').close()", "<payload>", "exec")
    return base64.encodebytes(marshal.dumps(code)).decode()


def test_converter_never_runs_a_lambda_layer(tmp_path, capsys):
    if not LAMBDA_H5.is_file():
        pytest.skip("the Keras fixtures are absent")
    control, marker = tmp_path / "control", tmp_path / "pwned"
    exec(marshal.loads(base64.decodebytes(lambda_payload(control).encode())))  # the payload's teeth
    assert control.exists()
    model = tmp_path / "evil.h5"
    shutil.copy(LAMBDA_H5, model)
    with h5py.File(model, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "Lambda":
                layer["config"]["function"] = [lambda_payload(marker), None, None]
        f.attrs["model_config"] = json.dumps(config)
    assert discnet.cli.main(["convert", str(model), "-o", str(tmp_path / "evil.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Lambda" in err and "evil.h5" in err
    assert not marker.exists() and not (tmp_path / "evil.ckpt").exists()


def calls(path: Path) -> list[tuple[str, ast.Call]]:
    """Every call in a source file with the dotted name of what it calls (``torch.load``, ``eval``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            parts.append(func.id if isinstance(func, ast.Name) else "<expression>")
            found.append((".".join(reversed(parts)), node))
    return found


def keyword(call: ast.Call, name: str):
    value = next((k.value for k in call.keywords if k.arg == name), None)
    return value.value if isinstance(value, ast.Constant) else value


def test_no_shell_eval_or_unsafe_loading_in_the_package():
    bad = []
    for path in SOURCES:
        where = path.relative_to(REPO)
        for name, call in calls(path):
            line = f"{where}:{call.lineno} {name}"
            if name in ("eval", "exec", "os.system", "os.popen", "pickle.load", "pickle.loads", "yaml.load"):
                bad.append(line)
            if name.endswith("torch.load") and keyword(call, "weights_only") is not True:
                bad.append(f"{line} without weights_only=True")
            if keyword(call, "shell") is not None or keyword(call, "allow_pickle") is True:
                bad.append(f"{line} with shell= or allow_pickle=True")
    assert bad == []
    loads = [n for path in SOURCES for n, _ in calls(path) if n.endswith("torch.load")]
    assert loads, "the scan found no torch.load call at all: the check itself is broken"


def test_manifest_paths_resolve_relative_to_the_manifest(tmp_path, monkeypatch):
    study, elsewhere = tmp_path / "study", tmp_path / "elsewhere"
    (study / "scans").mkdir(parents=True)
    (elsewhere / "scans").mkdir(parents=True)
    for folder in (study, elsewhere):
        (folder / "scans" / "a.nii.gz").write_bytes(b"")
    (study / "subjects.csv").write_text("subject,image\nsub-1,scans/a.nii.gz\n")
    monkeypatch.chdir(elsewhere)
    table = load_manifest(study / "subjects.csv", require_labels=False)
    assert Path(table.loc[0, "image"]) == study / "scans" / "a.nii.gz"
    monkeypatch.chdir(tmp_path)
    table = load_manifest(Path("study") / "subjects.csv", require_labels=False)
    assert Path(table.loc[0, "image"]) == study / "scans" / "a.nii.gz"


@pytest.mark.parametrize("subject", ["../../x", "../x", "a/../../x", "/tmp/x", "a/b", ".."])
def test_no_subject_name_escapes_the_output_folder(subject, tmp_path, capsys, monkeypatch):
    top = tmp_path / "top"
    work = top / "a" / "b"
    work.mkdir(parents=True)
    scan = work / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).normal(size=(8, 8, 4)).astype(np.float32), np.eye(4)), scan)
    nib.save(nib.Nifti1Image(np.ones((8, 8, 4), np.uint8), np.eye(4)), work / "scan_discs.nii.gz")
    for reader in ("r1", "r2"):
        (work / reader).mkdir()
        shutil.copy(work / "scan_discs.nii.gz", work / reader / "scan_discs.nii.gz")
    manifest = work / "subjects.csv"
    manifest.write_text(f"subject,image,label,grade_L4-L5\n{subject},scan.nii.gz,scan_discs.nii.gz,II\n")
    before = sorted(tmp_path.rglob("*"))
    out = work / "out"
    commands = [
        ["predict", "--ckpt", work / "none.ckpt", manifest, "-o", out],
        ["evaluate", "--pred", work / "scan_discs.nii.gz", "--subjects", manifest, "-o", out / "m.csv"],
        ["split", manifest, "--val", "1", "-o", out / "s.csv"],
        ["agreement", work / "r1", work / "r2", "--subjects", manifest, "-o", out / "a.csv"],
    ]
    for command in commands:
        capsys.readouterr()
        assert discnet.cli.main([str(a) for a in command]) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "subject name is not safe" in err, (command, err)
    assert sorted(tmp_path.rglob("*")) == before
