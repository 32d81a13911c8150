"""Synthetic lumbar spine T2 phantoms with per-level disc labels: scanner effects and dataset writing.

A phantom is a sagittal 3D scan stored in a non-RAS orientation (array axes: superior->inferior,
anterior->posterior, left->right, i.e. codes I, P, R), 0.52 x 0.52 x 3.0 mm by default, with five labelled
lumbar discs whose height, signal and outline follow per-level Pfirrmann grades that rise with age.
Scans of one subject share anatomy; sessions differ by posture and scanner.

Example:
    >>> p = make_phantom(seed=0, shape=(128, 88), spacing=(2.08, 2.08, 3.0), slices=(20, 20))
    >>> p.image.dtype, p.label.dtype, p.image.shape
    (dtype('uint16'), dtype('uint8'), (128, 88, 20))
    >>> sorted(p.grades) == sorted(LEVELS)
    True
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from discnet.errors import InputError
from discnet.io.atomic import atomic_path
from discnet.phantoms.anatomy import build_spine, sample_posture, sample_subject
from discnet.phantoms.render import Grid, upsample
from discnet.phantoms.tissues import render
from discnet.spine import DEFAULT_LABELS, GRADES, LEVELS

SHAPE = (512, 352)
SPACING = (0.52, 0.52, 3.0)
SLICES = (20, 30)
MIN_FOV = (200.0, 140.0)


@dataclass(frozen=True)
class Phantom:
    """One synthetic scan: arrays in native (I, P, R) order, RAS affine, grades 1..5 per level."""

    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    grades: dict[str, int]
    age: float
    sex: str


def phantom_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float], shift=(0, 0, 0)):
    """Affine of the (I, P, R) grid, centred near the scanner origin (plus a table ``shift`` in mm).

    Example:
        >>> nib.aff2axcodes(phantom_affine((4, 4, 4), (1.0, 1.0, 3.0)))
        ('I', 'P', 'R')
    """
    aff = np.zeros((4, 4))
    aff[2, 0], aff[1, 1], aff[0, 2], aff[3, 3] = -spacing[0], -spacing[1], spacing[2], 1.0
    centre = (np.array(shape) - 1) / 2
    aff[:3, 3] = -aff[:3, :3] @ centre + np.asarray(shift, float)
    return aff


def scanner(rel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply gain, offset, smooth bias field, hot outliers and Rician noise; returns uint16."""
    shape = rel.shape
    gain = float(np.exp(rng.uniform(np.log(400), np.log(2500))))
    coarse = upsample(rng.normal(0, 0.12, (6, 5)).astype(np.float32), shape[:2])
    ramp = rng.uniform(0.2, 0.7) * np.linspace(-0.5, 0.5, shape[1], dtype=np.float32)[None, :]
    xs = np.linspace(-1, 1, shape[2], dtype=np.float32)
    img = rel * np.exp(coarse + ramp)[..., None]
    img *= np.exp(-rng.uniform(0, 0.25) * xs**2)[None, None, :]
    n_hot = int(rng.integers(20, 300))
    idx = tuple(rng.integers(0, n, n_hot) for n in shape)
    img[idx] = rng.uniform(2.0, 6.0, n_hot).astype(np.float32)
    sigma = np.float32(rng.uniform(0.015, 0.045))
    noise = rng.standard_normal(shape, np.float32)
    noise *= sigma
    img += noise
    np.square(img, out=img)
    rng.standard_normal(shape, np.float32, out=noise)
    noise *= sigma
    np.square(noise, out=noise)
    img += noise
    np.sqrt(img, out=img)
    img *= np.float32(gain)
    img += np.float32(rng.uniform(0, 30))
    np.clip(img, 0, 65535, out=img)
    return np.rint(img, out=img).astype(np.uint16)


def make_phantom(
    seed: int = 0,
    subject: int = 0,
    session: int = 1,
    shape: tuple[int, int] = SHAPE,
    spacing: tuple[float, float, float] = SPACING,
    slices: tuple[int, int] = SLICES,
    labels: dict[str, int] | None = None,
    age: float | None = None,
    grades: dict[str, int] | None = None,
) -> Phantom:
    """Make scan ``session`` (1..4) of subject number ``subject`` of dataset ``seed``, in memory.

    ``age`` and ``grades`` (1..5 per level) override the drawn ones; ``labels`` maps level -> value.
    """
    labels = _labels(labels)
    _check(shape, spacing, slices, session, seed)
    traits = sample_subject(
        np.random.default_rng([seed, subject, 0]),
        age=age,
        slices=slices,
        grades=None if grades is None else tuple(int(grades[lv]) for lv in LEVELS),
    )
    rng = np.random.default_rng([seed, subject, session])
    grid = Grid((*shape, traits.n_slices), spacing)
    spine = build_spine(traits, sample_posture(rng, first=session == 1), grid.fov)
    rel, lab = render(spine, grid, labels, rng, traits.age)
    image = scanner(rel, rng)
    shift = rng.normal(0, [2.0, 5.0, 5.0]) if session > 1 else (0, 0, 0)
    return Phantom(
        image=image,
        label=lab,
        affine=phantom_affine(grid.shape, spacing, shift),
        grades=dict(zip(LEVELS, traits.grades, strict=True)),
        age=traits.age,
        sex=traits.sex,
    )


