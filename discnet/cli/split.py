"""``discnet split``: write the paper's semi-random train/validation split into ``subjects.csv``.

Example:
    discnet split subjects.csv --val 8 --seed 0            # updates subjects.csv in place
    discnet split subjects.csv --val 8 --seed 1 -o split.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from discnet.data.manifest import load_manifest_and_style, save_manifest
from discnet.data.split import format_split_summary, semi_random_split, split_distance, split_summary
from discnet.errors import InputError
from discnet.io.guard import manifest_files, refuse_input


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "split",
        help="split subjects into training and validation sets, balanced by degeneration grade",
        description=(
            "Choose N validation subjects so that their discs' Pfirrmann grade distribution (and age groups "
            "<60 / >=60) matches the training discs' as closely as possible; subjects with a grade V disc "
            "always train, a subject's sessions are never split, subjects marked 'test' are kept. Writes the "
            "'split' column of the manifest (atomically) and prints a Table-1-style summary."
        ),
    )
    parser.add_argument("manifest", type=Path, help="subjects.csv with subject, image and grade_<LEVEL> columns")
    parser.add_argument("--val", type=int, required=True, metavar="N", help="number of validation subjects")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same split (default 0)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the manifest here instead of updating MANIFEST in place",
    )
    parser.add_argument(
        "--candidates", type=int, default=10_000, metavar="K", help="random candidate splits to score (default 10000)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.candidates < 1:
        raise InputError(None, f"--candidates {args.candidates} must be at least 1", "give --candidates 1000 or more")
    if args.output is not None:
        refuse_input(args.output, manifest_files(args.manifest), "a file the manifest names")
    manifest, style = load_manifest_and_style(args.manifest, require_labels=False, check_files=False)
    result = semi_random_split(manifest, args.val, seed=args.seed, candidates=args.candidates, where=args.manifest)
    out = save_manifest(result, args.output or args.manifest, style)
    print(format_split_summary(split_summary(result)))
    print(f"balance cost {split_distance(result):.4f} (seed {args.seed}); wrote the split column to {out}")
    return 0
