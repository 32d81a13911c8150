"""``discnet synth``: write a synthetic lumbar spine dataset (images, disc labels, levels.csv, subjects.csv).

Example:
    $ discnet synth demo_data --subjects 8 --seed 0 --sessions 2
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

from discnet.errors import InputError
from discnet.spine import GRADES


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="write synthetic lumbar spine MRI phantoms with disc labels",
        description=(
            "Write sagittal T2-like lumbar spine phantoms (NIfTI, non-RAS I,P,R orientation) with one label "
            "per disc level L1-L2..L5-S1, Pfirrmann grades that rise with age, scanner variation between "
            "scans and up to 4 sessions per subject with small posture changes; plus levels.csv and a "
            "subjects.csv manifest. The same seed gives the same data."
        ),
    )
    p.add_argument("out", type=Path, metavar="OUT", help="output folder (created if missing)")
    p.add_argument("--subjects", type=int, default=8, help="number of subjects (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--sessions", type=int, default=1, help="scans per subject, 1 to 4 (default 1)")
    p.add_argument(
        "--slice-count",
        "--slices",  # the old name, kept as an alias (elsewhere --slices picks slices to draw)
        dest="slices",
        type=int,
        nargs="+",
        metavar="N",
        help="sagittal slices per subject: N, or MIN MAX for a random count per subject (default 20 30)",
    )
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("SI", "AP"),
        help="in-plane size in voxels, superior-inferior and anterior-posterior (default 512 352)",
    )
    p.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        metavar=("SI", "AP", "LR"),
        help="voxel spacing in mm (default 0.52 0.52 3.0)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing subjects.csv in OUT")
    p.set_defaults(func=run)


def _check_size(size: list[int] | None, slices: list[int] | None) -> None:
    """InputError for a phantom size that is too small or beyond the image limits (checked before drawing)."""
    from discnet.io.limits import check_limit

    side = list(size or []) + list(slices or [])
    if any(n < 1 for n in side) or (size and min(size) < 16):
        raise InputError(
            "--size/--slice-count", f"got {' '.join(map(str, side))}", "give sizes of at least 16 and slices >= 1"
        )
    for n in side:
        check_limit("image_side", n, "--size/--slice-count", "voxels along one axis")
    si, ap = size or (512, 352)
    check_limit("image_voxels", si * ap * max(slices or [30]), "--size/--slice-count", "voxels per phantom")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file, not a folder", "give a folder name for the dataset")
    if (out / "subjects.csv").exists() and not args.overwrite:
        raise InputError(out / "subjects.csv", "already exists", "pass --overwrite or choose another folder")
    from discnet.phantoms.synthetic import generate_dataset  # numpy/scipy/nibabel only when used

    _check_size(args.size, args.slices)
    shape = {} if args.size is None else {"shape": tuple(args.size)}
    spacing = {} if args.spacing is None else {"spacing": tuple(args.spacing)}
    slices = {}
    if args.slices is not None:
        if len(args.slices) > 2:
            raise InputError("--slices", f"got {len(args.slices)} numbers", "give N or MIN MAX")
        slices = {"slices": (args.slices[0], args.slices[-1])}
    start = time.perf_counter()
    manifest = generate_dataset(
        out, args.subjects, seed=args.seed, sessions=args.sessions, **shape, **spacing, **slices
    )
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    first = {row["subject"]: row for row in rows}.values()
    grades = Counter(v for row in first for k, v in row.items() if k.startswith("grade_"))
    counts = ", ".join(f"{g}: {grades[g]}" for g in GRADES)
    print(
        f"wrote {len(rows)} scans of {args.subjects} subjects to {manifest} "
        f"in {time.perf_counter() - start:.1f} s (disc grades {counts})"
    )
    return 0
