"""Interrupted work: a training run killed with SIGKILL resumes to the same result, bit for bit, with a
configuration that learns (val/dsc > 0.3); Ctrl+C records "interrupted"; a killed predict leaves no partial
output and ``--skip-existing`` finishes the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import pandas as pd
import pytest
import torch

from discnet.io.atomic import atomic_path
from tests.train_helpers import LEARNS, REPO, TINY

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
EPOCHS = 4


def _train_command(manifest: Path, out: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "train.py"),
        f"data.manifest={manifest}",
        "trainer=cpu",
        *TINY,
        *LEARNS,
        f"trainer.max_epochs={EPOCHS}",
        "seed=0",
        f"hydra.run.dir={out}",
        f"paths.cache_dir={out.parent / 'cache'}",
        *overrides,
    ]


def net_weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _sigint_default() -> None:
    """In the child: Ctrl+C's default action, even when the tests run in a background job (a shell starts
    those with SIGINT ignored, and a Python started with SIGINT ignored keeps ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared (exit code {process.poll()})")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    subprocess.run(_train_command(tiny_dataset, out), check=True, env=ENV, capture_output=True)
    return out


@pytest.mark.slow
def test_sigkill_mid_training_resumes_to_the_uninterrupted_result(tiny_dataset, tmp_path, uninterrupted):
    out = tmp_path / "run"
    command = _train_command(tiny_dataset, out)
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(out / "checkpoints" / "last.ckpt", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    saved = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["epoch"] < EPOCHS - 1  # killed before the end
    assert len(saved["discnet"]["history"]) == saved["epoch"] + 1  # the latest finished epoch, not the best
    assert not (out / "summary.json").exists() or json.loads((out / "summary.json").read_text())["status"] != "complete"

    again = subprocess.run(command, check=True, env=ENV, capture_output=True, text=True)  # the same command
    assert "Restoring states from the checkpoint path" in again.stdout + again.stderr  # resumed, not restarted
    resumed = json.loads((out / "summary.json").read_text())
    whole = json.loads((uninterrupted / "summary.json").read_text())
    assert resumed["status"] == "complete" and resumed["epochs"] == whole["epochs"] == EPOCHS
    scores, whole_scores = pd.read_csv(out / "val_scores.csv"), pd.read_csv(uninterrupted / "val_scores.csv")
    assert whole_scores["val/dsc"].max() > 0.3  # the configuration learns: the comparisons below have teeth
    assert list(scores["epoch"]) == list(range(EPOCHS))
    pd.testing.assert_frame_equal(scores, whole_scores, check_exact=True)  # every epoch, every subject
    for name in ("last.ckpt", "best.ckpt"):
        mine, theirs = net_weights(out / "checkpoints" / name), net_weights(uninterrupted / "checkpoints" / name)
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), name


def test_sigint_records_interrupted(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    tiny = ["image_size=32", "model.net.depth=2", "model.net.base_filters=4", "model.batch_size=8"]
    # No epoch limit that a fast machine could reach before the signal: the run ends only by SIGINT.
    command = _train_command(tiny_dataset, out, "trainer.max_epochs=100000", *tiny)
    process = subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default
    )
    _wait_for(out / "checkpoints" / "last.ckpt", process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["seed"] == 0
    assert "interrupted" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"hydra.run.dir={out}")  # the command that resumes it


def _outputs(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*_discs.nii.gz")}


def test_killed_predict_leaves_no_partial_file_and_skip_existing_finishes(tiny_dataset, tmp_path, uninterrupted):
    out = tmp_path / "pred"
    discnet = Path(sys.executable).parent / "discnet"
    command = [str(discnet), "predict", "--ckpt", str(uninterrupted / "checkpoints" / "last.ckpt")]
    command += [str(tiny_dataset), "--out-dir", str(out), "--batch-size", "1"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(out / "sub-001_ses1_discs.nii.gz", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    expected = len(pd.read_csv(tiny_dataset))
    first = _outputs(out)
    assert 1 <= len(first) < expected, "predict finished before it could be killed"
    assert not (out / "volumes.csv").exists()
    for name in first:  # every file under its final name is whole
        assert nib.load(out / name).get_fdata().shape == (96, 64, 12)
    # a temporary that a killed writer could leave (its process is gone) is cleared on the next write
    stale = out / f".sub-005_ses2_discs.tmp-{2**22 + 12345}-deadbeef.nii.gz"
    stale.write_bytes(b"partial")

    subprocess.run([*command, "--skip-existing"], check=True, env=ENV, capture_output=True)
    final = _outputs(out)
    assert len(final) == expected and {n: final[n] for n in first} == first  # the finished ones kept
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    clean = tmp_path / "clean"
    subprocess.run([*command[:4], str(tiny_dataset), "--out-dir", str(clean)], check=True, env=ENV, capture_output=True)
    finished, uninterrupted = (pd.read_csv(folder / "volumes.csv") for folder in (out, clean))
    assert [Path(f).name for f in finished.pop("file")] == [Path(f).name for f in uninterrupted.pop("file")]
    pd.testing.assert_frame_equal(finished, uninterrupted)
    for name in final:
        assert (nib.load(out / name).get_fdata() == nib.load(clean / name).get_fdata()).all()


def test_temporaries_of_a_living_writer_are_kept(tmp_path):
    final = tmp_path / "a.csv"
    mine = tmp_path / f".a.tmp-{os.getpid()}-00000000.csv"
    mine.write_text("in progress")
    with atomic_path(final) as tmp:
        tmp.write_text("done")
    assert final.read_text() == "done" and mine.exists()
