"""``discnet train``: Hydra training from the installed package (configs inside it), the time of every
segment of a resumed run, and no run folder left by a launch refused for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from discnet.training.run import run_training
from tests.train_helpers import REPO, TINY, run_train_script, tiny_config


@pytest.mark.slow  # builds and installs a wheel, then trains: about 40 s
def test_installed_wheel_trains_with_hydra_overrides_outside_the_checkout(tiny_dataset, tmp_path):
    source, wheels, target, work = (tmp_path / name for name in ("source", "wheels", "site", "work"))
    work.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "discnet", source / "discnet", symlinks=True, ignore=junk)  # built away from the checkout
    shutil.copytree(REPO / "conf", source / "conf")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    build = subprocess.run(
        [*pip[:3], "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    assert "Warning" not in build.stdout + build.stderr, build.stdout + build.stderr  # make setup stays quiet
    wheel = next(wheels.glob("discnet-*.whl"))
    install = subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)])
    assert install.returncode == 0
    env = {**os.environ, "PYTHONPATH": str(target), "WANDB_MODE": "offline"}
    where = subprocess.run(
        [sys.executable, "-c", "import discnet; print(discnet.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(target)  # the wheel's copy, not the checkout
    overrides = [f"data.manifest={tiny_dataset}", "trainer=smoke", *TINY, "hydra.run.dir=runs/first"]
    result = subprocess.run(
        [sys.executable, "-m", "discnet", "train", *overrides], cwd=work, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((work / "runs" / "first" / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["image_size"] == 32
    bad = subprocess.run(
        [sys.executable, "-m", "discnet", "train", "nosuchkey=1"], cwd=work, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("discnet train: error: nosuchkey=1")


def test_wall_time_counts_every_segment_of_a_resumed_run(tiny_dataset, tmp_path):
    first = tmp_path / "first"
    run_training(tiny_config(tiny_dataset, first, "trainer.max_epochs=2", "seed=7"))
    last = first / "checkpoints" / "last.ckpt"
    before = torch.load(last, map_location="cpu", weights_only=True)["callbacks"]["WallTime"]["wall_time_s"]
    assert before > 0
    resumed = run_training(
        tiny_config(tiny_dataset, tmp_path / "resumed", "trainer.max_epochs=3", "seed=7", f"ckpt_path={last}")
    )
    assert resumed["wall_time_s"] == pytest.approx(before + resumed["segment_wall_time_s"], abs=0.02)


@pytest.mark.parametrize(
    "override",
    [
        "data.manifest=/nonexistent/subjects.csv",
        "seed=-1",
        "surplus=smallest",
        "surplus=null",
        "tta=rotate",
        "tta=null",
    ],
)
def test_a_refused_launch_leaves_no_run_folder(override, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_train_script(monkeypatch, capsys, override, "trainer=smoke")
    assert code == 2 and err.startswith("train.py: error:")
    assert not list((tmp_path / "outputs").rglob("*.yaml")), "a failed launch left its run folder"
    assert not (tmp_path / "outputs" / "train").exists() or not any((tmp_path / "outputs" / "train").iterdir())


def test_a_refused_launch_keeps_a_folder_that_holds_a_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _ = run_train_script(monkeypatch, capsys, "data.manifest=/nonexistent/subjects.csv", "hydra.run.dir=mine")
    assert code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert json.loads((tmp_path / "mine" / "summary.json").read_text())["status"] == "failed"
