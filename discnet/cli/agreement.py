"""``discnet agreement``: inter-reader Dice between readers' segmentations of the same scans (paper 2.2).

Example:
    discnet agreement --readers readers/anna readers/ben readers/carl --levels levels.csv -o agreement.csv
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.data.manifest import load_manifest
from discnet.errors import InputError
from discnet.evaluation.agreement import agreement_summary, agreement_table
from discnet.evaluation.evaluate import collect_label_files
from discnet.io import read_levels
from discnet.io.atomic import atomic_path
from discnet.io.guard import refuse_input


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "agreement",
        help="inter-reader Dice between every two readers' segmentations",
        description=(
            "Each READER_DIR holds one reader's label file per subject, paired across readers by subject name "
            "as in discnet evaluate. For every two readers and every subject both labelled: Dice of all discs "
            "(label > 0) and of each level (same label value). Prints mean ± SD and range over reader pairs "
            "and subjects, as the paper reports inter-reader Dice."
        ),
    )
    parser.add_argument(
        "--readers", nargs="+", type=Path, default=[], metavar="READER_DIR", help="one folder per reader (2 or more)"
    )
    parser.add_argument("positional_readers", nargs="*", type=Path, metavar="READER_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--levels", type=Path, metavar="CSV", help="levels.csv (label,level) or ITK-SNAP .label file")
    parser.add_argument("--subjects", type=Path, metavar="CSV", help="subjects.csv whose grades and ages to join")
    parser.add_argument("-o", "--output", type=Path, metavar="CSV", help="write the per-pair table here")
    parser.add_argument(
        "--volumes",
        nargs="+",
        type=Path,
        metavar="TABLE",
        help="volume statistics instead of Dice: A.csv B.csv (B the reference), or one table with sessions "
        "(first vs second); ICC(2,1), ICC(3,1), Bland-Altman, errors, within-subject CV per level; -o writes "
        "them and the Bland-Altman PNG beside",
    )
    parser.set_defaults(func=run)


def reader_files(folders: list[Path]) -> dict[str, dict]:
    """``{reader: {subject: path}}``; a reader is named after its folder (its path if names repeat)."""
    if len(folders) < 2:
        raise InputError(None, "agreement needs at least two READER_DIR folders", "give one folder per reader")
    for folder in folders:
        if not folder.is_dir():
            raise InputError(folder, "is not a folder", "give one folder of label files per reader")
    names = [f.resolve().name for f in folders]
    if len(set(names)) < len(names):
        names = [str(f) for f in folders]
    if len(set(names)) < len(names):
        raise InputError(folders[0], "a reader folder is given twice", "give each reader once")
    return {name: collect_label_files([folder]) for name, folder in zip(names, folders, strict=True)}


def format_agreement_summary(summary: pd.DataFrame) -> str:
    lines = [f"{'level':<8} {'n':>4}  {'mean':>6} {'SD':>6}  range"]
    for row in summary.itertuples(index=False):
        sd = "" if math.isnan(row.sd) else f"{row.sd:.3f}"
        lines.append(f"{row.level:<8} {row.n:>4}  {row.mean:>6.3f} {sd:>6}  {row.min:.3f}-{row.max:.3f}")
    return "\n".join(lines)


def format_volume_stats(stats: pd.DataFrame) -> str:
    lines = [f"{'level':<6} {'n':>3}  {'ICC(2,1) [95% CI]':<20} {'ICC(3,1) [95% CI]':<20} {'bias':>8}  "]
    lines[0] += f"{'95% limits':<17} {'MAE':>7} {'rel.err':>7} {'wCV':>6}"
    for r in stats.itertuples(index=False):
        icc = [
            f"{v:.3f} [{lo:.2f}, {hi:.2f}]"
            for v, lo, hi in ((r.icc21, r.icc21_low, r.icc21_high), (r.icc31, r.icc31_low, r.icc31_high))
        ]
        loa = " to ".join(f"{round(v):d}" if np.isfinite(v) else "nan" for v in (r.loa_low_mm3, r.loa_high_mm3))
        lines.append(
            f"{r.level:<6} {r.n:>3}  {icc[0]:<20} {icc[1]:<20} {r.bias_mm3:>8.1f}  {loa:<17} {r.mae_mm3:>7.1f} "
            f"{r.mean_relative_error:>7.3f} {r.wcv:>6.3f}"
        )
    return "\n".join(lines)


def run_volumes(args: argparse.Namespace) -> int:
    """Volume agreement of ``--volumes`` tables (see :mod:`discnet.evaluation.volume_agreement`)."""
    from discnet.analysis.figures import bland_altman_figure
    from discnet.evaluation.volume_agreement import (
        agreement_stats,
        paired_volumes,
        read_volume_table,
        session_pairs,
    )
    from discnet.io.pictures import save

    if args.readers or len(args.volumes) > 2:
        raise InputError(None, "--volumes takes one or two tables and no READER_DIR", "give A.csv B.csv")
    tables = [read_volume_table(path) for path in args.volumes]
    pairs = paired_volumes(*tables) if len(tables) == 2 else session_pairs(tables[0])
    if pairs.empty:
        what = "no subject, level and session in both tables" if len(tables) == 2 else "no subject with two sessions"
        raise InputError(args.volumes[0], f"has {what}", "check the subject names and levels of the tables")
    stats = agreement_stats(pairs)
    names = tuple(p.stem for p in args.volumes) if len(tables) == 2 else ("session 1", "session 2")
    print(f"disc volume agreement (mm^3), {names[0]} - {names[1]}, {len(pairs)} disc pair(s):")
    print(format_volume_stats(stats))
    if args.output is not None:
        if args.output.is_dir():
            raise InputError(args.output, "is a folder", "give a CSV file name, e.g. volume_agreement.csv")
        for path in args.volumes:
            if path.resolve() == args.output.resolve():
                raise InputError(args.output, "output path equals an input file", "choose another output file name")
        with atomic_path(args.output) as tmp:
            stats.to_csv(tmp, index=False)
        figure = save(
            bland_altman_figure(pairs, stats, names), args.output.with_name(f"{args.output.stem}_bland_altman.png")
        )
        print(f"wrote {args.output} and {figure}")
    return 0


def _listed(files: dict, most: int = 8) -> str:
    """The subject names of one reader's files, the first ``most`` of them."""
    names = list(files)
    if not names:
        return "none"
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def run(args: argparse.Namespace) -> int:
    if args.readers and args.positional_readers:
        raise InputError(None, "readers given both after --readers and as bare folders", "give them after --readers")
    args.readers = args.readers or args.positional_readers  # the bare form, as before
    if args.volumes:
        return run_volumes(args)
    levels = read_levels(args.levels)
    if args.output is not None and args.output.is_dir():
        raise InputError(args.output, "is a folder", "give a CSV file name, e.g. agreement.csv")
    readers = reader_files(args.readers)
    if args.output is not None:
        refuse_input(
            args.output, [*(f for files in readers.values() for f in files.values()), args.levels, args.subjects]
        )
    manifest = load_manifest(args.subjects, require_labels=False, check_files=False) if args.subjects else None
    table = agreement_table(readers, levels, manifest)
    if table.empty:
        found = "; ".join(f"{reader}: {_listed(files)}" for reader, files in readers.items())
        raise InputError(
            None,
            f"no subject is labelled by two readers (subjects found: {found})",
            "name each subject's files alike in every folder (the subject is the file name without _discs, -seg, ...)",
        )
    subjects = list(dict.fromkeys(s for files in readers.values() for s in files))
    for subject in subjects:
        missing = [reader for reader, files in readers.items() if subject not in files]
        if missing:
            print(f"note: subject {subject} has no file from reader(s) {', '.join(missing)}")
    if args.output is not None:
        with atomic_path(args.output) as tmp:
            table.to_csv(tmp, index=False)
    pairs = table[["reader_a", "reader_b"]].drop_duplicates().shape[0]
    print(f"inter-reader Dice, {pairs} reader pair(s) x {table['subject'].nunique()} subject(s):")
    print(format_agreement_summary(agreement_summary(table)))
    if args.output is not None:
        print(f"wrote {args.output}")
    return 0
