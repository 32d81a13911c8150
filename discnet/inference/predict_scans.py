"""Predicting a batch of scans into files: masks (and maps, QC pictures) per scan, then the tables.

The work behind ``discnet predict`` once its jobs are planned (:mod:`discnet.inference.batch`) and its
models loaded (:func:`~discnet.inference.predict.load_models`): each scan is segmented with
:func:`~discnet.inference.predict.predict_volume` and written beside the others (``--skip-existing``
re-reads what an interrupted run wrote), then ``volumes.csv``, the measurement tables and, for an
ensemble, the uncertainty and member tables are written atomically.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from discnet.errors import InputError
from discnet.evaluation.evaluate import check_same_grid
from discnet.evaluation.volumes import label_counts, no_disc_row, volume_rows
from discnet.inference.batch import VOLUMES, Job, with_uncertainty_maps
from discnet.inference.outputs import (
    UNCERTAINTY,
    member_table,
    scan_measurements,
    scan_uncertainty,
    volume_table,
    write_tables,
)
from discnet.inference.predict import predict_volume
from discnet.io import Volume, read_volume, write_like
from discnet.io.atomic import atomic_path
from discnet.models.model_settings import ModelSettings
from discnet.spine import FLIPS


@dataclass(frozen=True)
class PredictOptions:
    """How each scan is predicted and what is kept (the flags of ``discnet predict``).

    Attributes:
        expected_discs, orphan_removal, anchor, surplus, batch_size, precision, tta, uncertainty: passed to
            :func:`~discnet.inference.predict.predict_volume` (``surplus``, ``tta`` None: the model's setting).
        skip_existing: keep a scan's outputs when all of them exist (its volumes are re-read).
        reference: a volume table whose per-level range flags outlying discs (ensembles).
    """

    expected_discs: int = 5
    orphan_removal: bool = True
    anchor: str = "inferior"
    surplus: str | None = None
    batch_size: int = 8
    precision: str = "32"
    tta: str | None = None
    uncertainty: str | None = None
    skip_existing: bool = False
    reference: pd.DataFrame | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PredictReport:
    """What :func:`predict_scans` did: scans segmented and kept, seconds, ``volumes.csv`` and the other
    tables written, earlier ``volumes.csv`` rows kept, and (ensembles) discs flagged for QC out of those
    measured."""

    segmented: int
    kept: int
    seconds: float
    volumes: Path
    tables: list[Path]
    kept_rows: int
    flagged: tuple[int, int] | None


def writable(out_dir: Path) -> None:
    """Create ``out_dir`` and check a file can be written there; InputError otherwise."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as err:
        raise InputError(out_dir, f"output folder cannot be written ({err.strerror or err})", "choose another") from err


def _previous_rows(path: Path) -> dict[str, list[dict]]:
    """Rows of an earlier ``uncertainty.csv`` by subject (kept for scans that --skip-existing keeps)."""
    if not path.is_file():
        return {}
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return {str(name): group.to_dict("records") for name, group in table.groupby("subject", sort=False)}


def _predict_one(job: Job, nets, settings: ModelSettings, options: PredictOptions, device):
    volume = read_volume(job.image)
    labels, prob, info = predict_volume(
        nets,
        volume,
        settings.input,
        settings.image_size,
        threshold=settings.threshold,
        levels=settings.levels,
        expected_discs=options.expected_discs,
        orphan_removal=options.orphan_removal,
        anchor=options.anchor,
        surplus=options.surplus or settings.surplus,
        batch_size=options.batch_size,
        device=device,
        precision=options.precision,
        tta=options.tta or settings.tta,
        uncertainty=options.uncertainty,
    )
    try:
        write_like(labels, volume, job.mask)
        if job.probability is not None:
            write_like(prob, volume, job.probability, dtype=np.float32)
        if job.uncertainty is not None and info["uncertainty"] is not None:
            write_like(info["uncertainty"], volume, job.uncertainty, dtype=np.float32)
        if job.qc is not None:
            from discnet.inference.qc import MONTAGE, write_overlay  # matplotlib only when pictures are asked for

            write_overlay(job.qc, volume, labels, subject=job.name, levels=settings.levels, montage=MONTAGE)
    except OSError as err:
        raise InputError(
            job.mask.parent, f"cannot be written ({err.strerror or err})", "free space or fix rights"
        ) from err
    return labels, volume, info


def _existing(job: Job) -> tuple[np.ndarray, Volume]:
    image = read_volume(job.image)
    existing = read_volume(job.mask, kind="label")
    check_same_grid(existing, image, what="scan")
    return existing.array, image


def predict_scans(
    jobs: Sequence[Job],
    nets: Sequence[nn.Module],
    settings: ModelSettings,
    checkpoints: Sequence[Path],
    out_dir: Path,
    options: PredictOptions = PredictOptions(),
    device: str | torch.device = "cpu",
    on_scan: Callable[[Job], None] | None = None,
    on_done: Callable[[Job, str | None], None] | None = None,
) -> PredictReport:
    """Segment every job's scan into its files, then write the tables into ``out_dir``.

    Args:
        jobs: scans and their output files (:func:`~discnet.inference.batch.plan_jobs`).
        nets, settings: the models and what they share (:func:`~discnet.inference.predict.load_models`).
        checkpoints: the models' files (named in the member table of an ensemble).
        out_dir: the output folder (``volumes.csv`` and the tables).
        options: how each scan is predicted.
        device: where the networks run.
        on_scan: called before each scan (progress); on_done: once it is segmented (or kept), with its
            disc-count warning or None.
    """
    writable(out_dir)
    if options.uncertainty and any(job.uncertainty is None for job in jobs):
        jobs = with_uncertainty_maps(list(jobs))
    tta = options.tta or settings.tta
    ensemble = len(nets) * len(FLIPS[tta]) > 1 or options.reference is not None
    levels = settings.levels
    previous = _previous_rows(out_dir / UNCERTAINTY) if ensemble and options.skip_existing else {}
    rows, measured, uncertain, kept, start = [], [], [], 0, time.perf_counter()
    for job in jobs:
        if on_scan is not None:
            on_scan(job)
        warning = None
        if options.skip_existing and all(p.is_file() for p in job.outputs()):
            (labels, image), info = _existing(job), None
            kept += 1
        else:
            labels, image, info = _predict_one(job, nets, settings, options, device)
            warning = info["warning"]
        if on_done is not None:
            on_done(job, warning)
        found = volume_rows(label_counts(labels), image.voxel_volume, levels)
        rows += [{"subject": job.name, **row, "file": str(job.mask)} for row in found] or [
            no_disc_row(job.name, job.mask)
        ]
        measured += scan_measurements(job.name, labels, image, levels, settings.input)
        if ensemble:
            uncertain += (
                previous.get(job.name, [])
                if info is None
                else scan_uncertainty(job.name, labels, image, info, levels, options.reference)
            )
    table, kept_rows = volume_table(rows, out_dir / VOLUMES)
    with atomic_path(out_dir / VOLUMES) as tmp:
        table.to_csv(tmp, index=False)
    members = member_table(checkpoints, tta) if ensemble else None
    tables = write_tables(out_dir, measured, uncertain if ensemble else None, members)
    flagged = (sum(bool(row["qc_flag"]) for row in uncertain), len(uncertain)) if ensemble else None
    seconds = time.perf_counter() - start
    return PredictReport(len(jobs) - kept, kept, seconds, out_dir / VOLUMES, tables, kept_rows, flagged)
