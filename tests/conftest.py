"""Shared fixtures: the ../shared data folder (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

#: Scripts that make the fixtures (they need TensorFlow): not test modules, not doctests.
collect_ignore_glob = ["fixtures/*"]

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder beside the repository; skips the test when it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def lumbar_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "lumbar-t2"


@pytest.fixture(scope="session")
def c3d_overlap():
    """``overlap(a, b, label) -> (size_a, size_b, both, dice)`` by Convert3D's ``a b -overlap label``.

    Uses the ``c3d`` executable when present, else the ``picsl_c3d`` module (the picsl-c3d wheel ships the
    Convert3D library, not always the executable); skips the test when neither is installed.
    """
    import io
    import re
    import shutil
    import subprocess
    import sys

    exe = shutil.which("c3d", path=str(Path(sys.executable).parent)) or shutil.which("c3d")
    if exe:

        def run(args: list[str]) -> str:
            return subprocess.run([exe, *args], check=True, capture_output=True, text=True).stdout

    else:
        picsl_c3d = pytest.importorskip("picsl_c3d", reason="Convert3D (c3d / picsl_c3d) not installed")

        def run(args: list[str]) -> str:
            out = io.StringIO()
            picsl_c3d.Convert3D().execute(" ".join(args), out=out)
            return out.getvalue()

    pattern = re.compile(r"OVL: (\d+), (\d+), (\d+), (\d+), ([-+.\deE]+), ([-+.\deE]+)")

    def overlap(a: Path, b: Path, label: int) -> tuple[int, int, int, float]:
        match = pattern.search(run([str(a), str(b), "-overlap", str(label)]))
        assert match, "unexpected c3d -overlap output"
        _, size_a, size_b, both, dsc, _ = match.groups()
        return int(size_a), int(size_b), int(both), float(dsc)

    return overlap


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Five small synthetic subjects (two sessions each) with a split column: a seconds-long training set."""
    from discnet.data.manifest import load_manifest_and_style, save_manifest
    from discnet.phantoms.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("tiny")
    manifest = generate_dataset(out, 5, seed=3, sessions=2, shape=(96, 64), spacing=(2.5, 2.5, 4.0), slices=(12, 12))
    table, style = load_manifest_and_style(manifest)
    table["split"] = ["val" if s in ("sub-004", "sub-005") else "train" for s in table["subject"]]
    save_manifest(table, manifest, style)
    return manifest
