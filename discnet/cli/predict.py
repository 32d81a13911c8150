"""``discnet predict``: segment the discs of scans with one model or an ensemble, and measure them.

Example:
    discnet predict --ckpt runs/a/checkpoints/best.ckpt scans/ --out-dir predictions
    discnet predict --ckpt a.ckpt --ckpt b.ckpt subjects.csv --out-dir predictions --qc --probabilities
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from discnet.cli.outputs import add_out_dir
from discnet.data.preprocess import preset_names
from discnet.errors import InputError
from discnet.evaluation.evaluate import check_same_grid
from discnet.evaluation.volumes import label_counts, no_disc_row, volume_rows
from discnet.inference.backends import CHOICES as BACKEND_CHOICES
from discnet.inference.backends import prepare
from discnet.inference.batch import UNC, VOLUMES, Job, collect_inputs, plan_jobs
from discnet.inference.outputs import (
    UNCERTAINTY,
    member_table,
    scan_measurements,
    scan_uncertainty,
    volume_table,
    write_tables,
)
from discnet.inference.predict import levels_and_values, load_models, predict_volume
from discnet.inference.uncertainty import FLIPS, read_reference
from discnet.io import Volume, read_levels, read_volume, write_like
from discnet.io.atomic import atomic_path, full_suffix
from discnet.models.model_settings import ModelSettings


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
        help="when fewer discs are found, name them from this end (default inferior: L5-S1 is nearly always seen)",
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
        default="none",
        help="test-time augmentation: flip adds the anterior-posterior mirror, flip-all also the superior-inferior "
        "ones; each transform of each checkpoint is one ensemble member",
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


def _writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise InputError(out_dir, f"output folder cannot be written ({err.strerror or err})", "choose another") from err


def _check_args(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise InputError(None, f"--batch-size {args.batch_size} must be at least 1", "give --batch-size 8")
    if args.precision != "32" and args.backend in ("onnxruntime", "openvino", "torchscript"):
        raise InputError(None, f"--backend {args.backend} runs float32 only", "drop --precision or use --backend torch")
    if args.image_size is not None and args.image_size < 8:
        raise InputError(None, f"--image-size {args.image_size} is too small", "give the size the model was trained at")


def _predict_one(job: Job, nets, settings: ModelSettings, args, device) -> tuple[np.ndarray, Volume, dict]:
    volume = read_volume(job.image)
    labels, prob, info = predict_volume(
        nets,
        volume,
        settings.input,
        settings.image_size,
        threshold=settings.threshold,
        levels=settings.levels,
        expected_discs=args.expected_discs,
        orphan_removal=not args.no_orphan_removal,
        anchor=args.anchor,
        batch_size=args.batch_size,
        device=device,
        precision=args.precision,
        tta=args.tta,
        uncertainty=args.uncertainty,
    )
    try:
        write_like(labels, volume, job.mask)
        if job.probability is not None:
            write_like(prob, volume, job.probability, dtype=np.float32)
        if job.uncertainty is not None:
            write_like(info["uncertainty"], volume, job.uncertainty, dtype=np.float32)
        if job.qc is not None:
            from discnet.inference.qc import MONTAGE, write_overlay  # matplotlib only when pictures are asked for

            write_overlay(job.qc, volume, labels, subject=job.name, levels=settings.levels, montage=MONTAGE)
    except OSError as err:
        raise InputError(
            job.mask.parent, f"cannot be written ({err.strerror or err})", "free space or fix rights"
        ) from err
    return labels, volume, info


def _progress(console: Console) -> Progress:
    """A progress bar on terminals only, erased at the end (so that an error stays one line)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    return Progress(*columns, TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)


def _with_uncertainty_maps(jobs: list[Job]) -> list[Job]:
    images = {job.image.resolve() for job in jobs}
    out = [replace(job, uncertainty=job.mask.with_name(f"{job.name}{UNC}{full_suffix(job.mask)}")) for job in jobs]
    for job in out:
        if job.uncertainty.resolve() in images:
            raise InputError(job.uncertainty, "output path equals an input", "choose another output folder")
    return out


def _previous_rows(path: Path) -> dict[str, list[dict]]:
    """Rows of an earlier ``uncertainty.csv`` by subject (kept for scans that --skip-existing keeps)."""
    if not path.is_file():
        return {}
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return {str(name): group.to_dict("records") for name, group in table.groupby("subject", sort=False)}


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
        jobs = _with_uncertainty_maps(jobs)
    given = read_levels(args.levels) if args.levels is not None else None  # else the checkpoint's levels
    reference = read_reference(args.reference) if args.reference is not None else None
    device = _device(args.device)
    nets, settings = load_models(args.ckpt, args.input_preset, args.image_size, device, given)
    nets, levels, where = (
        [prepare(net, args.backend, device) for net in nets],
        settings.levels,
        args.levels or args.ckpt[0],
    )
    names, _ = levels_and_values(levels, where)
    if not 1 <= args.expected_discs <= len(names):
        raise InputError(where, f"--expected-discs {args.expected_discs} is not in 1..{len(names)}", "fix it")
    _writable(args.output)
    ensemble = len(args.ckpt) * len(FLIPS[args.tta]) > 1 or reference is not None
    previous = _previous_rows(args.output / UNCERTAINTY) if ensemble and args.skip_existing else {}
    console = Console(stderr=True, highlight=False)
    rows, measured, uncertain, skipped, start = [], [], [], 0, time.perf_counter()
    with _progress(console) as progress:
        task = progress.add_task("predicting", total=len(jobs))
        for job in jobs:
            progress.update(task, description=job.name)
            if args.skip_existing and all(p.is_file() for p in job.outputs()):
                image = read_volume(job.image)
                existing = read_volume(job.mask, kind="label")
                check_same_grid(existing, image, what="scan")
                labels, info = existing.array, None
                skipped += 1
            else:
                labels, image, info = _predict_one(job, nets, settings, args, device)
                if info["warning"]:
                    console.print(f"warning: {job.name}: {info['warning']}", markup=False, soft_wrap=True)
            found = volume_rows(label_counts(labels), image.voxel_volume, levels)
            rows += [{"subject": job.name, **row, "file": str(job.mask)} for row in found] or [
                no_disc_row(job.name, job.mask)
            ]
            measured += scan_measurements(job.name, labels, image, levels, settings.input)
            if ensemble:
                found = previous.get(job.name, [])
                uncertain += (
                    found if info is None else scan_uncertainty(job.name, labels, image, info, levels, reference)
                )
            progress.advance(task)
    table, kept = volume_table(rows, args.output / VOLUMES)
    with atomic_path(args.output / VOLUMES) as tmp:
        table.to_csv(tmp, index=False)
    if kept:
        print(f"note: {VOLUMES} keeps {kept} earlier row(s) of subjects not predicted now (newest rows win)")
    members = member_table(args.ckpt, args.tta) if ensemble else None
    written = write_tables(args.output, measured, uncertain if ensemble else None, members)
    done = len(jobs) - skipped
    flagged = sum(bool(row["qc_flag"]) for row in uncertain)
    print(
        f"segmented {done} scan(s){f', kept {skipped} existing' if skipped else ''} in "
        f"{time.perf_counter() - start:.1f} s; outputs in {args.output}, disc volumes in {args.output / VOLUMES}, "
        f"also {', '.join(p.name for p in written)}"
        + (f"; {flagged} of {len(uncertain)} disc(s) flagged for QC (qc_reasons in {UNCERTAINTY})" if ensemble else "")
    )
    return 0
