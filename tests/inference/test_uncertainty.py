"""Ensemble uncertainty: test-time flips in the network's slice axes, per-voxel maps, per-disc member volumes,
pairwise Dice and QC rules, reference tables, the flag's hit rate, and ``discnet predict`` with an ensemble."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

import discnet.cli
from discnet.data.preprocess import input_presets
from discnet.data.slices import resize_back
from discnet.errors import InputError
from discnet.evaluation.evaluate import collect_label_files
from discnet.inference.predict import member_probabilities
from discnet.inference.uncertainty import (
    COLUMNS,
    flag_hit_rate,
    member_disc_rows,
    nearest_disc_labels,
    read_reference,
    voxel_uncertainty,
)
from discnet.io import Volume
from tests.inference.test_predict import save_checkpoint, synthetic

LEVELS = {1: "L5-S1", 2: "L4-L5", 3: "L3-L4"}


@pytest.mark.parametrize("tta, count", [("none", 1), ("flip", 2), ("flip-all", 4)])
def test_flips_mirror_the_network_slices_and_come_back(tta, count):
    """The flip member sees each slice mirrored left-right in the network's array (columns = A->P) and its
    answer is mirrored back: a stub that answers its input's own intensities gives identical members."""
    scan = Volume(np.random.default_rng(0).random((5, 12, 9)).astype(np.float32), np.diag([-2.0, 0.8, 0.6, 1.0]))
    seen = []

    def echo(images, shape):
        seen.append(images.clone())
        return resize_back(images[:, None].float(), shape)[:, 0].numpy()

    members = member_probabilities([echo], scan, input_presets()["raw"], 16, tta)
    assert len(members) == count == len(seen)
    for member in members[1:]:
        assert np.allclose(member, members[0], atol=1e-5)
    if count > 1:
        assert torch.equal(seen[1], torch.flip(seen[0], dims=[-1]))
    if count == 4:
        assert torch.equal(seen[2], torch.flip(seen[0], dims=[-2]))


def test_a_member_blind_to_its_input_is_mirrored_back():
    scan = Volume(np.random.default_rng(0).random((4, 10, 6)).astype(np.float32), np.eye(4))
    ramp = lambda images, shape: np.broadcast_to(np.arange(shape[1], dtype=np.float32), (len(images), *shape))  # noqa: E731
    identity, mirrored = member_probabilities([ramp], scan, input_presets()["raw"], 8, "flip")
    assert np.array_equal(mirrored, identity[:, ::-1, :])  # RAS axis 1 is anterior-posterior


@pytest.mark.parametrize("kind, expected", [("entropy", [0.0, 1.0, 0.0, 1.0]), ("variance", [0.0, 0.0, 0.0, 0.25])])
def test_voxel_uncertainty(kind, expected):
    members = np.array([[0.0, 0.5, 1.0, 0.0], [0.0, 0.5, 1.0, 1.0]])
    assert voxel_uncertainty(members, kind).tolist() == pytest.approx(expected, abs=1e-9)


def test_member_voxels_go_to_the_nearest_disc_in_millimetres():
    labels = np.zeros((1, 1, 7), np.uint8)
    labels[0, 0, 0], labels[0, 0, 6] = 1, 2
    (near,) = nearest_disc_labels(labels, [np.array([2, 4])], (1.0, 1.0, 1.0))
    assert near.tolist() == [1, 2]
    labels = np.zeros((5, 1, 5), np.uint8)
    labels[0, 0, 2], labels[2, 0, 0] = 1, 2  # voxel (2, 0, 2): 2 index steps from each, but 2 mm vs 8 mm
    (near,) = nearest_disc_labels(labels, [np.array([np.ravel_multi_index((2, 0, 2), labels.shape)])], (1, 1, 4))
    assert near.tolist() == [1]


def _discs():
    labels = np.zeros((8, 8, 30), np.uint8)
    labels[2:6, 2:6, 3:6], labels[2:6, 2:6, 12:15], labels[2:6, 2:6, 21:24] = 1, 2, 3
    return labels


