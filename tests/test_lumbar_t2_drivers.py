"""The lumbar_t2 experiment drivers' bookkeeping: kept rows, the other level-labelling rule, disc positions."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from tests.paths import REPO


@pytest.fixture
def drivers(monkeypatch):
    """``experiments/lumbar_t2``'s modules (a folder of scripts, not a package)."""
    monkeypatch.syspath_prepend(str(REPO / "experiments" / "lumbar_t2"))
    return {name: importlib.import_module(name) for name in ("run", "seeds_x2", "level_positions")}


def test_a_rerun_replaces_the_pairs_it_scores_and_keeps_the_others(drivers, tmp_path):
    earlier = pd.DataFrame(
        {"held_out": ["sub11", "sub11", "sub20"], "method": ["a", "b", "a"], "dice": [0.1, 0.2, 0.3]}
    )
    earlier.to_csv(tmp_path / "seeds_x2.csv", index=False)
    new = pd.DataFrame({"held_out": ["sub11"], "method": ["a"], "dice": [0.9]})
    table = drivers["seeds_x2"].with_earlier(new, tmp_path / "seeds_x2.csv")
    assert sorted(zip(table["held_out"], table["method"], table["dice"], strict=True)) == [
        ("sub11", "a", 0.9), ("sub11", "b", 0.2), ("sub20", "a", 0.3)
    ]  # fmt: skip


def test_the_other_labelling_rule_is_scored_under_its_own_name(drivers, monkeypatch, tmp_path):
    calls = []

    def predict(args, ckpts, held, out, *flags):
        calls.append((ckpts, held, out, flags))
        return pd.DataFrame({"level": ["all"], "dice": [0.5]})

    monkeypatch.setattr(drivers["seeds_x2"], "predict", predict)
    table = drivers["seeds_x2"].anchor_rule(None, [Path("last.ckpt")], "sub20", tmp_path, "discnet x seed 0")
    assert calls == [([Path("last.ckpt")], "sub20", tmp_path / "orphans_removed_anchor", ("--surplus", "anchor"))]
    assert table["method"].tolist() == ["discnet x seed 0, --surplus anchor"]
    assert table["orphan_removal"].all() and table["held_out"].tolist() == ["sub20"]


def test_rows_not_marked_anchor_keep_the_five_largest_whatever_the_checkpoint_records(drivers, monkeypatch, tmp_path):
    run, flags = drivers["run"], []

    def predict(args, ckpts, held, out, *given):
        flags.append(given)
        return pd.DataFrame({"level": ["all"], "dice": [0.5]})

    monkeypatch.setattr(run, "predict", predict)
    monkeypatch.setattr(run, "read_summary", lambda run_dir: {"epochs": 108, "wall_time_s": 1.0})
    args = type("Args", (), {"work": tmp_path, "reference": tmp_path / "r.csv"})()
    run.score_run(args, "preset", "sub20", tmp_path, tta=True)
    monkeypatch.setattr(run, "complete", lambda run_dir: True)
    monkeypatch.setattr(pd, "read_csv", lambda path: pd.DataFrame())
    run.ensemble(args, "recipe", "sub20")
    assert len(flags) == 4 and all(f[-2:] == ("--surplus", "largest") for f in flags)  # lumbar_t2 records anchor


def test_the_earlier_recipe_is_pinned_for_run_py(drivers):
    experiment, overrides = drivers["run"].earlier_recipe("seed=1")
    assert experiment == "lumbar_t2"
    assert {"augment=none", "model.loss.include_background=false", "trainer.max_epochs=18", "seed=1"} == set(overrides)


def test_disc_positions_of_a_real_mask_run_superior_with_the_label(drivers, lumbar_dir):
    table = drivers["level_positions"].positions(lumbar_dir / "sub20_discs.nii.gz", "manual")
    assert table["label"].tolist() == [1, 2, 3, 4, 5]  # 1 = L5-S1 ... 5 = L1-L2
    assert table["z_mm"].is_monotonic_increasing and (table["voxels"] > 0).all()


def test_the_longer_preset_run_is_the_shipped_preset_at_n_epochs_scored_five_ways(drivers, monkeypatch, tmp_path):
    longer = importlib.import_module("longer")
    trained = []

    def train(args, variant, held):
        trained.append((variant, drivers["run"].VARIANTS[variant], held))
        return tmp_path

    def score_run(args, variant, held, run_dir, tta=None):
        assert tta is True
        base = pd.DataFrame({"level": ["all"], "dice": [0.5], "method": [f"discnet {variant}"], "epochs": [108]})
        return [
            base.assign(orphan_removal=o, tta=t, train_s=1.0)
            for o, t in ((True, "none"), (False, "none"), (True, "flip"))
        ]

    class Folder:
        def __init__(self, run_dir):
            pass

        def checkpoint(self, which):
            return tmp_path / f"{which}.ckpt"

    def anchor_rule(args, ckpts, held, out, method):
        assert ckpts == [tmp_path / "last.ckpt"]
        return pd.DataFrame(
            {"level": ["all"], "dice": [0.4], "orphan_removal": [True], "method": [f"{method}, --surplus anchor"]}
        )

    def predict(args, ckpts, held, out, *flags):
        assert (ckpts, out.name, flags) == (
            [tmp_path / "last.ckpt"],
            "tta_flip_anchor",
            ("--tta", "flip", "--surplus", "anchor"),
        )
        return pd.DataFrame({"level": ["all"], "dice": [0.6]})

    for name, fn in (("train", train), ("score_run", score_run), ("RunFolder", Folder), ("anchor_rule", anchor_rule),
                     ("predict", predict)):  # fmt: skip
        monkeypatch.setattr(longer, name, fn)
    tables = longer._preset(type("Args", (), {"work": tmp_path})(), 108, "sub20")
    assert trained == [("preset_108ep", ("lumbar_t2", ["trainer.max_epochs=108"]), "sub20")]
    assert [t["method"].iloc[0] for t in tables] == [
        "discnet preset_108ep", "discnet preset_108ep", "discnet preset_108ep, flip TTA",
        "discnet preset_108ep, --surplus anchor", "discnet preset_108ep, --surplus anchor, flip TTA",
    ]  # fmt: skip
    assert longer.STEPS_PER_EPOCH * 36 == 396  # the peer's steps match the preset's on a two-scan fold


