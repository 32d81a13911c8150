"""Leaderboards of a sweep: the top runs, each version's summary, and the paper's final model.

The paper ranks runs by their mean validation Dice across subjects (Fig 4B, 5C/D), summarises each
version by the mean and SD of its runs (Tables 2-3), and takes as the final model the best version's
best run (section 2.5). ``discnet leaderboard`` prints these; ``discnet report`` draws them.

Example:
    >>> long = pd.DataFrame({"run": ["a", "a", "b", "b"], "version": ["v1", "v1", "v2", "v2"],
    ...                      "seed": [0, 0, 0, 0], "subject": ["s1", "s2"] * 2, "dsc": [0.8, 0.9, 0.7, 0.7]})
    >>> leaderboard(long)[["rank", "version", "dsc"]].round(3).to_dict("records")
    [{'rank': 1, 'version': 'v1', 'dsc': 0.85}, {'rank': 2, 'version': 'v2', 'dsc': 0.7}]
"""

from __future__ import annotations

import math

import pandas as pd

from discnet.analysis.runs import has_response, run_means, score_name
from discnet.models.run_folder import RunFolder
from discnet.spine import natural_key


def leaderboard(long: pd.DataFrame, n: int | None = None, response: str = "dsc") -> pd.DataFrame:
    """The top ``n`` runs by mean ``response`` across subjects: rank, version, seed, dsc, sd, run, ...

    Ties keep natural order of version then seed.
    """
    runs = run_means(long, response)
    runs = runs.sort_values(["version", "seed"], key=lambda s: s.map(natural_key), kind="stable")
    runs = runs.sort_values(response, ascending=False, kind="stable").reset_index(drop=True)
    runs.insert(0, "rank", range(1, len(runs) + 1))
    return runs.head(n) if n else runs


def version_summary(long: pd.DataFrame, response: str = "dsc") -> pd.DataFrame:
    """Per version: runs, mean and SD across runs of the run means, best and worst run, best seed.

    With orphan-removed Dice also the gain from orphan removal (mean and SD across runs), as paper 3.3.
    """
    runs = run_means(long, response)
    rows = []
    for version, group in runs.groupby("version", sort=False):
        scores = group[response]
        best = group.loc[scores.idxmax()]
        rows.append(
            {
                "version": version,
                "runs": len(group),
                "mean": scores.mean(),
                "sd": scores.std(),
                "best": best[response],
                "worst": scores.min(),
                "best_seed": best["seed"],
            }
        )
    table = pd.DataFrame(rows, columns=["version", "runs", "mean", "sd", "best", "worst", "best_seed"])
    if response == "dsc_orphan_removed" and has_response(long, "dsc"):
        raw = run_means(long.dropna(subset=[response]), "dsc")[["run", "version", "dsc"]]
        gain = raw.merge(runs[["run", response]], on="run")
        gain["gain"] = gain[response] - gain["dsc"]
        stats = gain.groupby("version")["gain"].agg(gain_mean="mean", gain_sd="std").reset_index()
        table = table.merge(stats, on="version", how="left")
    table = table.sort_values("version", key=lambda s: s.map(natural_key), kind="stable")
    return table.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)


def final_model(long: pd.DataFrame) -> dict:
    """The paper's final model of a round (section 2.5): the version with the best mean Dice across runs
    (after orphan removal when the runs have it, as in round 2), then that version's best run.

    Returns version, its mean, SD and run count, the run's folder, seed and Dice, the response and epoch
    used, the checkpoint of that epoch (``checkpoints/last.ckpt`` or ``best.ckpt``) and ``text``, one
    sentence saying all this.
    """
    response = "dsc_orphan_removed" if has_response(long, "dsc_orphan_removed") else "dsc"
    top = version_summary(long, response).iloc[0]
    best = leaderboard(long[long["version"] == top["version"]], response=response).iloc[0]
    held = set(long["score"].dropna().astype(str)) if "score" in long else set()
    which = "last" if held == {"last"} else "best"
    what = f"validation Dice{' with orphan removal' if response != 'dsc' else ''} ({score_name(long)})"
    choice = {
        "version": str(top["version"]),
        "version_mean": float(top["mean"]),
        "version_sd": float(top["sd"]),
        "version_runs": int(top["runs"]),
        "run": str(best["run"]),
        "seed": best["seed"].item() if hasattr(best["seed"], "item") else best["seed"],
        "dsc": float(best[response]),
        "response": response,
        "score": "/".join(sorted(held)) or None,
        "checkpoint": str(RunFolder(str(best["run"])).checkpoint(which)),
    }
    sd = "" if math.isnan(choice["version_sd"]) else f" ± {choice['version_sd']:.3f}"
    choice["text"] = (
        f"Final model (the paper's rule: best version by mean {what} across runs, then its best run): "
        f"version {choice['version']} ({choice['version_mean']:.3f}{sd}, {choice['version_runs']} runs), "
        f"its best run seed {choice['seed']} ({choice['dsc']:.3f}), {choice['checkpoint']}"
    )
    return choice


def leaderboard_tables(long: pd.DataFrame, n: int, response: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(top ``n`` runs, per-version summary) with the leaderboard's columns in reading order."""
    board = leaderboard(long, n, response)
    first = ["rank", "version", "seed", response, "sd", "n_subjects"]
    board = board[first + [c for c in board.columns if c not in first]]
    return board, version_summary(long, response)
