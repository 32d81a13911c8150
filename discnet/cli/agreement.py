"""``discnet agreement``: inter-reader Dice between readers' segmentations of the same scans (paper 2.2).

Example:
    discnet agreement readers/anna readers/ben readers/carl --levels levels.csv -o agreement.csv
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from discnet.agreement import agreement_summary, agreement_table
from discnet.data.manifest import load_manifest
from discnet.errors import InputError
from discnet.evaluate import collect_label_files
from discnet.io import read_levels
from discnet.io.atomic import atomic_path, refuse_input


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
    parser.add_argument("readers", nargs="+", type=Path, metavar="READER_DIR", help="one folder per reader")
    parser.add_argument("--levels", type=Path, metavar="CSV", help="levels.csv (label,level) or ITK-SNAP .label file")
    parser.add_argument("--subjects", type=Path, metavar="CSV", help="subjects.csv whose grades and ages to join")
    parser.add_argument("-o", "--output", type=Path, metavar="CSV", help="write the per-pair table here")
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


def format_summary(summary: pd.DataFrame) -> str:
    lines = [f"{'level':<8} {'n':>4}  {'mean':>6} {'SD':>6}  range"]
    for row in summary.itertuples(index=False):
        sd = "" if math.isnan(row.sd) else f"{row.sd:.3f}"
        lines.append(f"{row.level:<8} {row.n:>4}  {row.mean:>6.3f} {sd:>6}  {row.min:.3f}-{row.max:.3f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
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
        raise InputError(
            None, "no subject is labelled by two readers", "name each subject's files alike in every folder"
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
    print(format_summary(agreement_summary(table)))
    if args.output is not None:
        print(f"wrote {args.output}")
    return 0
