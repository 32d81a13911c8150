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
from tests.paths import REPO
from tests.train_helpers import run_train_script

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
        assert discnet.cli.main(["predict", "--ckpt", str(ckpt), str(scan), "--out-dir", str(tmp_path / "out")]) == 2
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
        ["predict", "--ckpt", work / "none.ckpt", manifest, "--out-dir", out],
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


@pytest.fixture
def evil_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``evil.ckpt`` (its payload creates ``tmp_path/pwned``)."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    evil_checkpoints(served, tmp_path / "pwned")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/evil.ckpt", tmp_path / "pwned"
    server.shutdown()
    server.server_close()


def test_the_served_payload_really_runs_when_loaded_unsafely(evil_server, tmp_path, monkeypatch):
    from lightning.fabric.utilities.cloud_io import _load

    url, marker = evil_server
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # torch.hub caches what it downloads
    _load(url, map_location="cpu")  # what Lightning does with a remote ckpt_path: weights_only=False
    assert marker.exists()


@pytest.mark.parametrize("allow", [False, True], ids=["refused", "allowed but weights-only"])
def test_remote_checkpoint_never_runs_code(allow, evil_server, tmp_path, monkeypatch, capsys):
    from discnet.models.checkpoint_io import SafeCheckpointIO

    url, marker = evil_server
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    problem = "other than weights" if allow else "remote checkpoint: refused"
    with pytest.raises(InputError, match=problem):
        SafeCheckpointIO(allow_remote=allow).load_checkpoint(url)
    code, err = train_py(monkeypatch, capsys, tmp_path, f"ckpt_path={url}", f"allow_remote_checkpoints={allow}")
    assert code == 2 and err.count("\n") == 1 and url in err and problem in err and "Traceback" not in err
    assert not marker.exists()


def test_lightning_reads_every_checkpoint_through_the_safe_reader(tmp_path, monkeypatch):
    """Lightning's own loading path (ckpt_path, "last", SLURM "hpc") is the strategy's CheckpointIO."""
    from discnet.models.checkpoint_io import SafeCheckpointIO
    from discnet.training.run import _build
    from tests.test_bad_input import save_checkpoint
    from tests.train_helpers import tiny_config

    manifest = _two_phantoms(tmp_path / "data")
    _, _, trainer = _build(tiny_config(manifest, tmp_path / "run", "logger=none"), tmp_path / "run")
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)
    marker = tmp_path / "pwned"
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    for evil in evil_checkpoints(tmp_path, marker):
        with pytest.raises(InputError, match="refused without running them"):
            trainer.strategy.load_checkpoint(evil)
    assert not marker.exists()
    assert "state_dict" in trainer.strategy.load_checkpoint(save_checkpoint(tmp_path / "good.ckpt"))


def _two_phantoms(folder: Path) -> Path:
    from discnet.data.manifest import load_manifest_and_style, save_manifest
    from discnet.phantoms.synthetic import generate_dataset

    manifest = generate_dataset(folder, 2, seed=0, shape=(96, 64), spacing=(2.5, 2.5, 4.0), slices=(6, 6))
    table, style = load_manifest_and_style(manifest)
    table["split"] = ["train", "val"]
    save_manifest(table, manifest, style)
    return manifest


def test_planted_last_ckpt_is_set_aside_not_run(tmp_path, monkeypatch, capsys):
    from discnet.training.run import run_training
    from tests.train_helpers import tiny_config

    run_dir, marker = tmp_path / "run", tmp_path / "pwned"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(evil_checkpoints(tmp_path, marker)[0], run_dir / "checkpoints" / "last.ckpt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    capsys.readouterr()
    summary = run_training(tiny_config(_two_phantoms(tmp_path / "data"), run_dir, "trainer=smoke", "logger=none"))
    assert not marker.exists() and summary["status"] == "complete"
    warning = [line for line in capsys.readouterr().err.splitlines() if "last.ckpt" in line]
    assert len(warning) == 1 and "other than weights" in warning[0] and "starting fresh" in warning[0]
    assert len(list((run_dir / "checkpoints").glob("last.ckpt.unreadable-*"))) == 1
