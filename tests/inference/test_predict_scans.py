"""Predicting a batch of scans as a library call (what ``discnet predict`` runs once it has parsed)."""

from __future__ import annotations

import pandas as pd

from discnet.inference.batch import collect_inputs, plan_jobs
from discnet.inference.predict import load_models
from discnet.inference.predict_scans import PredictOptions, predict_scans
from discnet.io import read_volume
from tests.inference.test_predict import fake_network, save_checkpoint, synthetic


def test_predict_scans_writes_masks_and_tables_then_keeps_them(tmp_path, monkeypatch):
    scan, truth = synthetic(tmp_path)
    fake_network(monkeypatch, truth)
    ckpt = save_checkpoint(tmp_path / "m.ckpt")
    nets, settings = load_models([ckpt])
    out = tmp_path / "out"
    jobs = plan_jobs(collect_inputs([scan]), out, [scan], [ckpt])
    seen, warnings = [], []
    options = PredictOptions(expected_discs=3)
    report = predict_scans(
        jobs, nets, settings, [ckpt], out, options, on_scan=seen.append, on_done=lambda job, w: warnings.append(w)
    )
    assert (report.segmented, report.kept, report.flagged) == (1, 0, None)
    assert [job.name for job in seen] == ["scan"] and warnings == [None]
    mask = read_volume(jobs[0].mask, kind="label")
    assert mask.shape == truth.shape and (mask.array > 0).sum() == (truth.array > 0).sum()
    assert report.volumes.name == "volumes.csv" and "measurements.csv" in {p.name for p in report.tables}
    assert pd.read_csv(out / "volumes.csv")["level"].tolist() == ["L3-L4", "L4-L5", "L5-S1"]
    again = predict_scans(jobs, nets, settings, [ckpt], out, PredictOptions(expected_discs=3, skip_existing=True))
    assert (again.segmented, again.kept) == (0, 1)
    assert pd.read_csv(out / "volumes.csv")["level"].tolist() == ["L3-L4", "L4-L5", "L5-S1"]  # re-read, same rows


def test_an_uncertainty_option_gives_each_job_its_map(tmp_path):
    scan, _ = synthetic(tmp_path)
    ckpt = save_checkpoint(tmp_path / "m.ckpt")
    nets, settings = load_models([ckpt])
    out = tmp_path / "out"
    jobs = plan_jobs(collect_inputs([scan]), out, [scan], [ckpt])
    options = PredictOptions(expected_discs=3, tta="flip", uncertainty="entropy")
    report = predict_scans(jobs, nets, settings, [ckpt], out, options)
    assert (out / "scan_uncertainty.nii.gz").is_file() and report.flagged is not None
    assert report.volumes == out / "volumes.csv" and (out / "uncertainty.csv") in report.tables