@pytest.mark.parametrize("rule", ["none", "members_disagree", "disc_count", "border", "reference"])
def test_each_qc_rule_flags_its_disc(rule):
    labels = _discs()
    members = [np.flatnonzero(labels), np.flatnonzero(labels)]
    found, reference = 3, None
    if rule == "members_disagree":
        shrunk = labels.copy()
        shrunk[2:6, 2:6, 3] = 0  # one member misses a third of L5-S1
        members[1] = np.flatnonzero(shrunk)
    if rule == "disc_count":
        found = 4
    if rule == "border":
        labels[2:6, 2:6, 29] = 3  # L3-L4 reaches the last slice
        members = [np.flatnonzero(labels)] * 2
    if rule == "reference":
        reference = {"L4-L5": (10.0, 40.0), "L5-S1": (0.0, 1e6)}  # L4-L5 has 48 mm^3
    rows = {r["level"]: r for r in member_disc_rows(labels, members, (1, 1, 1), 1.0, LEVELS, found, 3, reference)}
    assert list(rows) == ["L3-L4", "L4-L5", "L5-S1"]
    expected = {
        "none": {},
        "members_disagree": {"L5-S1"},
        "disc_count": set(rows),
        "border": {"L3-L4"},
        "reference": {"L4-L5"},
    }[rule]
    for level, row in rows.items():
        assert row["qc_flag"] == (level in expected)
        assert row["qc_reasons"] == (rule if level in expected else "")
    l51 = rows["L5-S1"]
    if rule == "members_disagree":
        assert (l51["member_1_mm3"], l51["member_2_mm3"]) == (48.0, 32.0)
        assert l51["member_cv"] == pytest.approx(np.std([48, 32], ddof=1) / 40)
        assert l51["mean_pairwise_dice"] == pytest.approx(2 * 32 / 80)
    else:
        assert l51["member_sd_mm3"] == 0 and l51["mean_pairwise_dice"] == 1.0


def test_one_member_has_no_spread():
    labels = _discs()
    (row, *_) = member_disc_rows(labels, [np.flatnonzero(labels)], (1, 1, 1), 2.0, LEVELS, 3, 3)
    assert row["members"] == 1 and row["volume_mm3"] == 96.0 and np.isnan(row["member_sd_mm3"])
    assert row["qc_flag"] is False and list(row)[:9] == COLUMNS[1:10]


def test_read_reference_wide_cm3_and_long_mm3(tmp_path, shared_dir):
    wide = read_reference(shared_dir / "data" / "ivd-volumes" / "reference_volumes_cm3.csv")
    table = pd.read_csv(shared_dir / "data" / "ivd-volumes" / "reference_volumes_cm3.csv")
    assert wide["L5-S1"] == pytest.approx((table["L5-S1"].min() * 1000, table["L5-S1"].max() * 1000))
    long = tmp_path / "volumes.csv"
    pd.DataFrame({"level": ["L4-L5", "L4-L5", "L5-S1"], "volume_mm3": [10.0, 30.0, 5.0]}).to_csv(long, index=False)
    assert read_reference(long) == {"L4-L5": (10.0, 30.0), "L5-S1": (5.0, 5.0)}
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="bad.csv"):
        read_reference(bad)


def test_flag_hit_rate_counts_missed_discs_through_the_count_rule():
    uncertainty = pd.DataFrame(
        {
            "subject": ["sub1_T2w"] * 2 + ["sub2_T2w"] * 2,
            "level": ["L4-L5", "L5-S1", "L4-L5", "L5-S1"],
            "qc_reasons": ["disc_count", "disc_count", "", "members_disagree"],
        }
    )
    metrics = pd.DataFrame(
        {
            "subject": ["sub1", "sub1", "sub1", "sub1", "sub2", "sub2", "sub2"],
            "level": ["all", "L3-L4", "L4-L5", "L5-S1", "all", "L4-L5", "L5-S1"],
            "dice": [0.7, 0.0, 0.9, 0.6, 0.8, 0.5, 0.9],  # sub1 L3-L4 missed; sub2 L4-L5 wrong but unflagged
        }
    )
    rates = flag_hit_rate(uncertainty, metrics, dice_below=0.8).set_index("rule")
    assert rates.loc["any", ["discs", "wrong", "flagged", "caught"]].tolist() == [5, 3, 4, 2]
    assert rates.loc["any", "sensitivity"] == pytest.approx(2 / 3) and rates.loc["any", "precision"] == 0.5
    assert rates.loc["disc_count", ["flagged", "caught"]].tolist() == [3, 2]
    assert rates.loc["members_disagree", ["flagged", "caught"]].tolist() == [1, 0]