def test_the_longer_preset_curves_draw_its_seeds_beside_the_paper_preset(drivers, monkeypatch, tmp_path):
    longer = importlib.import_module("longer")
    scores = pd.DataFrame({"epoch": [0, 1], "val/dsc": [0.1, 0.6]})
    for variant in ("preset_108ep", "preset_108ep_seed1", "preset_1080ep", "recipe_x2"):
        (tmp_path / "work" / "train" / variant / "sub25").mkdir(parents=True)
        scores.to_csv(tmp_path / "work" / "train" / variant / "sub25" / "val_scores.csv", index=False)
    (tmp_path / "results" / "epochs").mkdir(parents=True)
    scores.to_csv(tmp_path / "results" / "epochs" / "paper_sub25.csv", index=False)
    drawn = {}
    monkeypatch.setattr(longer, "plot_curves", lambda history, fold, out, bold: drawn.update(
        variants=sorted(set(history["variant"])), fold=fold, out=out.name, bold=bold))  # fmt: skip
    longer._curves(type("Args", (), {"work": tmp_path / "work", "results": tmp_path / "results"})(), "preset_108ep")
    assert drawn == {
        "variants": ["paper", "preset_108ep", "preset_108ep_seed1"], "fold": "sub25",
        "out": "curves_preset_108ep.png", "bold": ("preset_108ep", "paper"),
    }  # fmt: skip


def test_the_longer_preset_seeds_are_ensembled_under_both_rules(drivers, monkeypatch, tmp_path):
    longer, asked = importlib.import_module("longer"), []

    def ensemble(args, name, held, members):
        asked.append((name, held, members))
        return pd.DataFrame({"level": ["all"], "dice": [0.9], "tta": ["none"]}), None

    def anchor_rule(args, ckpts, held, out, method):
        asked.append((len(ckpts), out.relative_to(tmp_path).as_posix()))
        return pd.DataFrame({"level": ["all"], "method": [f"{method}, --surplus anchor"]})

    monkeypatch.setattr(longer, "ensemble", ensemble)
    monkeypatch.setattr(longer, "anchor_rule", anchor_rule)
    tables = longer._ensemble(type("Args", (), {"work": tmp_path})(), 108, "sub20", [0, 1, 2])
    assert asked == [
        ("preset_108ep", "sub20", ("preset_108ep", "preset_108ep_seed1", "preset_108ep_seed2")),
        (3, "predict/preset_108ep_ensemble/sub20"),
    ]
    assert [t["method"].iloc[0] for t in tables] == [
        "discnet preset_108ep, 3-seed ensemble", "discnet preset_108ep, 3-seed ensemble, --surplus anchor"
    ]  # fmt: skip


@pytest.mark.parametrize(("variant", "rule"), [("recipe", ("--surplus", "largest")), ("preset_108ep", ())])
def test_the_final_model_is_labelled_by_the_rule_its_driver_asks_for(drivers, monkeypatch, tmp_path, variant, rule):
    import nibabel as nib
    import numpy as np

    run, called = drivers["run"], []
    scan = nib.Nifti1Image(np.zeros((2, 3, 4), np.float32), np.eye(4))
    (tmp_path / "data").mkdir()
    nib.save(scan, tmp_path / "data" / "sub11_T2w.nii.gz")

    def discnet(*given):
        called.append(given)
        out = Path(given[given.index("--out-dir") + 1])
        out.mkdir(parents=True)
        nib.save(scan, out / "sub11_T2w_discs.nii.gz")
        pd.DataFrame({"level": ["L5-S1"], "volume_mm3": [5903.2]}).to_csv(out / "volumes.csv", index=False)

    monkeypatch.setattr(run, "train", lambda args, v, held: tmp_path / "run")
    monkeypatch.setattr(run, "read_summary", lambda d: {"wall_time_s": 9.0, "epochs": 108, "last_val_dsc": 0.9})
    monkeypatch.setattr(run, "discnet", discnet)
    monkeypatch.setattr(run, "read_checkpoint", lambda path: {})
    monkeypatch.setattr(run, "model_settings", lambda path, ckpt: SimpleNamespace(surplus="anchor", tta="flip"))
    monkeypatch.setitem(run.VARIANTS, "preset_108ep", ("lumbar_t2", ["trainer.max_epochs=108"]))
    args = type("Args", (), {"work": tmp_path, "data": tmp_path / "data", "reference": "r.csv", "results": tmp_path})()
    final = run.final_model(args, variant, "v.csv", *([rule] if not rule else []))
    assert called[0][-len(rule) :] == rule if rule else called[0][-2:] == ("--reference", "r.csv")
    assert "--tta" not in called[0]  # the final model is predicted with the test-time augmentation it records
    assert final["same_geometry"] and final["volumes_mm3"] == {"L5-S1": 5903.0}
    assert final["tta"] == "flip" and final["surplus"] == ("largest" if rule else "anchor")
