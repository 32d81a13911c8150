"""The tables ``discnet predict`` writes next to ``volumes.csv``: morphometry of every predicted disc and,
with an ensemble (several checkpoints or test-time augmentation) or a reference table, its uncertainty.

- ``measurements.csv`` / ``measurements_wide.csv``: :mod:`discnet.evaluation.morphometry` of the predicted discs in
  the scan (stretched intensities with the model's own input stretch);
- ``uncertainty.csv``: :data:`discnet.inference.uncertainty.COLUMNS` and ``member_<k>_mm3`` per disc;
- ``members.csv``: which checkpoint and test-time transform each member ``k`` is.

Example:
    >>> member_table(["a.ckpt", "b.ckpt"], "flip")["transform"].tolist()
    ['identity', 'identity', 'flip_ap', 'flip_ap']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.data.preprocess import InputConfig, input_presets
from discnet.errors import InputError
from discnet.evaluation.morphometry import KEYS, UNITS, disc_measures, tidy
from discnet.evaluation.volumes import COLUMNS as VOLUME_COLUMNS
from discnet.inference.uncertainty import COLUMNS, member_disc_rows
from discnet.io import Volume
from discnet.io.atomic import atomic_path
from discnet.spine import FLIPS

MEASUREMENTS, MEASUREMENTS_WIDE = "measurements.csv", "measurements_wide.csv"
UNCERTAINTY, MEMBERS = "uncertainty.csv", "members.csv"
TRANSFORMS = {(): "identity", (1,): "flip_ap", (2,): "flip_si", (1, 2): "flip_ap_si"}
_SESSION = re.compile(r"_ses(\d+)$")


def session_of(name: str) -> int:
    """Session number of an output name (``sub1_ses2`` -> 2; 1 without a ``_sesN`` ending).

    Example:
        >>> session_of("sub-01_ses3"), session_of("sub11_T2w")
        (3, 1)
    """
    match = _SESSION.search(name)
    return int(match.group(1)) if match else 1


def scan_measurements(
    name: str, labels: np.ndarray, image: Volume, levels: Mapping[int, str], input_cfg: InputConfig
) -> list[dict]:
    """Wide morphometry rows (:data:`discnet.evaluation.morphometry.KEYS` + :data:`~discnet.evaluation.morphometry.UNITS`) of one
    predicted label map on ``image``'s grid."""
    stretch_cfg = input_cfg if input_cfg.stretch != "none" else input_presets()["stretched"]
    rows = disc_measures(image.with_array(np.asarray(labels)), levels, image, stretch_cfg)
    return [{"subject": name, "session": session_of(name), **row} for row in rows]


def scan_uncertainty(
    name: str,
    labels: np.ndarray,
    image: Volume,
    info: Mapping,
    levels: Mapping[int, str],
    reference: Mapping[str, tuple[float, float]] | None = None,
) -> list[dict]:
    """Uncertainty rows of one scan from :func:`discnet.inference.predict.predict_volume`'s ``info``."""
    members = info.get("member_voxels") or []
    rows = member_disc_rows(
        labels, members, image.spacing, image.voxel_volume, levels, info["found"], info["expected"], reference
    )
    return [{"subject": name, **row} for row in rows]


def member_table(checkpoints: Sequence[str | Path], tta: str) -> pd.DataFrame:
    """Member number, checkpoint and transform, in the order of ``member_<k>_mm3``."""
    rows = [{"transform": TRANSFORMS[axes], "checkpoint": str(ckpt)} for axes in FLIPS[tta] for ckpt in checkpoints]
    table = pd.DataFrame(rows, columns=["transform", "checkpoint"])
    table.insert(0, "member", range(1, len(table) + 1))
    return table


def volume_table(rows: list[dict], earlier: Path | None = None) -> tuple[pd.DataFrame, int]:
    """``volumes.csv`` of this run's ``rows`` (columns of ``discnet volumes``: :data:`discnet.evaluation.volumes.COLUMNS`)
    merged into an ``earlier`` table: its rows of subjects this run did not predict are kept first (one row
    per subject and level, newest wins). Returns the table and how many earlier rows were kept.

    Example:
        >>> volume_table([{"subject": "a", "level": "L5-S1", "voxels": 2, "volume_mm3": 2.0}])[0]["volume_cm3"].tolist()
        [0.002]
    """
    new = pd.DataFrame(rows, columns=VOLUME_COLUMNS)
    old = pd.DataFrame(columns=VOLUME_COLUMNS)
    if earlier is not None and earlier.is_file():
        try:
            old = pd.read_csv(earlier, dtype={"subject": str, "level": str, "file": str, "note": str})
        except (OSError, ValueError) as err:
            raise InputError(earlier, f"cannot be read to merge into ({err})", "move it away or fix it") from err
        if not {"subject", "level", "volume_mm3"} <= set(old.columns):
            raise InputError(earlier, "is not a discnet volumes.csv", "move it away or choose another -o")
        old = old.reindex(columns=VOLUME_COLUMNS)
        old = old[~old["subject"].isin(set(new["subject"]))]
    table = pd.concat([old, new], ignore_index=True) if len(old) else new
    table["volume_cm3"] = table["volume_mm3"] / 1000.0
    table["label"] = pd.array(pd.to_numeric(table["label"]), dtype="Int64")
    return table.round({"volume_mm3": 3, "volume_cm3": 6}), len(old)


def _write(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def write_tables(
    out_dir: Path,
    measurements: list[dict],
    uncertainty: list[dict] | None = None,
    members: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the measurement tables, and the uncertainty and member tables when given; the paths written."""
    wide = pd.DataFrame(measurements, columns=[*KEYS, *UNITS])
    written = [_write(tidy(wide), out_dir / MEASUREMENTS), _write(wide, out_dir / MEASUREMENTS_WIDE)]
    if uncertainty is not None:
        table = pd.DataFrame(uncertainty)
        extra = [c for c in table.columns if c not in COLUMNS]
        table = table.reindex(columns=[*COLUMNS, *extra])
        table = table.round(
            {c: 3 for c in table.columns if c.endswith("_mm3")} | {"member_cv": 4, "mean_pairwise_dice": 4}
        )
        written.append(_write(table, out_dir / UNCERTAINTY))
    if members is not None:
        written.append(_write(members, out_dir / MEMBERS))
    return written
