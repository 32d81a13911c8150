"""``discnet report``: leaderboards, statistics and the paper's figures in one folder.

Example:
    discnet report multirun/train/r2-* --out-dir analysis/round2 -n 10
    discnet report multirun/train/r1-* --factors params,input --metrics metrics.csv \\
        --agreement agreement.csv -o analysis/round1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from discnet.cli.outputs import add_out_dir
from discnet.cli.stats import DESCRIPTION, add_analysis_options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="leaderboards, statistics and figures (Dice per version, levels and grades, inter-reader)",
        description=(
            "Write into DIR: stats.md and its CSV tables (as discnet stats), the leaderboards (as discnet "
            "leaderboard -o), runs.csv (the long table of runs, readable by --table) and PNG figures: "
            "dice_by_version.png (box plots of the runs' mean Dice with letters), leaderboard.png, "
            "orphan_removal.png (when runs have orphan-removed Dice), discs_by_level_grade.png (with --metrics) "
            "and agreement.png (with --agreement); final_model.json (the paper's choice: the version with the "
            "best mean, orphan-removed when present, then its best run) and epochs.csv (every epoch's Dice per "
            "run and subject, from the runs' val_scores.csv). " + DESCRIPTION
        ),
    )
    add_analysis_options(parser)
    parser.add_argument("-n", "--top", type=int, default=20, metavar="N", help="runs in the leaderboards (default 20)")
    add_out_dir(parser, "folder to write")
    parser.add_argument(
        "--measurements",
        type=Path,
        metavar="CSV",
        help="measurements_wide.csv of discnet measure or predict: measurements_by_level.png (and _by_grade)",
    )
    parser.set_defaults(func=run)


def measurement_report(path: Path, out: Path) -> list[Path]:
    """Figures of a measurements table (:func:`discnet.analysis.morphometry_figure.measurement_figures`)."""
    from discnet.analysis.morphometry_figure import measurement_figures
    from discnet.cli.stats import read_csv
    from discnet.errors import InputError

    table = read_csv(path)
    if "level" not in table.columns:
        raise InputError(path, "has no 'level' column", "give measurements_wide.csv from discnet measure or predict")
    return measurement_figures(table, out)


def run(args: argparse.Namespace) -> int:
    from discnet.analysis.report import write_report
    from discnet.cli.stats import analyse_inputs, load_inputs
    from discnet.errors import InputError
    from discnet.io.guard import protect

    if args.output.is_file():
        raise InputError(args.output, "is a file", "give a folder for the report")
    protect([args.table, args.metrics, args.agreement, args.measurements])
    if args.top < 1:
        raise InputError(None, f"-n {args.top} is not a positive number of runs", "give e.g. -n 20")
    if args.measurements is not None:
        measured = measurement_report(args.measurements, args.output)
        if not args.sweeps and args.table is None and args.metrics is None and args.agreement is None:
            print(f"wrote {len(measured)} files to {args.output}: {', '.join(p.name for p in measured)}")
            return 0
    inputs = load_inputs(args)
    analysis = analyse_inputs(args, inputs)
    written = write_report(
        args.output,
        inputs["long"],
        analysis,
        n=args.top,
        intro=inputs["intro"],
        discs=inputs["discs"],
        agreement=inputs["agreement"],
        pooled=args.pooled_sd,
        alpha=args.alpha,
    )
    for note in analysis.notes:
        print(f"note: {note}")
    if inputs["long"] is not None:
        from discnet.analysis.leaderboard import final_model

        print(final_model(inputs["long"])["text"])
    print(f"wrote {len(written)} files to {args.output}: {', '.join(p.name for p in written)}")
    return 0
