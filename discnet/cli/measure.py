"""``discnet measure``: per-disc morphometry and intensities of label maps (with their scans).

Example:
    discnet measure sub11_discs.nii.gz --images sub11_T2w.nii.gz --out-dir measurements/
    discnet measure --subjects subjects.csv --levels levels.csv --out-dir measurements/
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from discnet.cli.outputs import add_out_dir
from discnet.data.manifest import discs_table, load_manifest
from discnet.data.preprocess import InputConfig
from discnet.errors import InputError
from discnet.evaluation.evaluate import collect_label_files, subject_key
from discnet.evaluation.morphometry import UNITS, measurements_table, tidy
from discnet.evaluation.volumes import LabelMappingWarning
from discnet.io import read_levels
from discnet.io.atomic import atomic_path, full_suffix
from discnet.io.files import SUFFIXES, volume_format
from discnet.io.guard import protect

TIDY_NAME, WIDE_NAME = "measurements.csv", "measurements_wide.csv"
#: Files ending so (before the extension) are not scans when an --images folder is listed.
NOT_IMAGES = ("_discs", "_labels", "_label", "_dseg", "_seg", "_pred", "_mask", "_prob", "_uncertainty")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "measure",
        help="per-disc morphometry: volume, mid-sagittal area, heights, depth, width, centroid, intensity",
        description=(
            "Measure every disc of each LABELS map in the scanner's physical space (any orientation, anisotropic "
            f"voxels): {', '.join(UNITS)} (definitions in the README). With --images (paired by subject name as "
            "in discnet evaluate) or --subjects (its image and label columns, sessions and grades) the intensities too. "
            f"Writes OUT_DIR/{TIDY_NAME} (subject, session, level, measure, value, unit) and {WIDE_NAME}."
        ),
    )
    parser.add_argument("labels", nargs="*", type=Path, metavar="LABELS", help="label files or folders")
    parser.add_argument("--images", nargs="+", type=Path, metavar="IMAGE", help="scans (files or folders)")
    parser.add_argument("--subjects", type=Path, metavar="CSV", help="subjects.csv with image and label columns")
    parser.add_argument("--levels", type=Path, metavar="CSV", help="levels.csv (label,level) or ITK-SNAP .label file")
    parser.add_argument(
        "--stretch",
        choices=["volume", "slice", "none"],
        default="volume",
        help="contrast stretch of the *_stretched intensities (default volume, as input=stretched)",
    )
    parser.add_argument("--lower", type=float, default=2.5, help="stretch percentile mapped to 0 (default 2.5)")
    parser.add_argument("--upper", type=float, default=97.5, help="stretch percentile mapped to 255 (default 97.5)")
    add_out_dir(parser, "folder to write")
    parser.set_defaults(func=run)


def image_files(paths: list[Path]) -> dict[str, Path]:
    """``{subject: scan}`` of image files and folders (label maps and probability maps in folders skipped)."""
    found: dict[str, Path] = {}
    for item in paths:
        if not item.exists():
            raise InputError(item, "not found", "check the path")
        files = [item]
        if item.is_dir():
            files = [
                f
                for f in sorted(item.iterdir())
                if f.is_file() and not f.name.startswith(".") and full_suffix(f).lower() in SUFFIXES
            ]
            files = [f for f in files if not f.name[: -len(full_suffix(f))].lower().endswith(NOT_IMAGES)]
        for path in files:
            volume_format(path)
            key = subject_key(path)
            if key in found and found[key] != path:
                raise InputError(path, f"names subject '{key}' like {found[key]}", "give one scan per subject")
            found[key] = path
    return found


def _scans(args: argparse.Namespace) -> list[tuple[str, int, str, str | None]]:
    if args.subjects is not None:
        if args.labels or args.images:
            raise InputError(args.subjects, "--subjects names the files itself", "drop LABELS and --images")
        df = load_manifest(args.subjects, require_labels=True, check_files=True)
        return [(str(r.subject), int(r.session), r.label, r.image) for r in df.itertuples()]
    if not args.labels:
        raise InputError(None, "nothing to measure", "give label files or folders, or --subjects subjects.csv")
    labels = collect_label_files(args.labels)
    images = image_files(args.images) if args.images else {}
    missing = [s for s in labels if args.images and s not in images]
    if missing:
        raise InputError(args.images[0], f"has no scan for subject(s) {', '.join(missing)}", "give each scan")
    return [
        (subject, 1, str(path), str(images[subject]) if subject in images else None) for subject, path in labels.items()
    ]


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.lower < args.upper <= 100:
        raise InputError(
            None, f"--lower {args.lower} / --upper {args.upper} are not percentiles", "give 0 <= lower < upper <= 100"
        )
    if args.output.is_file():
        raise InputError(args.output, "is a file", "give a folder for the measurements")
    protect([*args.labels, *(args.images or []), args.subjects, args.levels])
    levels = read_levels(args.levels)
    scans = _scans(args)
    cfg = InputConfig(stretch=args.stretch, lower=args.lower, upper=args.upper)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LabelMappingWarning)
        wide = measurements_table(scans, levels, cfg)
    if args.subjects is not None:
        grades = discs_table(load_manifest(args.subjects, require_labels=True, check_files=False))
        if grades["grade"].notna().any():
            wide = wide.merge(grades[["subject", "level", "grade"]], on=["subject", "level"], how="left")
    for warning in caught:
        if issubclass(warning.category, LabelMappingWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
    args.output.mkdir(parents=True, exist_ok=True)
    for name, table in ((WIDE_NAME, wide), (TIDY_NAME, tidy(wide))):
        with atomic_path(args.output / name) as tmp:
            table.to_csv(tmp, index=False)
    shown = ["subject", "level", "volume", "midsagittal_area", "height_anterior", "height_middle", "height_posterior"]
    shown += ["depth", "width", "intensity_median"]
    if len(wide):
        print(wide[shown].round(1).to_string(index=False))
    print(f"measured {len(wide)} disc(s) in {len(scans)} scan(s); wrote {args.output / TIDY_NAME} and {WIDE_NAME}")
    return 0
