"""``make bench`` runs every section (tiny sizes here; speed is measured, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.paths import REPO


def test_quick_bench_runs_every_section_and_writes_its_table(tmp_path):
    pytest.importorskip("picsl_c3d", reason="Convert3D (picsl_c3d) not installed")
    command = [sys.executable, str(REPO / "experiments/benchmarks/bench.py"), "--quick", "--repeats", "1"]
    subprocess.run([*command, "-o", str(tmp_path)], check=True, capture_output=True, cwd=REPO)
    results = json.loads((tmp_path / "results-quick.json").read_text())
    assert {"inference", "data", "step", "evaluation", "memory"} <= set(results)
    assert results["evaluation"]["dice_discnet"] == pytest.approx(results["evaluation"]["dice_c3d"], abs=1e-6)
    for precision in ("fp32", "bf16"):
        entry = results["inference"][precision]
        assert entry["achieved_gflops"] > 0 and entry["speedup_vs_monai"] > 0 and entry["efficiency"] > 0
    assert results["data"]["datamodule_slices_per_s"] > 0 and results["step"]["plain_step_s"] > 0
    assert results["memory"]["predict_one_volume"]["code"] == 0
    table = (tmp_path / "results-quick.md").read_text()
    assert "| fp32 inference efficiency" in table and "n/a |" not in table.split("| absolute")[0]
