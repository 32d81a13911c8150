"""``make gpu-check`` (experiments/benchmarks/gpu_check.py) runs every section on a CPU at tiny sizes, and its
checks fail when a section's result is wrong or missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import REPO

sys.path.insert(0, str(REPO / "experiments" / "benchmarks"))

import gpu_check  # noqa: E402

PASSING = {
    "inference": {"fp32": {}, "bf16": {}},
    "training": [{"weights_finite": True}] * 3,
    "predict": {"dice_cuda": 0.8504, "dice_cpu": 0.8500, "dice_difference": 0.0004},
    "ddp": {"status": "complete"},
    "wall_s": 250.0,
}


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({}, None),
        ({"predict": {"dice_cuda": 0.86, "dice_cpu": 0.85, "dice_difference": 0.01}}, "predict Dice equal"),
        ({"predict": {"dice_cuda": 0.0, "dice_cpu": 0.0, "dice_difference": 0.0}}, "predicted discs"),
        ({"training": [{"weights_finite": True}, {"weights_finite": False}] + [{"weights_finite": True}]}, "training"),
        ({"ddp": {"status": "failed"}}, "one-device DDP"),
        ({"ddp": {}}, "one-device DDP"),  # a section that did not run fails
        ({"inference": {"fp32": {}}}, "bench"),
        ({"wall_s": 400.0}, "total under"),
    ],
)
def test_checks_fail_on_a_wrong_or_missing_section(change, failing):
    checks = gpu_check.checks({**PASSING, **change}, full=True)
    failed = [name for name, ok in checks.items() if not ok]
    assert len(failed) == (failing is not None) and all(name.startswith(failing) for name in failed)


@pytest.mark.slow
def test_tiny_cpu_run_writes_every_section_and_passes(tmp_path, lumbar_dir):
    command = [sys.executable, str(REPO / "experiments/benchmarks/gpu_check.py"), "--device", "cpu", "--tiny"]
    command += ["--data", str(lumbar_dir), "--compile-backend", "aot_eager", "-o", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "results-tiny-cpu.json").read_text())
    assert "errors" not in results and all(results["checks"].values())
    assert {"fp32", "bf16"} <= set(results["inference"])
    assert results["inference"]["fp32"]["predict_overhead"] is not None
    variants = [(v["channels_last"], v["compile"]) for v in results["training"]]
    assert variants == [(False, False), (True, False), (True, "aot_eager")]
    assert all(v["steps"] == gpu_check.TINY.steps and v["median_step_s"] > 0 for v in results["training"])
    predict = results["predict"]  # on a CPU the device is the CPU: one prediction, compared with itself
    assert 0.0 <= predict["dice_cpu"] <= 1.0 and predict["voxels_differing"] == 0 and predict["predict_cpu_s"] > 0
    assert results["ddp"] == {**results["ddp"], "status": "complete", "device": "cpu", "epochs": 1}
    table = (tmp_path / "results-tiny-cpu.md").read_text()
    assert "| channels-last on, compile aot_eager |" in table and "| one-device DDP run complete | pass |" in table
