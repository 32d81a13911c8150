"""The README's sweep command on a fresh clone: the default data are made on first use (phantoms, one note
saying where) and all eight seeds finish (``conf/data/synthetic.yaml`` ``synthesize``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO


def fresh_clone(dest: Path) -> Path:
    """The repository's files as git lists them (tracked and new, not ignored), copied without any data."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file() and name.split("/")[0] in ("conf", "train.py", "pyproject.toml"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.mark.slow
def test_readme_sweep_runs_on_a_fresh_clone(tmp_path):
    clone = fresh_clone(tmp_path / "discnet")
    assert not (clone / "data").exists()
    env = {k: v for k, v in os.environ.items() if k != "DISCNET_CACHE_DIR"}
    command = [sys.executable, "train.py", "-m", "model=unet75", "input=stretched", "seed=range(8)"]
    tiny = ["trainer.max_epochs=1", "+trainer.limit_train_batches=1", "logger=none"]
    done = subprocess.run([*command, *tiny], cwd=clone, env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert output.count("note: made the default training data") == 1
    assert (clone / "data" / "synthetic" / "subjects.csv").is_file()
    summaries = sorted(clone.glob("multirun/**/summary.json"))
    assert len(summaries) == 8
    assert {json.loads(p.read_text())["status"] for p in summaries} == {"complete"}
