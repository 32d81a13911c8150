"""``discnet evaluate``: Dice, precision, recall and volume ratio of predictions against ground truth.

Example:
    discnet evaluate --pred predictions/ --truth labels/ --levels levels.csv -o metrics.csv
    discnet evaluate --pred predictions/ --subjects subjects.csv -o metrics.csv    # truth = label column
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

from discnet.data.manifest import load_manifest
from discnet.errors import InputError
from discnet.evaluation.evaluate import (
    GridNote,
    collect_label_files,
    evaluate_files,
    manifest_names,
    mean_sd,
    pair_files,
    summary_table,
)
from discnet.io import read_levels
from discnet.io.atomic import atomic_path
from discnet.io.guard import refuse_input
from discnet.postprocess.level_check import OVERRIDE_FLAG, LevelOrderWarning


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score predicted disc label maps against ground truth (Dice, volume ratio, ...)",
        description=(
            "Score each prediction against its ground truth: one row for all discs together (level 'all', "
            "any label > 0) and one per disc level, where every predicted voxel counts against the nearest "
            "true disc. Files pair by subject name: the file name without its extension and without trailing "
            "_discs, _labels, _label, _dseg, _seg, _pred, _mask, _T1w, _T2w (or -discs, -seg, ... as ITK-SNAP names "
            "them; one prediction and one truth always pair; unpaired files are listed and skipped) (so sub11_T2w_discs.nii.gz pairs "
            "with sub11_discs.nii.gz); in folders, *_T1w, *_T2w and *_prob files are skipped. With --subjects "
            "and no --truth, the manifest's label column is the truth and predictions are named "
            "<subject>_discs.* (<subject>_ses<N>_discs.* for repeated sessions), as discnet predict writes "
            "them. Grades and ages from --subjects are joined onto the rows. A truth whose level names contradict "
            f"its discs' superior-to-inferior order in world coordinates is refused ({OVERRIDE_FLAG}: scored "
            "with a warning)."
        ),
    )
    parser.add_argument("--pred", nargs="+", type=Path, required=True, metavar="PRED", help="prediction files/folders")
    parser.add_argument("--truth", nargs="+", type=Path, metavar="TRUTH", help="ground-truth label files/folders")
    parser.add_argument("--subjects", type=Path, metavar="CSV", help="subjects.csv: truth (label column), grades, ages")
    parser.add_argument("--levels", type=Path, metavar="CSV", help="levels.csv (label,level) or ITK-SNAP .label file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="CSV", help="metrics table to write")
    parser.add_argument(
        OVERRIDE_FLAG, action="store_true", help="score truths whose level names contradict anatomy (with a warning)"
    )
    parser.set_defaults(func=run)


def _manifest_truths(manifest: pd.DataFrame) -> dict[str, Path]:
    names = manifest_names(manifest)
    labels = dict(zip(zip(manifest["subject"], manifest["session"], strict=True), manifest["label"], strict=True))
    return {name: Path(labels[key]) for name, key in names.items() if isinstance(labels[key], str)}


def _pairs(args: argparse.Namespace, manifest: pd.DataFrame | None) -> tuple[dict, list[str], list[str]]:
    preds = collect_label_files(args.pred)
    if args.truth:
        return pair_files(preds, collect_label_files(args.truth))
    if manifest is None:
        raise InputError(None, "no ground truth given", "give --truth files/folders or --subjects subjects.csv")
    return pair_files(preds, _manifest_truths(manifest))


def format_evaluation_summary(table: pd.DataFrame) -> str:
    """Mean ± SD Dice and volume ratio for all discs and per level (and per grade when known)."""
    lines = []
    for by in ("level", "grade"):
        summary = summary_table(table, by=by)
        if summary.empty:
            continue
        lines.append(f"{by:<8} {'n':>3}  {'Dice':<15} {'range':<13} volume ratio")
        for row in summary.itertuples(index=False):
            d = row._asdict()
            span = f"{d['dice_min']:.3f}-{d['dice_max']:.3f}"
            ratio = mean_sd(d["volume_ratio_mean"], d["volume_ratio_sd"])
            lines.append(
                f"{str(d[by]):<8} {d['dice_n']:>3}  {mean_sd(d['dice_mean'], d['dice_sd']):<15} {span:<13} {ratio}"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    levels = read_levels(args.levels)
    if args.output.is_dir():
        raise InputError(args.output, "is a folder", "give a CSV file name, e.g. metrics.csv")
    manifest = None
    if args.subjects is not None:
        manifest = load_manifest(args.subjects, require_labels=False, check_files=False)
    pairs, unpaired, unpaired_preds = _pairs(args, manifest)
    refuse_input(args.output, [*(f for pair in pairs.values() for f in pair), args.levels, args.subjects])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LevelOrderWarning)
        warnings.simplefilter("always", GridNote)
        table = evaluate_files(pairs, levels, manifest, args.ignore_level_order)
    for warning in caught:
        if issubclass(warning.category, LevelOrderWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        elif issubclass(warning.category, GridNote):
            print(f"note: {warning.message}")
    with atomic_path(args.output) as tmp:
        table.to_csv(tmp, index=False)
    if manifest is not None:
        unknown = sorted(set(pairs) - set(manifest_names(manifest)))
        if unknown:
            print(f"note: no manifest row (grade, age) for {len(unknown)} subject(s): {', '.join(unknown)}")
    if unpaired:
        print(f"note: {len(unpaired)} truth file(s) without a prediction were skipped: {', '.join(unpaired)}")
    if unpaired_preds:
        print(
            f"note: {len(unpaired_preds)} prediction(s) without a truth file were skipped: {', '.join(unpaired_preds)}"
        )
    print(format_evaluation_summary(table))
    discs = int((table["level"] != "all").sum())
    print(f"evaluated {len(pairs)} subject(s), {discs} disc(s); wrote {args.output}")
    return 0
