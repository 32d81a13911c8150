"""``discnet`` console script: one sub-command per verb, each in its own module of this package.

A verb module defines ``add_parser(subparsers)`` which registers its parser and sets
``func=run`` where ``run(args) -> int | None``. Only the module of the verb being run is imported (the
others are listed with their one-line summary), so a command starts without importing every library.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from discnet import __version__
from discnet.errors import InputError

VERBS = [
    "synth",
    "split",
    "predict",
    "overlay",
    "evaluate",
    "volumes",
    "measure",
    "agreement",
    "leaderboard",
    "stats",
    "report",
    "convert",
    "export",
    "train",
]


SUMMARIES = {
    "synth": "write synthetic lumbar spine MRI phantoms with disc labels",
    "split": "split subjects into training and validation sets, balanced by degeneration grade",
    "predict": "segment and measure the discs of scans with trained models",
    "overlay": "draw sagittal slices with a disc segmentation over the scan (quality control)",
    "evaluate": "score predicted disc label maps against ground truth (Dice, volume ratio, ...)",
    "volumes": "measure each disc's volume (mm^3 and cm^3) in label files",
    "measure": "per-disc morphometry: volume, mid-sagittal area, heights, depth, width, centroid, intensity",
    "agreement": "inter-reader Dice between every two readers' segmentations",
    "leaderboard": "rank training runs by mean validation Dice (top N runs, per-version mean +- SD)",
    "stats": "the paper's statistics: mixed model, pairwise tests with letters, disc-level tests",
    "report": "leaderboards, statistics and figures (Dice per version, levels and grades, inter-reader)",
    "convert": "convert a Keras model (.h5, .keras, .weights.h5) into a discnet checkpoint",
    "export": "export a checkpoint's network to TorchScript or ONNX",
    "train": "train a U-Net with Hydra overrides, as train.py (discnet train --help lists them)",
}


#: Verbs that read images: ``--spacing`` gives TIFF stacks without spacing tags their voxel size.
READS_IMAGES = ("predict", "overlay", "evaluate", "volumes", "measure", "agreement")


def _add_tiff_spacing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spacing",
        dest="tiff_spacing",
        type=float,
        nargs=3,
        metavar=("PAGE", "ROW", "COLUMN"),
        help="voxel spacing in mm of TIFF stacks without spacing tags (between pages, rows, columns)",
    )


#: Verbs that write figures under fixed names: ``--figure-format`` picks their picture format.
WRITES_FIGURES = ("report", "leaderboard", "agreement")


def _add_figure_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--figure-format",
        choices=("png", "jpg", "pdf", "svg"),
        help="picture format of the figures written (default png)",
    )


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``selected`` verb's module is imported (all of them when None and unsummarised)."""
    parser = argparse.ArgumentParser(
        prog="discnet", description="Intervertebral disc segmentation and measurement in spine MRI."
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"discnet {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in VERBS:
        if verb == "train" or (verb != selected and verb in SUMMARIES):
            sub.add_parser(verb, help=SUMMARIES[verb], add_help=False)
        else:
            importlib.import_module(f"discnet.cli.{verb}").add_parser(sub)
            if verb in READS_IMAGES:
                _add_tiff_spacing(sub.choices[verb])
            if verb in WRITES_FIGURES:
                _add_figure_format(sub.choices[verb])
            # --debug also after the verb (``discnet predict ... --debug``); SUPPRESS keeps the global one.
            sub.choices[verb].add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected == "train":  # Hydra parses its own command line
        from discnet.cli.train import main as train

        return train(argv[argv.index("train") + 1 :])
    args = build_parser(selected if selected in VERBS else None).parse_args(argv)
    from discnet.io.pictures import figure_format  # after parsing: --help stays quick
    from discnet.io.tiff import given_spacing

    try:
        with given_spacing(getattr(args, "tiff_spacing", None)), figure_format(getattr(args, "figure_format", None)):
            code = args.func(args)
    except InputError as err:
        if args.debug:
            raise
        print(f"discnet {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"discnet {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