def test_predict_with_an_ensemble_writes_uncertainty_tables_and_map(tmp_path, monkeypatch):
    """Two checkpoints x flip = 4 members of a "network" that segments bright voxels (so every member
    agrees); the reference table excludes L4-L5's volume."""
    image_path, truth = synthetic(tmp_path)
    scan = nib.load(image_path)
    bright = np.asarray(scan.dataobj) + 150.0 * (truth.array > 0)
    nib.save(nib.Nifti1Image(bright.astype(np.float32), scan.affine), image_path)
    scan = nib.load(image_path)

    def probability(nets, images, native_shape, *args, **kwargs):
        return (resize_back(images[:, None].float(), native_shape)[:, 0] > 0.6).float().numpy()

    monkeypatch.setattr("discnet.inference.predict.disc_probability", probability)
    ckpts = [save_checkpoint(tmp_path / f"m{seed}.ckpt", seed=seed) for seed in (0, 1)]
    reference = tmp_path / "reference.csv"
    ranges = {"level": ["L4-L5", "L5-S1", "L5-S1"], "volume_cm3": [0.001, 0.1, 1.0]}  # L4-L5 is 0.288 cm^3
    pd.DataFrame(ranges).to_csv(reference, index=False)
    out = tmp_path / "out"
    args = ["predict", "--ckpt", ckpts[0], "--ckpt", ckpts[1], image_path, "--out-dir", out, "--tta", "flip"]
    args += ["--uncertainty", "entropy", "--reference", reference, "--expected-discs", "3"]
    args += ["--levels", _levels_csv(tmp_path)]
    assert discnet.cli.main([str(a) for a in args]) == 0
    table = pd.read_csv(out / "uncertainty.csv", keep_default_na=False)
    assert table["level"].tolist() == ["L3-L4", "L4-L5", "L5-S1"]
    assert [c for c in table.columns if c.startswith("member_") and c.endswith("_mm3") and c[7].isdigit()] == [
        f"member_{k}_mm3" for k in range(1, 5)
    ]
    assert (table["members"] == 4).all() and (table["mean_pairwise_dice"] > 0.95).all()
    assert table.set_index("level")["qc_reasons"].to_dict() == {"L3-L4": "", "L4-L5": "reference", "L5-S1": ""}
    members = pd.read_csv(out / "members.csv")
    assert members["transform"].tolist() == ["identity", "identity", "flip_ap", "flip_ap"]
    volumes = pd.read_csv(out / "volumes.csv")
    assert table["volume_mm3"].tolist() == pytest.approx(volumes["volume_mm3"].tolist())
    uncertainty = nib.load(out / "scan_uncertainty.nii.gz")
    assert uncertainty.shape == scan.shape and np.array_equal(uncertainty.affine, scan.affine)
    values = np.asarray(uncertainty.dataobj)
    assert values.dtype == np.float32 and 0 <= values.min() and values.max() <= 1
    measured = pd.read_csv(out / "measurements_wide.csv")
    assert measured["volume"].tolist() == pytest.approx(volumes["volume_mm3"].tolist())
    assert set(pd.read_csv(out / "measurements.csv")["subject"]) == {"scan"}
    assert list(collect_label_files([out])) == ["scan"]  # evaluate skips the uncertainty map


def _levels_csv(tmp_path):
    path = tmp_path / "levels.csv"
    path.write_text("label,level\n1,L5-S1\n2,L4-L5\n3,L3-L4\n")
    return path
