"""The default training data made on first use: ``data=synthetic`` without ``data/synthetic`` writes the
phantoms there (as ``make demo`` does, at half resolution), so ``python train.py`` runs on a fresh clone.

Only the default manifest is made: ``data.manifest`` pointing elsewhere is never filled with phantoms.
The folder is written under a temporary name and renamed, so a killed or concurrent first use leaves
either no folder or a whole one.

Example:
    >>> ensure_default_data({"manifest": "elsewhere/subjects.csv", "synthesize": {"into": "data/synthetic"}})
    False
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from discnet.data.manifest import load_manifest_and_style, save_manifest
from discnet.data.split import semi_random_split
from discnet.phantoms.synthetic import generate_dataset


def ensure_default_data(data: Mapping, say=print) -> bool:
    """Make the phantoms of ``data["synthesize"]`` when ``data["manifest"]`` is their missing subjects.csv.

    ``synthesize`` keys: ``into`` (folder), ``subjects``, ``val`` (validation subjects, split as
    ``discnet split``), ``seed``, ``size`` (superior-inferior, anterior-posterior voxels), ``spacing`` (mm).
    Returns whether it made them (and ``say`` printed where).
    """
    spec = data.get("synthesize")
    if not spec:
        return False
    into = Path(spec["into"])
    manifest = Path(data["manifest"])
    if manifest.exists() or manifest.resolve() != (into / "subjects.csv").resolve():
        return False
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{into.name}-", dir=into.parent))
    try:
        subjects = generate_dataset(
            tmp, int(spec["subjects"]), int(spec["seed"]), shape=tuple(spec["size"]), spacing=tuple(spec["spacing"])
        )
        table, style = load_manifest_and_style(subjects, check_files=False)
        save_manifest(semi_random_split(table, int(spec["val"]), int(spec["seed"]), where=subjects), subjects, style)
        os.rename(tmp, into)
    except OSError:
        if not manifest.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"note: made the default training data ({spec['subjects']} phantoms, discnet synth) in {into}")
    return True
