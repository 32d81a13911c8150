"""``discnet overlay``: a picture of sagittal slices with a segmentation (and its errors) on the scan.

Example:
    discnet overlay sub11_T2w.nii.gz sub11_discs.nii.gz -o sub11.png
    discnet overlay sub11_T2w.nii.gz pred.nii.gz truth.nii.gz -o sub11.png --slices 25,33,41
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from discnet.errors import InputError
from discnet.io import read_levels, read_volume
from discnet.io.atomic import full_suffix
from discnet.io.guard import refuse_input
from discnet.io.volume import GEOMETRY_ATOL_MM, Volume


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "overlay",
        help="draw sagittal slices with a disc segmentation over the scan (quality control)",
        description=(
            "Draw sagittal slices (superior up, anterior left) of IMAGE with PRED on top. Without TRUTH each "
            "disc level has its own colour; with TRUTH the paper's Figure 6 colours show agreement: yellow = "
            "correct, green = false negative, red = false positive, and the title gives the Dice score."
        ),
    )
    parser.add_argument("image", type=Path, help="the scan (NIfTI, NRRD, MHA, GIPL, TIFF or a DICOM folder)")
    parser.add_argument("pred", type=Path, nargs="?", help="the predicted label map, on the scan's grid")
    parser.add_argument("truth", type=Path, nargs="?", help="optional ground-truth label map, on the scan's grid")
    # The same maps named as discnet evaluate names them (IMAGE --pred P [--truth T]).
    parser.add_argument("--pred", dest="pred_option", type=Path, metavar="PRED", help="PRED, named as in evaluate")
    parser.add_argument("--truth", dest="truth_option", type=Path, metavar="TRUTH", help="TRUTH, named as in evaluate")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="PNG", help="picture to write (.png)")
    parser.add_argument(
        "--slices",
        type=slice_list,
        metavar="X,Y",
        help="sagittal slices, counted from the patient's left (default: the central disc slice)",
    )
    parser.add_argument(
        "--montage",
        type=int,
        metavar="N",
        help="without --slices: N slices across the disc column, first to last slice with disc (predict --qc: 5)",
    )
    parser.add_argument("--levels", type=Path, metavar="CSV", help="levels.csv or ITK-SNAP .label naming label values")
    parser.add_argument("--subject", help="name in the title (default: the prediction's file name)")
    parser.set_defaults(func=run)


def slice_list(text: str) -> list[int]:
    """``"30,31"`` -> ``[30, 31]``."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of slice numbers") from err


def read_on_grid(path: Path, image: Volume) -> np.ndarray:
    """A label map's voxels, checked to lie on ``image``'s grid."""
    label = read_volume(path, kind="label")
    if label.shape != image.shape:
        raise InputError(path, f"has shape {label.shape}, the image {image.shape}", "give a label map of this scan")
    if not np.allclose(label.affine, image.affine, rtol=0, atol=GEOMETRY_ATOL_MM):
        raise InputError(path, "has another geometry (spacing/origin/direction) than the image", "resample it first")
    return label.array


def run(args: argparse.Namespace) -> int:
    from discnet.inference.qc import write_overlay  # matplotlib is slow to import; other verbs do not need it

    if args.montage is not None and not 1 <= args.montage <= 50:
        raise InputError(None, f"--montage {args.montage} is not in 1..50", "give the number of slices, e.g. 5")
    for name in ("pred", "truth"):
        given, option = getattr(args, name), getattr(args, f"{name}_option")
        if given is not None and option is not None:
            raise InputError(None, f"{name.upper()} given twice (as an argument and as --{name})", "give it once")
        setattr(args, name, given if option is None else option)
    if args.pred is None:
        raise InputError(None, "no prediction given", "give IMAGE PRED [TRUTH] or IMAGE --pred PRED [--truth TRUTH]")
    refuse_input(args.output, [args.image, args.pred, args.truth, args.levels], "an input")
    image = read_volume(args.image)
    pred = read_on_grid(args.pred, image)
    truth = read_on_grid(args.truth, image) if args.truth is not None else None
    subject = args.subject or args.pred.name[: len(args.pred.name) - len(full_suffix(args.pred))]
    try:
        out = write_overlay(
            args.output,
            image,
            pred,
            truth,
            slices=args.slices,
            subject=subject,
            levels=read_levels(args.levels),
            montage=args.montage,
        )
    except OSError as err:
        raise InputError(args.output, f"cannot be written ({err.strerror or err})", "choose a writable folder") from err
    print(f"wrote {out}")
    return 0
