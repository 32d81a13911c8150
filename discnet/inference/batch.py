"""Batches of scans to predict: which scans the command line names, and the output files of each.

INPUTs are image files, DICOM series folders, folders of images or a ``subjects.csv`` manifest. Every
scan gets a file-name-safe output name (:func:`output_name`) and its outputs in one folder:
``<name>_discs<suffix>``, optionally ``<name>_prob<suffix>``, ``<name>_qc.<format>`` and
``<name>_uncertainty<suffix>``, beside one ``volumes.csv``. No output may leave the folder, clash with
another scan's, or replace an input.

Example:
    >>> output_name(Path("dicom/sub 11 T2"))  # a DICOM series folder (a file loses its extension)
    'sub_11_T2'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from discnet.data.manifest import load_manifest
from discnet.errors import InputError
from discnet.io import volume_format
from discnet.io.atomic import file_stem, full_suffix
from discnet.io.files import SUFFIXES
from discnet.io.guard import InputFiles, refuse_input_folder
from discnet.io.itk import dicom_files

MASK, PROB, QC, UNC = "_discs", "_prob", "_qc", "_uncertainty"
VOLUMES = "volumes.csv"
#: Output suffix per input suffix with --same-format (detached-header formats become single files).
SAME_FORMAT = {".mhd": ".mha", ".nhdr": ".nrrd", ".tiff": ".tif"}
UNSAFE = re.compile(r"[^\w.+-]")


@dataclass(frozen=True)
class Job:
    """One scan and its output files."""

    name: str
    image: Path
    mask: Path
    probability: Path | None
    qc: Path | None
    uncertainty: Path | None = None

    def outputs(self) -> list[Path]:
        return [p for p in (self.mask, self.probability, self.qc, self.uncertainty) if p is not None]


def output_name(path: Path) -> str:
    """A file-name-safe output name for an image file or DICOM folder."""
    name = file_stem(path) if path.is_file() else path.name
    return UNSAFE.sub("_", name).lstrip(".") or "scan"


def _skip_reason(entry: Path) -> str:
    """Why a folder entry is not read as a scan (for the note listing every skipped entry)."""
    if entry.is_dir():
        return "a DICOM series folder: give it as its own INPUT" if dicom_files(entry) else "a folder"
    if entry.name.startswith("."):
        return "hidden"
    if full_suffix(entry).lower() not in SUFFIXES:
        return "not an image file"
    return "a discnet output"


def _folder(folder: Path, skipped: list[str]) -> list[tuple[str, Path]]:
    own = (MASK, PROB, UNC)
    entries = sorted(folder.iterdir())
    files = [
        f
        for f in entries
        if f.is_file()
        and not f.name.startswith(".")
        and full_suffix(f).lower() in SUFFIXES
        and not output_name(f).endswith(own)
    ]
    if files:
        skipped += [f"{e} ({_skip_reason(e)})" for e in entries if e not in files]
        return [(output_name(f), f) for f in files]
    if dicom_files(folder):
        return [(output_name(folder), folder)]
    raise InputError(folder, "holds no image files and no DICOM series", "give image files or a DICOM folder")


def _manifest(path: Path) -> list[tuple[str, Path]]:
    df = load_manifest(path, require_labels=False, check_files=True)
    several = df.groupby("subject")["session"].transform("nunique") > 1
    return [
        (f"{row.subject}_ses{row.session}" if many else str(row.subject), Path(row.image))
        for row, many in zip(df.itertuples(), several, strict=True)
    ]


def collect_inputs(inputs: list[Path], skipped: list[str] | None = None) -> list[tuple[str, Path]]:
    """(output name, image path) of every scan named by the command line's INPUTs; folder entries that are
    not read are appended to ``skipped`` as ``"path (why)"``."""
    skipped = [] if skipped is None else skipped
    found = []
    for path in inputs:
        if not path.exists():
            raise InputError(path, "not found", "check the path")
        if path.is_dir():
            found += _folder(path, skipped)
        elif path.suffix.lower() == ".csv":
            found += _manifest(path)
        else:
            volume_format(path)
            found += [(output_name(path), path)]
    return found


def _suffix(image: Path, same_format: bool) -> str:
    if not same_format or image.is_dir():
        return ".nii.gz"
    suffix = full_suffix(image).lower()
    return SAME_FORMAT.get(suffix, suffix)


def plan_jobs(
    found: list[tuple[str, Path]],
    out_dir: Path,
    inputs: list[Path],
    protected: list[Path],
    same_format: bool = False,
    probabilities: bool = False,
    qc_format: str | None = None,
) -> list[Job]:
    """Output paths of every scan; InputError when a name escapes ``out_dir``, clashes or would replace an input.

    Args:
        found: (output name, image) of every scan (:func:`collect_inputs`).
        out_dir: the output folder.
        inputs: the command line's INPUTs (an input folder is never the output folder).
        protected: other files that no output may replace (checkpoints, the level file).
        same_format: masks in the scan's format instead of NIfTI.
        probabilities: also a probability map per scan.
        qc_format: also a QC picture per scan in this format (``png``; None: none).
    """
    root = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "output folder is an existing file", "give a folder name for -o")
    guarded = InputFiles([*(p for _, p in found), *inputs, *protected], "an input")
    refuse_input_folder(out_dir, [p for p in inputs if p.is_dir()])
    jobs, seen = [], {}
    for name, image in found:
        if not name or ".." in name or UNSAFE.search(name):
            raise InputError(image, f"output name '{name}' is not a safe file name", "rename the subject or file")
        suffix = _suffix(image, same_format)
        job = Job(
            name,
            image,
            out_dir / f"{name}{MASK}{suffix}",
            out_dir / f"{name}{PROB}{suffix}" if probabilities else None,
            out_dir / f"{name}{QC}.{qc_format}" if qc_format else None,
        )
        for out in [*job.outputs(), out_dir / VOLUMES]:
            if out.resolve().parent != root:
                raise InputError(image, f"output name '{name}' leaves the output folder", "rename the subject or file")
            guarded.refuse(out)
        if name in seen:
            raise InputError(image, f"gives the same output name '{name}' as {seen[name]}", "rename one of them")
        seen[name] = image
        jobs.append(job)
    return jobs


def with_uncertainty_maps(jobs: list[Job]) -> list[Job]:
    """The jobs with an uncertainty map each (``<name>_uncertainty<suffix>``); InputError when one would
    replace an input."""
    images = {job.image.resolve() for job in jobs}
    out = [replace(job, uncertainty=job.mask.with_name(f"{job.name}{UNC}{full_suffix(job.mask)}")) for job in jobs]
    for job in out:
        if job.uncertainty.resolve() in images:
            raise InputError(job.uncertainty, "output path equals an input", "choose another output folder")
    return out
