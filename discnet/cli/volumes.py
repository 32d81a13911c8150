"""``discnet volumes``: per-level disc volumes of label files.

Example:
    discnet volumes labels/ --levels levels.csv -o volumes.csv
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from discnet.errors import InputError
from discnet.evaluation.evaluate import collect_label_files
from discnet.evaluation.volumes import MIN_FRACTION, LabelMappingWarning, volumes_table
from discnet.io import read_levels
from discnet.io.atomic import atomic_path
from discnet.io.guard import refuse_input
from discnet.io.levels import check_known_names
from discnet.postprocess.level_check import OVERRIDE_FLAG, LevelOrderWarning


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "volumes",
        help="measure each disc's volume (mm^3 and cm^3) in label files",
        description=(
            "Count each disc level's voxels in every LABELS file and multiply by the voxel volume "
            "|det(affine)|, which stays right when a header mislabels its axes. Label values are those of "
            "--levels when the file uses only those; otherwise labels below "
            f"{MIN_FRACTION:.0%} of a disc's size are ignored as stray and, when exactly as many large labels "
            "as levels remain, they are matched by sorted value (smallest value to the levels file's smallest), "
            "with a warning. Level names must be L1-L2 ... L5-S1 and rows are sorted superior to inferior; a file "
            "whose level names contradict its discs' superior-to-inferior order in world coordinates is refused "
            f"({OVERRIDE_FLAG} measures it with a warning). Subject names come from file names as in discnet evaluate."
        ),
    )
    parser.add_argument("labels", nargs="+", type=Path, metavar="LABELS", help="label files or folders")
    parser.add_argument("--levels", type=Path, metavar="CSV", help="levels.csv (label,level) or ITK-SNAP .label file")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="CSV", help="volume table to write")
    parser.add_argument(
        OVERRIDE_FLAG, action="store_true", help="measure files whose level names contradict anatomy (with a warning)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    levels = check_known_names(read_levels(args.levels), args.levels)
    if args.output.is_dir():
        raise InputError(args.output, "is a folder", "give a CSV file name, e.g. volumes.csv")
    files = collect_label_files(args.labels)
    refuse_input(args.output, [*files.values(), args.levels])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LabelMappingWarning)
        warnings.simplefilter("always", LevelOrderWarning)
        table = volumes_table(files, levels, args.ignore_level_order)
    for warning in caught:
        if issubclass(warning.category, (LabelMappingWarning, LevelOrderWarning)):
            print(f"warning: {warning.message}", file=sys.stderr)
    with atomic_path(args.output) as tmp:
        table.to_csv(tmp, index=False)
    print(f"measured {len(table)} disc(s) in {len(files)} file(s); wrote {args.output}")
    return 0
