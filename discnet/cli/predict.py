"""``discnet predict``: segment the discs of scans with one model or an ensemble, and measure them.

Example:
    discnet predict --ckpt runs/a/checkpoints/best.ckpt scans/ --out-dir predictions
    discnet predict --ckpt a.ckpt --ckpt b.ckpt subjects.csv --out-dir predictions --qc --probabilities
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from discnet.cli.outputs import add_out_dir
from discnet.data.preprocess import preset_names
from discnet.errors import InputError
from discnet.inference.backends import CHOICES as BACKEND_CHOICES
from discnet.inference.backends import prepare
from discnet.inference.batch import VOLUMES, collect_inputs, plan_jobs, with_uncertainty_maps
from discnet.inference.outputs import UNCERTAINTY
from discnet.inference.predict import levels_and_values, load_models
from discnet.inference.predict_scans import PredictOptions, predict_scans
from discnet.inference.uncertainty import read_reference
from discnet.io import read_levels
from discnet.spine import FLIPS, SURPLUS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="segment and measure the discs of scans with trained models",
        description=(
            "Segment the intervertebral discs of each INPUT scan with a trained model (several --ckpt: their "
            "probabilities are averaged), remove orphans, name the discs by level and write "
            "OUT/<name>_discs.nii.gz in exactly the scan's geometry, plus OUT/volumes.csv with each disc's "
            "volume (the columns of discnet volumes; rows of other subjects from an earlier run into OUT are kept, "
            "a scan without any disc gets a row 'no disc found'). INPUT: image files, folders (their image files, or one DICOM series), or a subjects.csv "
            "(its image column; subject names become output names)."
        ),
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files, folders or subjects.csv")
    add_out_dir(parser, "output folder")
    parser.add_argument(
        "--ckpt", type=Path, action="append", required=True, metavar="MODEL", help="checkpoint; repeat for an ensemble"
    )
    parser.add_argument(
        "--levels",
        type=Path,
        metavar="CSV",
        help="levels.csv (label,level) or ITK-SNAP .label file (default: the levels the checkpoint records)",
    )
    parser.add_argument("--expected-discs", type=int, default=5, metavar="N", help="discs per scan (default 5)")
    parser.add_argument(
        "--anchor",
        choices=["inferior", "superior"],
        default="inferior",
        help="when fewer discs are found, name them from this end (default inferior: L5-S1 is nearly always seen);"
        " with --surplus anchor, also the end whose discs are kept when more are found",
    )
    parser.add_argument(
        "--surplus",
        choices=list(SURPLUS),
        help="when more discs are found, keep the largest or those nearest the --anchor end (a field of view"
        " reaching T12-L1 above a partly found L5-S1); default: the model's setting (surplus in its training"
        " config; largest for checkpoints without one); check the warning either way",
    )
    parser.add_argument("--no-orphan-removal", action="store_true", help="keep stray disc islands (paper 2.6)")
    parser.add_argument("--same-format", action="store_true", help="write in the input's format (DICOM -> NIfTI)")
    parser.add_argument(
        "--probabilities", action="store_true", help="also write <name>_prob (float32 disc probability)"
    )
    parser.add_argument(
        "--qc",
        action="store_true",
        help="also write <name>_qc.png: 5 sagittal slices across the disc column, each disc's volume in the legend",
    )
    parser.add_argument(
        "--qc-format", choices=("png", "jpg", "pdf", "svg"), default="png", help="picture format of --qc (default png)"
    )
    parser.add_argument("--skip-existing", action="store_true", help="keep outputs already written (volumes re-read)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="slices per forward pass (default 8)")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32", help="float32 or bfloat16 autocast")
    parser.add_argument(
        "--backend",
        choices=list(BACKEND_CHOICES),
        default="auto",
        help="what runs the network: torch (eager, channels-last), torchscript (frozen, oneDNN fusion), "
        "onnxruntime or openvino (CPU only; faster networks, but a build of seconds per call); auto (default): torch",
    )
    parser.add_argument(
        "--input-preset", choices=preset_names(), help="input preset of checkpoints that do not record theirs"
    )
    parser.add_argument("--image-size", type=int, metavar="S", help="image size of checkpoints that do not record it")
    parser.add_argument(
        "--tta",
        choices=list(FLIPS),
        help="test-time augmentation: flip adds the anterior-posterior mirror, flip-all also the superior-inferior "
        "ones; each transform of each checkpoint is one ensemble member; default: the model's setting (tta in its "
        "training config: flip for experiment=few_scans and lumbar_t2, none for the paper's presets)",
    )
    parser.add_argument(
        "--uncertainty",
        choices=["entropy", "variance"],
        help="also write <name>_uncertainty: entropy of the mean probability or the members' variance",
    )
    parser.add_argument(
        "--reference", type=Path, metavar="CSV", help="volume table whose per-level range flags outlying discs"
    )
    parser.set_defaults(func=run)


def _device(text: str) -> torch.device:
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise InputError(None, f"unknown device '{text}'", "use cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(None, f"device '{text}' is not available (no CUDA)", "use --device cpu")
    return device


def _check_args(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise InputError(None, f"--batch-size {args.batch_size} must be at least 1", "give --batch-size 8")
    if args.precision != "32" and args.backend in ("onnxruntime", "openvino", "torchscript"):
        raise InputError(None, f"--backend {args.backend} runs float32 only", "drop --precision or use --backend torch")
    if args.image_size is not None and args.image_size < 8:
        raise InputError(None, f"--image-size {args.image_size} is too small", "give the size the model was trained at")


def _check_expected_discs(expected: int, levels: dict[int, str], where: Path | None) -> None:
    names, _ = levels_and_values(levels, where)
    if not 1 <= expected <= len(names):
        raise InputError(where, f"--expected-discs {expected} is not in 1..{len(names)}", "fix it")


def _progress(console: Console) -> Progress:
    """A progress bar on terminals only, erased at the end (so that an error stays one line)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    return Progress(*columns, TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    skipped: list[str] = []
    jobs = plan_jobs(
        collect_inputs(args.inputs, skipped),
        args.output,
        args.inputs,
        [*args.ckpt, args.levels],
        same_format=args.same_format,
        probabilities=args.probabilities,
        qc_format=args.qc_format if args.qc else None,
    )
    for entry in skipped:
        print(f"note: skipped {entry}")
    if args.uncertainty:
        jobs = with_uncertainty_maps(jobs)
    given = read_levels(args.levels) if args.levels is not None else None  # else the checkpoint's levels
    if given is not None:
        _check_expected_discs(args.expected_discs, given, args.levels)
    reference = read_reference(args.reference) if args.reference is not None else None
    device = _device(args.device)
    nets, settings = load_models(args.ckpt, args.input_preset, args.image_size, device, given, args.surplus, args.tta)
    if given is None:
        _check_expected_discs(args.expected_discs, settings.levels, None)
    nets = [prepare(net, args.backend, device) for net in nets]  # a backend's build happens before the bar
    options = PredictOptions(
        expected_discs=args.expected_discs,
        orphan_removal=not args.no_orphan_removal,
        anchor=args.anchor,
        surplus=args.surplus,
        batch_size=args.batch_size,
        precision=args.precision,
        tta=args.tta,
        uncertainty=args.uncertainty,
        skip_existing=args.skip_existing,
        reference=reference,
    )
    console = Console(stderr=True, highlight=False)
    with _progress(console) as progress:
        task = progress.add_task("predicting", total=len(jobs))

        def done(job, warning):
            if warning:
                console.print(f"warning: {job.name}: {warning}", markup=False, soft_wrap=True)
            progress.advance(task)

        report = predict_scans(
            jobs,
            nets,
            settings,
            args.ckpt,
            args.output,
            options,
            device,
            on_scan=lambda job: progress.update(task, description=job.name),
            on_done=done,
        )
    if report.kept_rows:
        print(
            f"note: {VOLUMES} keeps {report.kept_rows} earlier row(s) of subjects not predicted now (newest rows win)"
        )
    qc = ""
    if report.flagged is not None:
        qc = f"; {report.flagged[0]} of {report.flagged[1]} disc(s) flagged for QC (qc_reasons in {UNCERTAINTY})"
    print(
        f"segmented {report.segmented} scan(s){f', kept {report.kept} existing' if report.kept else ''} in "
        f"{report.seconds:.1f} s; outputs in {args.output}, disc volumes in {args.output / VOLUMES}, "
        f"also {', '.join(p.name for p in report.tables)}{qc}"
    )
    return 0
