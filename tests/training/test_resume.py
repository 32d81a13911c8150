"""Resume is the same run (issue 15, points 3 and 4): bit-identical weights and val/dsc after a resume, the
same weights with a cold or a warm slice cache, atomic checkpoint writes under a failing writer, and an
unreadable ``last.ckpt`` set aside with the run resuming from ``best.ckpt`` or starting fresh."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

import discnet.models.checkpoint_io as checkpoint_io
from discnet.errors import InputError
from discnet.models.checkpoint_io import SafeCheckpointIO
from discnet.training.run import run_training
from tests.train_helpers import LEARNS, tiny_config


def weights(out: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / name, map_location="cpu", weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "learns",
    [pytest.param(True, marks=pytest.mark.slow, id="learning config"), pytest.param(False, id="tiny config")],
)
def test_resumed_run_is_bit_identical(learns, tiny_dataset, tmp_path):
    """Stop after epoch 0, resume from last.ckpt: every epoch's val/dsc and the final weights are equal.

    The tiny variant (seconds, val/dsc 0) still has teeth: its weights move every epoch and dropout and the
    shuffle draw random numbers, so a state that is not restored changes them.
    """
    common = [*LEARNS, "seed=0"] if learns else ["model.net.dropout=0.5", "seed=1"]
    epochs = 3 if learns else 2
    whole = tmp_path / "whole"
    run_training(tiny_config(tiny_dataset, whole, *common, "logger=none", f"trainer.max_epochs={epochs}"))
    split = tmp_path / "split"
    run_training(tiny_config(tiny_dataset, split, *common, "logger=none", "trainer.max_epochs=1"))
    first = weights(split)
    resume = [f"trainer.max_epochs={epochs}", "skip_complete=false", f"ckpt_path={split / 'checkpoints' / 'last.ckpt'}"]
    resumed = run_training(tiny_config(tiny_dataset, split, *common, "logger=none", *resume))
    expected = pd.read_csv(whole / "val_scores.csv")
    if learns:
        assert expected["val/dsc"].max() > 0.3  # it learns, so equal scores are not equal zeros
    assert resumed["epochs"] == epochs and not same_weights(first, weights(split))
    pd.testing.assert_frame_equal(pd.read_csv(split / "val_scores.csv"), expected, check_exact=True)
    assert same_weights(weights(split), weights(whole))
    assert same_weights(weights(split, "best.ckpt"), weights(whole, "best.ckpt"))


def test_cold_and_warm_cache_give_the_same_weights(tiny_dataset, tmp_path):
    """Preparing slices must not draw from the global RNG (the network has dropout, which does)."""
    cache = tmp_path / "shared_cache"
    outs = []
    for name in ("cold", "warm"):
        cfg = tiny_config(tiny_dataset, tmp_path / name, "trainer=smoke", "logger=none", "model.net.dropout=0.5")
        cfg.paths.cache_dir = str(cache)
        run_training(cfg)
        outs.append(tmp_path / name)
    assert any(cache.iterdir())
    assert same_weights(weights(outs[0]), weights(outs[1]))


class FullDisk:
    """A ``torch.save`` that writes half of the checkpoint, then fails as a full disk does."""

    def __init__(self, fail_on: int):
        self.calls, self.fail_on = 0, fail_on
        self.save = torch.save

    def __call__(self, obj, f):
        if not hasattr(f, "truncate"):  # other writers (the slice cache) save to paths
            return self.save(obj, f)
        self.calls += 1
        if self.calls < self.fail_on:
            return self.save(obj, f)
        self.save(obj, f)
        f.truncate(f.tell() // 2)
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failing_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = SafeCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, target)
    before = target.read_bytes()
    monkeypatch.setattr(checkpoint_io.torch, "save", FullDisk(fail_on=1))
    with pytest.raises(InputError, match="last.ckpt: cannot be written"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "epoch": 1}, target)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # no temporary left
    assert io.load_checkpoint(target)["epoch"] == 0


def test_training_on_a_full_disk_stops_with_one_line_and_whole_checkpoints(tiny_dataset, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(checkpoint_io.torch, "save", FullDisk(fail_on=3))  # epoch 0's best and last, then full
    with pytest.raises(InputError, match="cannot be written"):
        run_training(tiny_config(tiny_dataset, out, "logger=none", "trainer.max_epochs=3"))
    for name in ("best.ckpt", "last.ckpt"):
        assert SafeCheckpointIO().load_checkpoint(out / "checkpoints" / name)["epoch"] == 0
    assert not [p for p in (out / "checkpoints").iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("best_too", [False, True], ids=["resumes from best", "starts fresh"])
def test_truncated_last_ckpt_is_set_aside(best_too, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["logger=none", "seed=2"]
    run_training(tiny_config(tiny_dataset, out, *common, "trainer.max_epochs=2"))
    folder = out / "checkpoints"
    (out / "summary.json").unlink()
    for name in ("last.ckpt", "best.ckpt") if best_too else ("last.ckpt",):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])  # what a full disk left behind
    best_epoch = None if best_too else torch.load(folder / "best.ckpt", weights_only=True)["epoch"]
    capsys.readouterr()
    summary = run_training(tiny_config(tiny_dataset, out, *common, "trainer.max_epochs=3"))
    lines = [line for line in capsys.readouterr().err.splitlines() if "last.ckpt" in line]
    assert len(lines) == 1 and "moved it to last.ckpt.unreadable-" in lines[0], lines
    assert ("starting fresh" if best_too else f"resuming from {folder / 'best.ckpt'} (epoch {best_epoch})") in lines[0]
    assert len(list(folder.glob("last.ckpt.unreadable-*"))) == 1
    assert summary["status"] == "complete" and summary["epochs"] == 3
    epochs = list(pd.read_csv(out / "val_scores.csv")["epoch"])
    assert epochs == [0, 1, 2]
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"
    shutil.rmtree(out)
