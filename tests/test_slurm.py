"""Sweeps through ``hydra/launcher=submitit_slurm`` on a real SLURM cluster (``scripts/slurm-local.sh start``).

Marked ``slurm`` (not in the default suite; ``.ci/run`` starts the one-node cluster and runs
``pytest -m slurm``); skipped when no SLURM node takes jobs. The commands are the README's SLURM section.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.train_helpers import REPO, TINY

pytestmark = pytest.mark.slurm

EPOCHS = 4
# The README's SLURM sweep, with a tiny model (TINY) on the tiny phantoms.
SWEEP = ["-m", "hydra/launcher=submitit_slurm", "trainer=smoke", f"trainer.max_epochs={EPOCHS}", "seed=0,1"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "1", "PYTHONUTF8": "1"}
RUN_OVERRIDES = "image_size=32,model.batch_size=8,model.net.base_filters=4,model.net.depth=2"  # TINY in a folder name
TIMEOUT = 600  # generous: polls end as soon as their condition holds


def _node_ready() -> str | None:
    """Why no SLURM node takes jobs here, or None when one does."""
    if shutil.which("sinfo") is None:
        return "SLURM is not installed (scripts/slurm-local.sh start installs and starts a one-node cluster)"
    states = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if states.returncode != 0 or not re.search(r"^(idle|mixed|allocated)$", states.stdout, re.M):
        return f"no SLURM node takes jobs ({(states.stdout + states.stderr).strip()}): run scripts/slurm-local.sh start"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster():
    reason = _node_ready()
    if reason:
        pytest.skip(reason)


def _command(manifest: Path, sweep: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "train.py"),
        *SWEEP,
        f"data.manifest={manifest}",
        *TINY,
        *extra,
        f"hydra.sweep.dir={sweep}",
        f"paths.cache_dir={sweep.parent / 'cache'}",
    ]


def _sweep(manifest: Path, sweep: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        _command(manifest, sweep, *extra), cwd=sweep.parent, env=ENV, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _run_dir(sweep: Path, seed: int, first: str = "") -> Path:
    """A run's folder; ``first``: the overrides that sort before the tiny model's, with their comma."""
    overrides = f"{first}{RUN_OVERRIDES},seed={seed},trainer.max_epochs={EPOCHS}"
    return sweep / "unet75-stretched" / overrides


def _summary(sweep: Path, seed: int, first: str = "") -> dict | None:
    try:
        return json.loads((_run_dir(sweep, seed, first) / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def _array_ids(sweep: Path) -> list[str]:
    """SLURM array job ids of the sweep's submissions, oldest first (submitit folders ``<id>_<task>``)."""
    ids = {p.name.split("_")[0] for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name)}
    return sorted(ids, key=int)


def _task_log(sweep: Path, array_id: str, task: int) -> str:
    """What the SLURM task wrote (submitit's ``<id>_<task>_0_log.out`` and ``.err``)."""
    folder = sweep / ".submitit" / f"{array_id}_{task}"
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*_log.*")))


def _jobs(array_id: str) -> list[dict[str, str]]:
    """``scontrol show job`` records of an array's tasks (kept after the end: MinJobAge)."""
    text = subprocess.run(
        ["scontrol", "show", "job", "-o", array_id], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in text.splitlines() if line.strip()]


def _ended_jobs(array_id: str, tasks: int) -> list[dict[str, str]]:
    """The array's task records once every task has ended (the launcher returns when the results are
    written, a moment before SLURM marks the job completed)."""
    done = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}

    def ended() -> list[dict[str, str]] | None:
        jobs = _jobs(array_id)
        return jobs if len(jobs) == tasks and all(j["JobState"] in done for j in jobs) else None

    return _poll(ended, f"the {tasks} tasks of array {array_id} to end")


def _max_concurrent(jobs: list[dict[str, str]]) -> int:
    """The most tasks running at one moment (a task ending at second t does not overlap one starting at t)."""
    events = []
    for job in jobs:
        events += [(datetime.fromisoformat(job["StartTime"]), 1), (datetime.fromisoformat(job["EndTime"]), -1)]
    running = peak = 0
    for _, step in sorted(events):
        running += step
        peak = max(peak, running)
    return peak


