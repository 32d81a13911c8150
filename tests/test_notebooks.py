"""The analysis notebooks are stored without outputs and run top to bottom on the committed results."""

from __future__ import annotations

import json
import os

import matplotlib
import pytest

from tests.paths import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NEEDS = {
    "leaderboard_statistics": ["experiments/round1/results-cpu/runs.csv", "experiments/round2/results-cpu/runs.csv"],
    "disc_level_analysis": ["experiments/round2/results-cpu/discs.csv"],
}


def test_there_are_two_notebooks():
    assert {p.stem for p in NOTEBOOKS} == set(NEEDS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs_and_runs(path, monkeypatch):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)
    missing = [n for n in NEEDS[path.stem] if not (REPO / n).exists()]
    assert not missing, f"committed results missing: {missing}"
    matplotlib.use("Agg")
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__main__"}
    for i, cell in enumerate(code):
        source = "".join(cell["source"])
        exec(compile(source, f"{path.name}[cell {i}]", "exec"), namespace)  # noqa: S102  (our own notebook)
    import matplotlib.pyplot as plt

    assert plt.get_fignums(), "the notebook draws its figures"
    plt.close("all")
    assert os.getcwd() == str(REPO)
