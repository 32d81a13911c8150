"""The hostile-input corpus of issue 15: outputs that are inputs, files declaring huge sizes, malformed level
files, checkpoints and Keras configs, full disks. Each case: exit code 2, one stderr line naming the file,
no traceback, no file left behind and every input's sha256 unchanged. The files are made by
``tests/hostile/files.py``, the cases listed in ``tests/hostile/cases.py``."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import discnet.cli
from discnet.io import read_volume, write_like
from tests.hostile.cases import CASES
from tests.hostile.files import hostile_files
from tests.paths import REPO
from tests.test_bad_input import SHAPE, nifti


@pytest.fixture(scope="module")
def h(tmp_path_factory) -> SimpleNamespace:
    return hostile_files(tmp_path_factory.mktemp("hostile"))


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (symlinks by their target's content)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def failing_replace(code: int):
    def replace(src, dst):
        raise OSError(code, os.strerror(code))

    return replace


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_one_line_exit_2_nothing_written(case, h, capfd, monkeypatch):
    args, named, problem, *extra = CASES[case](h)
    for setting in extra:
        if isinstance(setting, dict):
            for key, value in setting.items():
                monkeypatch.setenv(key, value)
        else:
            monkeypatch.setattr("discnet.io.atomic.os.replace", failing_replace(getattr(errno, setting)))
    before = hashes(h.root)
    capfd.readouterr()
    code = discnet.cli.main([str(a) for a in args])
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (case, err)
    assert len(lines) == 1 and "Traceback" not in err, (case, err)
    assert lines[0].startswith(f"discnet {args[0]}: error: "), (case, err)
    assert named in lines[0] and problem in lines[0], (case, err)
    assert hashes(h.root) == before, case  # no input changed, nothing left behind


def test_the_corpus_counts_what_the_readme_says():
    readme = (REPO / "README.md").read_text()
    assert f"{len(CASES)} hostile-input cases" in readme


def test_4d_file_with_trailing_singleton_gets_an_output_of_its_own_shape(tmp_path):
    image = nifti(tmp_path / "series.nii.gz", np.random.default_rng(0).normal(size=(*SHAPE, 1)).astype(np.float32))
    volume = read_volume(image)
    assert volume.shape == SHAPE
    out = write_like(np.ones(SHAPE, np.uint8), volume, tmp_path / "mask.nii.gz")
    written = nib.load(out)
    assert written.shape == (*SHAPE, 1) and np.array_equal(written.affine, nib.load(image).affine)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
@pytest.mark.parametrize("spacing", [(0.3333333333, 0.52, 3.3), (0.5, 0.25, 2.0)])
def test_nifti_output_of_an_itk_input_keeps_the_spacing_exactly(suffix, spacing, tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=SHAPE[::-1]).astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin((1.234567891, -20.5, 7.0))
    sitk.WriteImage(image, str(tmp_path / f"scan{suffix}"))
    volume = read_volume(tmp_path / f"scan{suffix}")
    out = write_like(np.zeros(volume.shape, np.uint8), volume, tmp_path / "mask.nii.gz")
    back = read_volume(out, kind="label")
    assert back.spacing == volume.spacing and np.allclose(volume.spacing, spacing, rtol=1e-9)
    assert np.array_equal(back.affine, volume.affine)


def test_limits_are_overridable(h, monkeypatch, capsys):
    monkeypatch.setenv("DISCNET_MAX_IMAGE_VOXELS", "100")
    assert discnet.cli.main(["volumes", str(h.label), "-o", str(h.root / "out" / "v.csv")]) == 2
    assert "DISCNET_MAX_IMAGE_VOXELS" in capsys.readouterr().err
    monkeypatch.setenv("DISCNET_MAX_IMAGE_VOXELS", str(2**40))
    out = h.root / "tmp_ok" / "v.csv"
    assert discnet.cli.main(["volumes", str(h.label), "-o", str(out)]) == 0
    shutil.rmtree(out.parent)
