"""Multirun sweeps through train.py: one folder per run, failures recorded, re-runs skip finished runs,
the joblib and submitit_local launchers, and W&B offline logging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from discnet.training.run import run_training
from tests.paths import REPO
from tests.train_helpers import TINY, tiny_config

ROOT = REPO


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", "PYTHONUTF8": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )


def sweep_args(manifest: Path, sweep_dir: Path) -> list[str]:
    return [
        "-m",
        f"data.manifest={manifest}",
        *TINY,
        "trainer=smoke",
        f"hydra.sweep.dir={sweep_dir}",
        f"paths.cache_dir={sweep_dir.parent / 'cache'}",
    ]


def summaries(sweep_dir: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(sweep_dir)): json.loads(p.read_text()) for p in sweep_dir.rglob("summary.json")}


def test_sweep_folders_failures_and_rerun(tiny_dataset, tmp_path):
    sweep = tmp_path / "sweep"
    args = sweep_args(tiny_dataset, sweep) + ["seed=0,1", "model.net.dropout=0.2,1.5"]
    first = train(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    found = summaries(sweep)
    assert len(found) == 4
    status = {name: s["status"] for name, s in found.items()}
    assert sum(v == "complete" for v in status.values()) == 2
    failed = [n for n, v in status.items() if v == "failed"]
    assert len(failed) == 2 and all("dropout=1.5" in n for n in failed)
    assert "dropout" in found[failed[0]]["error"]
    done = sweep / next(n for n, v in status.items() if v == "complete") / "summary.json"
    stamp = done.stat().st_mtime_ns
    again = train(*args, cwd=tmp_path)
    assert again.returncode == 0
    assert "skipping" in again.stdout + again.stderr
    assert done.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launchers_run_the_same_path(tiny_dataset, tmp_path, launcher):
    sweep = tmp_path / launcher
    result = train(*sweep_args(tiny_dataset, sweep), "seed=0,1", f"hydra/launcher={launcher}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    found = summaries(sweep)
    assert sorted(found) == [
        f"unet75-stretched/image_size=32,model.batch_size=8,model.net.base_filters=4,model.net.depth=2,seed={s}"
        for s in (0, 1)
    ]
    assert all(s["status"] == "complete" for s in found.values())


def test_experiment_glob_sweeps_every_version(tiny_dataset, tmp_path):
    sweep = tmp_path / "round2"
    result = train(
        *sweep_args(tiny_dataset, sweep),
        "+experiment/round2=glob(*)",
        "image_size=32",
        "trainer.max_epochs=1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    versions = sorted({s["version"] for s in summaries(sweep).values()})
    assert versions == ["r2-baseline", "r2-batchnorm", "r2-dilated", "r2-dropout"]


def test_single_run_bad_input_is_one_line_exit_2(tmp_path):
    result = train(
        f"data.manifest={tmp_path / 'missing.csv'}",
        *TINY,
        "trainer=smoke",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: error: ")
    assert "Traceback" not in result.stderr


def test_wandb_offline_records_config_metrics_and_summary(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "wb"
    summary = run_training(tiny_config(tiny_dataset, out, "trainer=smoke", "logger=wandb", "round=1"))
    files = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    deadline = time.monotonic() + 60  # W&B's service process may still be flushing the offline file
    while len(record := files[0].read_bytes()) < 1000 and time.monotonic() < deadline:
        time.sleep(0.2)
    for text in (
        "unet75-stretched",
        "round1",
        "stretched",
        "val/dsc",
        "train/loss",
        "best_val_dsc",
        "parameter_count",
        "val/subjects",
        "optim",
        *(f"best/dsc/{s}" for s in summary["subjects"]),
    ):
        assert text.encode() in record, text