def _labels(labels: dict[str, int] | None) -> dict[str, int]:
    labels = dict(DEFAULT_LABELS if labels is None else labels)
    values = [int(v) for v in labels.values()]
    if sorted(labels) != sorted(LEVELS) or len(set(values)) != len(values) or not all(0 < v < 256 for v in values):
        raise InputError("labels", f"{labels} is not one distinct value 1-255 per level", f"map each of {LEVELS}")
    return labels


def _check(shape, spacing, slices, session, seed) -> None:
    if int(seed) < 0:
        raise InputError("--seed", f"seed {seed} is negative", "use a seed >= 0")
    if len(shape) != 2 or min(shape) < 8:
        raise InputError("--size", f"in-plane size {tuple(shape)} is too small", "use e.g. 512 352")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise InputError("--spacing", f"spacing {tuple(spacing)} must be 3 positive mm values", None)
    fov = (shape[0] * spacing[0], shape[1] * spacing[1])
    if fov[0] < MIN_FOV[0] or fov[1] < MIN_FOV[1]:
        raise InputError(
            "--size/--spacing",
            f"field of view {fov[0]:.0f} x {fov[1]:.0f} mm cannot hold a lumbar spine",
            f"make size x spacing at least {MIN_FOV[0]:.0f} x {MIN_FOV[1]:.0f} mm (S-I x A-P)",
        )
    if not 1 <= slices[0] <= slices[1]:
        raise InputError("--slices", f"slice range {tuple(slices)} is invalid", "give MIN [MAX], 1 <= MIN <= MAX")
    if not 1 <= session <= 4:
        raise InputError("--sessions", f"session {session} is out of range", "use 1 to 4 sessions")


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write ``array`` atomically as NIfTI with qform and sform set to scanner (code 1)."""
    img = nib.Nifti1Image(array, affine)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return path


def generate_dataset(
    out_dir: str | Path,
    n_subjects: int,
    seed: int = 0,
    sessions: int = 1,
    shape: tuple[int, int] = SHAPE,
    spacing: tuple[float, float, float] = SPACING,
    slices: tuple[int, int] = SLICES,
    labels: dict[str, int] | None = None,
) -> Path:
    """Write ``n_subjects`` x ``sessions`` phantoms, ``levels.csv`` and ``subjects.csv`` into ``out_dir``.

    Returns the path of ``subjects.csv`` (image and label paths in it are relative to it).

    Example:
        >>> import tempfile
        >>> out = generate_dataset(tempfile.mkdtemp(), 1, shape=(128, 88), spacing=(2.08, 2.08, 3.0))
        >>> out.name
        'subjects.csv'
    """
    if n_subjects < 1:
        raise InputError("--subjects", f"{n_subjects} subjects requested", "ask for at least 1")
    if not 1 <= sessions <= 4:
        raise InputError("--sessions", f"{sessions} sessions requested", "use 1 to 4 sessions")
    _check(shape, spacing, slices, 1, seed)
    labels = _labels(labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_subjects):
        sid = f"sub-{i + 1:03d}"
        for k in range(1, sessions + 1):
            ph = make_phantom(seed, i, k, shape, spacing, slices, labels)
            image, label = f"{sid}_ses-{k}_T2w.nii.gz", f"{sid}_ses-{k}_discs.nii.gz"
            save_nifti(ph.image, ph.affine, out / image)
            save_nifti(ph.label, ph.affine, out / label)
            grades = {f"grade_{lv}": GRADES[ph.grades[lv] - 1] for lv in LEVELS}
            rows.append(dict(subject=sid, session=k, image=image, label=label, age=round(ph.age), sex=ph.sex, **grades))
    _write_csv(
        out / "levels.csv",
        ["label", "level"],
        [dict(label=v, level=lv) for lv, v in sorted(labels.items(), key=lambda kv: kv[1])],
    )
    return _write_csv(out / "subjects.csv", list(rows[0]), rows)


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
