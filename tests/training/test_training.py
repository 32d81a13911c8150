"""Training runs: outputs next to checkpoints, reproducible with a seed, resumable, fine-tunable."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from discnet.analysis.runs import load_runs
from discnet.models.checkpoint import load_net
from discnet.models.model_settings import model_settings
from discnet.spine import DEFAULT_LABELS
from discnet.training.run import run_training
from tests.train_helpers import tiny_config


@pytest.fixture(scope="module")
def first_run(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    summary = run_training(tiny_config(tiny_dataset, out, "trainer.max_epochs=3", "seed=7"))
    return out, summary


def test_run_writes_config_summary_and_checkpoints(first_run):
    out, summary = first_run
    assert (out / "config.yaml").is_file()
    assert (out / "checkpoints" / "best.ckpt").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    for key in (
        "version",
        "round",
        "seed",
        "parameter_count",
        "best_val_dsc",
        "best_epoch",
        "subjects",
        "wall_time_s",
        "device",
    ):
        assert key in on_disk
    assert on_disk["status"] == "complete" and on_disk["seed"] == 7
    assert set(on_disk["subjects"]) == {"sub-004", "sub-005"}
    assert 0 <= on_disk["best_val_dsc"] <= 1
    scores = pd.read_csv(out / "val_scores.csv")
    assert list(scores["epoch"]) == [0, 1, 2] and {"sub-004", "sub-005"} <= set(scores.columns)
    assert on_disk["best_val_dsc"] == pytest.approx(scores["val/dsc"].max())
    # the same masks after orphan removal, at the best epoch, for the leaderboards and Figure 5B
    cleaned = on_disk["subjects_orphan_removed"]
    assert set(cleaned) == {"sub-004", "sub-005"} and all(0 <= v <= 1 for v in cleaned.values())
    best_row = scores.loc[scores["epoch"] == on_disk["best_epoch"]].iloc[0]
    assert best_row["val/dsc_orphan_removed"] == pytest.approx(sum(cleaned.values()) / 2)
    best = torch.load(out / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and best["epoch"] == on_disk["best_epoch"]  # last = the latest epoch, always
    assert len(last["discnet"]["history"]) == 3
    long, _ = load_runs([out])
    assert long["dsc_orphan_removed"].notna().all()


def test_checkpoint_rebuilds_the_network_safely(first_run):
    out, _ = first_run
    net, checkpoint = load_net(out / "checkpoints" / "best.ckpt")
    assert net.base_filters == 4 and checkpoint["hyper_parameters"]["image_size"] == 32
    assert checkpoint["hyper_parameters"]["input"]["name"] == "stretched"
    assert checkpoint["hyper_parameters"]["levels"] == DEFAULT_LABELS  # what predict names the discs by
    assert checkpoint["hyper_parameters"]["surplus"] == "largest"  # conf/train.yaml's; lumbar_t2: anchor
    assert checkpoint["hyper_parameters"]["tta"] == "none"  # conf/train.yaml's; few_scans, lumbar_t2: flip


def test_the_surplus_rule_of_the_config_is_what_the_model_records(tiny_dataset, tmp_path, monkeypatch):
    import discnet.training.run as training_run

    class Built(Exception):
        pass

    def segmenter(**kwargs):
        raise Built(kwargs["surplus"])

    monkeypatch.setattr(training_run, "DiscSegmenter", segmenter)
    with pytest.raises(Built, match="^anchor$"):
        run_training(tiny_config(tiny_dataset, tmp_path / "r", "trainer.max_epochs=1", "surplus=anchor"))


def test_same_seed_same_metrics(first_run, tiny_dataset, tmp_path):
    _, summary = first_run
    again = run_training(tiny_config(tiny_dataset, tmp_path / "b", "trainer.max_epochs=3", "seed=7"))
    assert again["subjects"] == summary["subjects"]
    assert pd.read_csv(tmp_path / "b" / "val_scores.csv").equals(pd.read_csv(first_run[0] / "val_scores.csv"))


def test_complete_run_is_skipped(first_run, tiny_dataset):
    out, summary = first_run
    cfg = tiny_config(tiny_dataset, out, "trainer.max_epochs=3", "seed=7", "data.manifest=/nonexistent.csv")
    assert run_training(cfg) == json.loads(json.dumps(summary))


def test_resume_from_checkpoint_matches_uninterrupted(tiny_dataset, tmp_path, first_run):
    two = tmp_path / "two"
    run_training(tiny_config(tiny_dataset, two, "trainer.max_epochs=2", "seed=7"))
    resumed = run_training(
        tiny_config(
            tiny_dataset,
            tmp_path / "resumed",
            "trainer.max_epochs=3",
            "seed=7",
            f"ckpt_path={two / 'checkpoints' / 'last.ckpt'}",
        )
    )
    scores = pd.read_csv(tmp_path / "resumed" / "val_scores.csv")
    assert list(scores["epoch"]) == [0, 1, 2]  # the history travels in the checkpoint
    assert resumed["last_val_dsc"] == pytest.approx(first_run[1]["last_val_dsc"], abs=1e-9)


def test_init_from_starts_from_existing_weights(first_run, tiny_dataset, tmp_path):
    out, _ = first_run
    best = out / "checkpoints" / "best.ckpt"
    (tmp_path / "levels.csv").write_text("label,level\n10,L5-S1\n20,L4-L5\n")
    cfg = tiny_config(
        tiny_dataset,
        tmp_path / "ft",
        "trainer.max_epochs=1",
        "optim.lr=0",
        "optim.weight_decay=0",
        f"model.init_from={best}",
        f"levels={tmp_path / 'levels.csv'}",
    )
    tuned = run_training(cfg)
    _, checkpoint = load_net(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    assert model_settings("last.ckpt", checkpoint).levels == {10: "L5-S1", 20: "L4-L5"}  # cfg.levels, stored
    reference, _ = load_net(best)
    again, _ = load_net(tmp_path / "ft" / "checkpoints" / "last.ckpt")
    for a, b in zip(reference.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert tuned["best_val_dsc"] is not None


def test_last_checkpoint_is_the_latest_epoch_even_without_improvement(tiny_dataset, tmp_path):
    # lr 0: every epoch scores the same, so best.ckpt stays at epoch 0; last.ckpt must still move on
    # (Lightning >= 2.6 only writes save_last with a top-k save: last.ckpt was the best one).
    out = tmp_path / "flat"
    summary = run_training(tiny_config(tiny_dataset, out, "trainer.max_epochs=3", "optim.lr=0", "optim.weight_decay=0"))
    assert summary["best_epoch"] == 0
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 2 and len(last["discnet"]["history"]) == 3