def _poll(condition, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + TIMEOUT
    while not (value := condition()):
        if process is not None and process.poll() is not None:
            raise AssertionError(f"sweep ended (exit code {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tmp_path_factory) -> Path:
    """The README sweep, run to the end: both runs at once (no cap)."""
    sweep = tmp_path_factory.mktemp("slurm") / "sweep"
    _sweep(tiny_dataset, sweep)
    return sweep


def test_sweep_of_two_runs_lands_complete_summaries(uninterrupted):
    for seed in (0, 1):
        summary = _summary(uninterrupted, seed)
        assert summary is not None and summary["status"] == "complete"
        assert summary["seed"] == seed and summary["epochs"] == EPOCHS
        assert set(summary["subjects"]) == {"sub-004", "sub-005"} and summary["best_val_dsc"] is not None
    (array,) = _array_ids(uninterrupted)  # one SLURM array, one task per run, both finished
    jobs = _ended_jobs(array, 2)
    assert sorted(j["ArrayTaskId"] for j in jobs) == ["0", "1"]
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}
    assert _max_concurrent(jobs) == 2  # without a cap the two runs share the node


def test_array_parallelism_caps_concurrent_jobs(tiny_dataset, tmp_path, uninterrupted):
    sweep = tmp_path / "capped"
    _sweep(tiny_dataset, sweep, "hydra.launcher.array_parallelism=1")
    (array,) = _array_ids(sweep)
    jobs = _ended_jobs(array, 2)
    assert {j["ArrayTaskThrottle"] for j in jobs} == {"1"}
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}
    assert _max_concurrent(jobs) == 1
    for seed in (0, 1):  # the same results, one run after the other
        capped, whole = _summary(sweep, seed), _summary(uninterrupted, seed)
        assert capped["status"] == "complete"
        assert capped["last_val_dsc"] == pytest.approx(whole["last_val_dsc"], abs=1e-9)


def test_scancel_mid_training_then_rerun_resumes_to_the_uninterrupted_result(tiny_dataset, tmp_path, uninterrupted):
    sweep = tmp_path / "cancelled"
    # Run 0 holds at the start of epoch 1 (tests/hold.py) until the flag goes: the scancel lands mid-training.
    hold = "+callbacks.hold._target_=tests.hold.HoldWhileFlagged"
    flag = tmp_path / "hold-0"
    flag.touch()
    env = {**ENV, "DISCNET_TEST_HOLD": str(tmp_path / "hold-{task}"), "PYTHONPATH": str(REPO)}
    command = _command(tiny_dataset, sweep, hold)
    launcher = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _poll(flag.with_name("hold-0.held").exists, "run 0 to hold at epoch 1", launcher)
        (array,) = _array_ids(sweep)
        subprocess.run(["scancel", f"{array}_0"], check=True, timeout=30)
        _poll(lambda: _jobs(f"{array}_0")[0]["JobState"] == "CANCELLED", "the cancelled job to end")
        # Without an accounting database the launcher cannot see the cancellation: stop it once run 1 is done.
        _poll(lambda: _jobs(f"{array}_1")[0]["JobState"] == "COMPLETED", "the other run to finish")
    finally:
        launcher.kill()
        launcher.wait()
    flag.unlink()
    held = f"{hold},"  # the hold is in the runs' folder names
    saved = torch.load(_run_dir(sweep, 0, held) / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 0  # cancelled mid-training, where it held
    assert (_summary(sweep, 0, held) or {}).get("status") != "complete"
    finished = (_run_dir(sweep, 1, held) / "summary.json").stat().st_mtime_ns

    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]  # the same command
    first, second = _array_ids(sweep)
    assert first == array
    # resumed from last.ckpt, not restarted; the finished run is skipped
    assert "Restoring states from the checkpoint path" in _task_log(sweep, second, 0)
    assert "skipping" in _task_log(sweep, second, 1)
    assert (_run_dir(sweep, 1, held) / "summary.json").stat().st_mtime_ns == finished

    resumed, whole = _summary(sweep, 0, held), _summary(uninterrupted, 0)
    assert resumed["status"] == "complete" and resumed["epochs"] == whole["epochs"] == EPOCHS
    assert resumed["last_val_dsc"] == pytest.approx(whole["last_val_dsc"], abs=1e-9)
    scores = pd.read_csv(_run_dir(sweep, 0, held) / "val_scores.csv")
    assert list(scores["epoch"]) == list(range(EPOCHS))
    pd.testing.assert_frame_equal(scores, pd.read_csv(_run_dir(uninterrupted, 0) / "val_scores.csv"), atol=1e-9, rtol=0)
