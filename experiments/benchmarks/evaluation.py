"""Section 4: whole-volume Dice of a prediction/truth file pair, discnet against Convert3D's ``-overlap``
(both reading the files), with per-disc scoring and orphan removal timed beside it."""

from __future__ import annotations

import io
import re

import nibabel as nib
import numpy as np
import picsl_c3d
from inference import Setup, paper_scan
from machine import measure

from discnet.cli import main as discnet_main
from discnet.evaluation.evaluate import evaluate_pair
from discnet.evaluation.metrics import dice
from discnet.io import read_levels, read_volume, to_canonical
from discnet.postprocess import remove_orphans


def _prediction_like(truth_path, out_path) -> None:
    """The truth shifted by one voxel with a few stray islands: a plausible imperfect prediction."""
    truth = nib.load(truth_path)
    array = np.asarray(truth.dataobj)
    pred = np.roll(array, 1, axis=0)
    rng = np.random.default_rng(0)
    for x, y, z in zip(*(rng.integers(0, max(s - 3, 1), 12) for s in array.shape), strict=True):
        pred[x : x + 3, y : y + 3, z] = 1
    nib.save(nib.Nifti1Image(pred, truth.affine, truth.header), out_path)


def run(setup: Setup) -> dict:
    manifest = paper_scan(setup)
    truth_path = next(manifest.parent.glob("*_discs.nii.gz"))
    pred_path = setup.work / "pred" / truth_path.name
    pred_path.parent.mkdir(exist_ok=True)
    _prediction_like(truth_path, pred_path)
    levels = read_levels(manifest.parent / "levels.csv")
    pattern = re.compile(r"OVL: 1, \d+, \d+, \d+, ([-+.\deE]+)")

    def c3d() -> float:
        out = io.StringIO()
        command = f"{pred_path} -thresh 1 inf 1 0 {truth_path} -thresh 1 inf 1 0 -overlap 1"
        picsl_c3d.Convert3D().execute(command, out=out)
        return float(pattern.search(out.getvalue()).group(1))

    def ours() -> float:
        return dice(read_volume(pred_path, kind="label").array > 0, read_volume(truth_path, kind="label").array > 0)

    pred, truth = read_volume(pred_path, kind="label"), read_volume(truth_path, kind="label")
    canonical = to_canonical(pred.with_array(pred.array > 0))[0]
    c3d_time = measure(c3d, setup.device, setup.repeats)
    ours_time = measure(ours, setup.device, setup.repeats)
    per_disc = measure(lambda: evaluate_pair(pred, truth, levels), setup.device, setup.repeats)
    orphans = measure(lambda: remove_orphans(canonical), setup.device, setup.repeats)
    out = setup.work / "metrics.csv"
    cli = ["evaluate", "--pred", str(pred_path), "--truth", str(truth_path), "--levels"]
    cli += [str(manifest.parent / "levels.csv"), "-o", str(out)]
    command = measure(lambda: discnet_main(cli), setup.device, setup.repeats)
    return {
        "shape": list(pred.shape),
        "dice_discnet": round(ours(), 6),
        "dice_c3d": round(c3d(), 6),
        "whole_volume_dice_discnet": ours_time,
        "whole_volume_dice_c3d": c3d_time,
        "speedup_vs_c3d": round(c3d_time["median_s"] / ours_time["median_s"], 2),
        "per_disc_scoring": per_disc,
        "orphan_removal": orphans,
        "per_disc_plus_orphans_s": round(per_disc["median_s"] + orphans["median_s"], 4),
        "discnet_evaluate_command": command,
    }
