"""``discnet stats``: the paper's statistics on sweeps and on per-disc results (sections 2.2, 2.5, 2.7).

Example:
    discnet stats multirun/train/r1-* --factors params,input --out-dir analysis/round1
    discnet stats multirun/train/r2-* --out-dir analysis/round2
    discnet stats --metrics metrics.csv --agreement agreement.csv --out-dir analysis/discs
"""

from __future__ import annotations

import argparse
from pathlib import Path

from discnet.cli.leaderboard import SOURCES_HELP, add_run_sources, load_run_sources
from discnet.cli.outputs import add_out_dir


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``discnet stats`` and ``discnet report``."""
    add_run_sources(parser)
    parser.add_argument(
        "--factors",
        default="version",
        metavar="LIST",
        help="fixed factors of the mixed model, comma-separated (default version; round 1: params,input)",
    )
    parser.add_argument(
        "--pooled-sd",
        action="store_true",
        help="pairwise t-tests with the SD pooled over all versions (R's pairwise.t.test default) instead of Welch",
    )
    parser.add_argument("--metrics", type=Path, metavar="CSV", help="per-disc metrics from discnet evaluate")
    parser.add_argument("--agreement", type=Path, metavar="CSV", help="inter-reader table from discnet agreement")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the letters (default 0.05)")
    parser.add_argument(
        "--letters",
        choices=("multcompView", "cld"),
        default="multcompView",
        help="compact-letter algorithm: R's multcompView::multcompLetters (default, insert-absorb) or "
        "multcomp::cld (insert-absorb and sweep, groups ordered by mean)",
    )


DESCRIPTION = (
    "Model comparison: a linear mixed model of each run's per-subject validation Dice with the chosen fixed "
    "factors and a random intercept per subject; each factor's p-value from a likelihood-ratio test of "
    "maximum-likelihood fits with and without it. Then the versions' run means (mean Dice across subjects, one "
    "value per run) are compared pairwise by Welch t-tests, Holm-corrected, summarised as letters (versions "
    "sharing no letter differ). Repeated for orphan-removed Dice when the runs have it. Disc level (--metrics, "
    "--agreement): Kruskal-Wallis tests of Dice (and volume ratio) across levels and across grades, then "
    "pairwise two-sided Wilcoxon rank-sum tests, Holm-corrected, with letters; inter-reader Dice is first "
    "averaged over reader pairs per disc. " + SOURCES_HELP
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="the paper's statistics: mixed model, pairwise tests with letters, disc-level tests",
        description=DESCRIPTION
        + " With -o: stats.md, lmm.csv, pairwise.csv, letters.csv (and kruskal.csv) are written there.",
    )
    add_analysis_options(parser)
    add_out_dir(parser, "write stats.md and the CSV tables here", required=False)
    parser.set_defaults(func=run)


def read_csv(path: Path):
    import pandas as pd

    from discnet.errors import InputError

    try:
        return pd.read_csv(path, dtype={"subject": str, "level": str})
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot be read as CSV ({err})", "give the CSV written by discnet") from err


def load_inputs(args: argparse.Namespace) -> dict:
    """Runs (long table), per-disc metrics and agreement (table, per-disc rows) named by the options."""
    from discnet.analysis.stats import disc_rows
    from discnet.errors import InputError

    if not args.sweeps and args.table is None and args.metrics is None and args.agreement is None:
        raise InputError(None, "nothing to analyse", "give SWEEP_DIR folders, --table, --metrics or --agreement")
    if not 0 < args.alpha < 1:
        raise InputError(None, f"--alpha {args.alpha} is not between 0 and 1", "give e.g. --alpha 0.05")
    factors = [f.strip() for f in args.factors.split(",") if f.strip()]
    inputs = {"factors": factors, "long": None, "discs": None, "agreement": None, "intro": []}
    if args.sweeps or args.table is not None:
        from discnet.analysis.report import describe_runs

        long = load_run_sources(args)
        unknown = [f for f in factors if f not in long or long[f].isna().all()]
        if unknown:
            raise InputError(
                None,
                f"the runs have no factor {', '.join(unknown)}",
                "choose --factors among version, params, input, round",
            )
        inputs["long"] = long
        inputs["intro"] += describe_runs(long, [*args.sweeps, *([args.table] if args.table else [])])
    if args.metrics is not None:
        inputs["discs"] = disc_rows(read_csv(args.metrics), args.metrics, ("dice", "volume_ratio"))
        inputs["intro"].append(f"Per-disc metrics: {len(inputs['discs'])} discs from {args.metrics}.")
    if args.agreement is not None:
        table = read_csv(args.agreement)
        inputs["agreement"] = (table, disc_rows(table, args.agreement, ("dice",)))
        inputs["intro"].append(f"Inter-reader agreement: {len(inputs['agreement'][1])} discs from {args.agreement}.")
    return inputs


def analyse_inputs(args: argparse.Namespace, inputs: dict):
    from discnet.analysis.stats import analyse

    agreement = inputs["agreement"][1] if inputs["agreement"] is not None else None
    return analyse(
        inputs["long"], inputs["factors"], inputs["discs"], agreement, args.pooled_sd, args.alpha, args.letters
    )


def run(args: argparse.Namespace) -> int:
    from discnet.analysis.report import stats_markdown, write_stats
    from discnet.errors import InputError
    from discnet.io.guard import protect

    if args.output is not None and args.output.is_file():
        raise InputError(args.output, "is a file", "give a folder for stats.md and the CSV tables")
    protect([getattr(args, "table", None), args.metrics, args.agreement])
    inputs = load_inputs(args)
    analysis = analyse_inputs(args, inputs)
    print(stats_markdown(analysis, inputs["intro"], args.pooled_sd, args.alpha))
    if args.output is not None:
        for path in write_stats(analysis, args.output, inputs["intro"], args.pooled_sd, args.alpha):
            print(f"wrote {path}")
    return 0
