"""One line per epoch when the output is not a terminal; Lightning's noise filtered."""

from __future__ import annotations

import io
import logging

from discnet.training.epoch_log import EpochLine, is_terminal, quiet_lightning


def test_a_line_per_epoch_has_epoch_loss_dice_and_time():
    line = EpochLine.format(0, 3, {"train/loss_epoch": 1.25, "val/dsc": 0.5, "val/dsc_orphan_removed": 0.6}, 12.4)
    assert line == "epoch 1/3  train/loss 1.2500  val/dsc 0.5000  val/dsc_orphan_removed 0.6000  elapsed 12 s"


def test_a_file_is_not_a_terminal():
    assert not is_terminal(io.StringIO())


def test_lightnings_tip_is_dropped_and_other_messages_kept(caplog):
    quiet_lightning()
    quiet_lightning()
    from lightning.pytorch.utilities import rank_zero_info

    with caplog.at_level(logging.INFO):
        rank_zero_info("💡 Tip: For seamless cloud logging, try installing something")
        rank_zero_info("Loading `train_dataloader` to estimate number of stepping batches.")
        rank_zero_info("GPU available: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]


def test_lightnings_srun_hint_is_silenced_and_other_warnings_kept():
    import warnings

    from lightning.pytorch.utilities import rank_zero_warn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_lightning()
        rank_zero_warn("The `srun` command is available on your system but is not used. HINT: ...")
        rank_zero_warn("something a user should read")
    assert [str(w.message) for w in caught] == ["something a user should read"]


def test_the_progress_bar_counts_epochs_from_one():
    from types import SimpleNamespace

    from discnet.training.epoch_log import EpochProgressBar

    bar = EpochProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=3)
    assert bar._get_train_description(2).strip() == "Epoch 3/3"
