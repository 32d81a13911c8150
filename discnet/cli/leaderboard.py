"""``discnet leaderboard``: the top runs of sweeps by mean validation Dice (paper Fig 4B, 5C, 5D).

Example:
    discnet leaderboard multirun/train -n 20 --out-dir analysis/
    discnet leaderboard multirun/train/r2-* --round 2 -n 10
    discnet leaderboard --table runs.csv

The same ranking in Weights & Biases: each run logs its summary (``last_val_dsc`` = mean validation Dice
across subjects at the last epoch, which is what this command ranks by; ``best_val_dsc`` at the best
epoch, as ``--score best``; plus ``version``, ``seed``, ``round``) and is grouped by version. In the
project's Runs table, show the columns ``version`` and ``seed`` and sort by ``last_val_dsc`` descending:
the first N rows are this leaderboard; group the table by ``version`` (Group) to see each version's mean
across runs. From Python: ``wandb.Api().runs("ENTITY/discnet", order="-summary_metrics.last_val_dsc")``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from discnet.cli.outputs import add_out_dir

SOURCES_HELP = (
    "Runs are read from the summary.json of every run folder at or below each SWEEP_DIR (failed or "
    "unfinished runs are skipped with a note; runs trained on their validation subjects, data.train_on_val, "
    "are left out with a note), and/or from --table: a long CSV with columns version,seed,subject,dsc "
    "(optionally dsc_orphan_removed, score, run, and factor columns such as params, input). Runs are one "
    "version only when their config.yaml differs in nothing but the seed (and paths, logging): runs of one "
    "version name that differ otherwise are shown as separate versions named after the settings that differ. "
    "Each run is scored at its last epoch (--score last, the model the run ended with, as the paper) or its "
    "best epoch (--score best, the maximum over its validations: optimistic)."
)


def add_run_sources(parser: argparse.ArgumentParser) -> None:
    """SWEEP_DIR..., --table and --round: where the runs come from (shared by leaderboard, stats, report)."""
    parser.add_argument("sweeps", nargs="*", type=Path, metavar="SWEEP_DIR", help="sweep output folders")
    parser.add_argument("--table", type=Path, metavar="CSV", help="long table of runs (version,seed,subject,dsc)")
    parser.add_argument("--round", type=int, metavar="N", help="keep only runs of this tuning round (1 or 2)")
    parser.add_argument(
        "--score",
        choices=("last", "best"),
        default="last",
        help="score each run at its last epoch (default) or at its best epoch",
    )


def load_run_sources(args: argparse.Namespace):
    """The long table of runs named by :func:`add_run_sources` options; prints notes on skipped runs."""
    from discnet.analysis.runs import collect, subject_sets_differ
    from discnet.errors import InputError

    long, notes = collect(args.sweeps, args.table, args.score)
    for note in notes:
        print(f"note: {note}")
    if args.round is not None:
        import pandas as pd

        long = long[pd.to_numeric(long["round"], errors="coerce") == args.round]
        if long.empty:
            where = ", ".join(str(s) for s in args.sweeps) or args.table
            raise InputError(where, f"has no run of round {args.round}", "leave out --round or give other folders")
    if subject_sets_differ(long):
        print("note: the runs were not all validated on the same subjects")
    return long


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "leaderboard",
        help="rank training runs by mean validation Dice (top N runs, per-version mean ± SD)",
        description=(
            "Rank runs by their mean validation Dice across subjects (the last_val_dsc each run logged, or "
            "best_val_dsc with --score best) and summarise each version (mean ± SD across runs). When runs "
            "have orphan-removed Dice that leaderboard follows. Then the final model as the paper chose it: "
            "the version with the best mean (orphan-removed when present), then its best run. "
            + SOURCES_HELP
            + " With -o: leaderboard.csv, leaderboard_versions.csv and leaderboard.png (and "
            "*_orphan_removed.*) and final_model.json are written there. W&B gives the same ranking: sort "
            "the runs table by last_val_dsc, group by version."
        ),
    )
    add_run_sources(parser)
    parser.add_argument("-n", "--top", type=int, default=20, metavar="N", help="runs to list (default 20)")
    add_out_dir(parser, "write CSV and PNG files here", required=False)
    parser.set_defaults(func=run)


def _fmt(value, digits=3) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def print_tables(board, versions, response: str, total: int, score: str) -> None:
    """The leaderboard (with each run's folder) and version summary as terminal tables (rich)."""
    from rich.console import Console
    from rich.table import Table

    name = "Dice with orphan removal" if response == "dsc_orphan_removed" else "Dice"
    top = Table(title=f"Top {len(board)} of {total} runs by mean validation {name} ({score})")
    for column in ("rank", "version", "seed", "mean", "SD (subjects)", "subjects", "folder"):
        top.add_column(column, justify="left" if column in ("version", "folder") else "right")
    for r in board.itertuples():
        row = [str(r.rank), str(r.version), str(r.seed), _fmt(getattr(r, response)), _fmt(r.sd), str(r.n_subjects)]
        top.add_row(*row, str(r.run))
    summary = Table(title=f"Versions by mean validation {name} ({score}) across runs")
    columns = ["version", "runs", "mean ± SD", "best", "worst", "best seed"]
    if "gain_mean" in versions:
        columns.append("gain from orphan removal")
    for column in columns:
        summary.add_column(column, justify="left" if column == "version" else "right")
    for r in versions.itertuples():
        row = [
            str(r.version),
            str(r.runs),
            f"{_fmt(r.mean)} ± {_fmt(r.sd)}",
            _fmt(r.best),
            _fmt(r.worst),
            str(r.best_seed),
        ]
        if "gain_mean" in versions:
            row.append(f"{r.gain_mean:+.3f} ± {_fmt(r.gain_sd)}")
        summary.add_row(*row)
    console = Console(width=max(Console().width, 160))
    console.print(top)
    console.print(summary)


def run(args: argparse.Namespace) -> int:
    from discnet.analysis.leaderboard import final_model, leaderboard_tables
    from discnet.analysis.report import write_leaderboards, write_text
    from discnet.analysis.runs import RESPONSES, has_response, run_means, score_name
    from discnet.errors import InputError
    from discnet.io.guard import protect

    if args.top < 1:
        raise InputError(None, f"-n {args.top} is not a positive number of runs", "give e.g. -n 20")
    if args.output is not None and args.output.is_file():
        raise InputError(args.output, "is a file", "give a folder for the leaderboard files")
    protect([args.table])
    long = load_run_sources(args)
    for response in (r for r in RESPONSES if has_response(long, r)):
        board, versions = leaderboard_tables(long, args.top, response)
        print_tables(board, versions, response, run_means(long, response).shape[0], score_name(long))
    choice = final_model(long)
    print(choice["text"])
    if args.output is not None:
        for path in write_leaderboards(long, args.output, args.top):
            print(f"wrote {path}")
        print(f"wrote {write_text(json.dumps(choice, indent=2) + chr(10), args.output / 'final_model.json')}")
    return 0
