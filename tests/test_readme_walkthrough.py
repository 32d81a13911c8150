"""The README's first-day walkthrough (an ITK-SNAP folder -> volumes.csv and a QC montage), run as written.

The commands are read from the README's block after the ``<!-- walkthrough: ... -->`` marker, so the
README and this test cannot drift apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pandas as pd

from tests.paths import REPO

MARKER = "<!-- walkthrough:"


def walkthrough_commands(readme: str) -> str:
    """The fenced bash block right after the walkthrough marker."""
    after = readme[readme.index(MARKER) :]
    match = re.search(r"```bash\n(.*?)\n```", after, re.S)
    assert match, "no bash block after the walkthrough marker"
    return match.group(1)


def test_readme_walkthrough_runs_as_written(shared_dir, tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (tmp_path / "shared").symlink_to(shared_dir)  # ../shared beside the checkout, as in the README
    commands = walkthrough_commands((REPO / "README.md").read_text(encoding="utf-8"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands], cwd=checkout, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr
    volumes = pd.read_csv(checkout / "my-lab-results" / "volumes.csv")
    levels = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]
    for subject in ("sub11", "sub20"):
        rows = volumes[volumes["subject"] == subject]
        assert rows["level"].tolist() == levels and (rows["volume_mm3"] > 1000).all()
    picture = matplotlib.image.imread(checkout / "my-lab-results" / "sub11_qc.png")
    assert picture.shape[1] > 2 * picture.shape[0]  # a montage of slices side by side, not one slice
