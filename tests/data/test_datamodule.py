"""The datamodule: train on every session's slices, validate on whole session-1 volumes, cache once."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from discnet.data import datamodule as dm_module
from discnet.data.datamodule import DiscDataModule
from discnet.errors import InputError


@pytest.fixture()
def manifest(lumbar_dir, tmp_path):
    rows = [
        ("sub11", 1, "train"),
        ("sub11", 2, "train"),  # a second session of a training subject (same files, for the count)
        ("sub20", 1, "val"),
        ("sub20", 2, "val"),  # later sessions of validation subjects are never used
    ]
    table = pd.DataFrame(
        [
            {
                "subject": s,
                "session": k,
                "split": split,
                "image": str(lumbar_dir / f"{s}_T2w.nii.gz"),
                "label": str(lumbar_dir / f"{s}_discs.nii.gz"),
            }
            for s, k, split in rows
        ]
    )
    path = tmp_path / "subjects.csv"
    table.to_csv(path, index=False)
    return path


def test_train_uses_all_sessions_and_val_whole_session1_volumes(manifest, tmp_path):
    dm = DiscDataModule(
        str(manifest), input={"name": "stretched"}, image_size=32, batch_size=4, cache_dir=str(tmp_path / "cache")
    )
    dm.setup("fit")
    assert len(dm.train_set) == 2 * 43  # blank slices deleted, both sessions
    image, label = dm.train_set[0]
    assert image.shape == (1, 32, 32) and label.shape == (32, 32)
    assert len(dm.val_set) == 1
    volume = dm.val_set[0]
    assert volume.subject == "sub20" and volume.images.shape == (67, 32, 32)
    assert volume.native_labels.shape == (67, 221, 221)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 1, 32, 32) and labels.dtype.is_floating_point is False


def test_cache_serves_a_second_run_without_reading_volumes(manifest, tmp_path, monkeypatch):
    kwargs = dict(input={"name": "augmented", "augment_copies": 1}, image_size=32, cache_dir=str(tmp_path / "c"))
    first = DiscDataModule(str(manifest), **kwargs)
    first.setup("fit")

    def no_reading(*args, **kwargs):
        raise AssertionError("a cached volume was read again")

    monkeypatch.setattr(dm_module, "read_volume", no_reading)
    second = DiscDataModule(str(manifest), **kwargs)
    second.setup("fit")
    assert len(second.train_set) == len(first.train_set) == 4 * 43
    assert (second.train_set.images == first.train_set.images).all()


def test_manifest_without_split_is_refused(lumbar_dir, tmp_path):
    path = tmp_path / "subjects.csv"
    pd.DataFrame(
        [
            {
                "subject": "sub11",
                "image": str(lumbar_dir / "sub11_T2w.nii.gz"),
                "label": str(lumbar_dir / "sub11_discs.nii.gz"),
            }
        ]
    ).to_csv(path, index=False)
    with pytest.raises(InputError, match="discnet split"):
        DiscDataModule(str(path), image_size=32).setup("fit")


@pytest.mark.parametrize("train_on_val", [False, True])
def test_val_subjects_pick_the_held_out_scan_of_a_manifest_without_split(lumbar_dir, tmp_path, train_on_val):
    dm = DiscDataModule(
        "subjects.csv",
        root=str(lumbar_dir),
        input={"name": "stretched"},
        image_size=32,
        val_subjects=["sub11"],
        train_on_val=train_on_val,
        cache_dir=str(tmp_path / "cache"),
    )
    dm.setup("fit")
    assert [v.subject for v in dm.val_set.volumes] == ["sub11"]
    sub11_only = DiscDataModule(
        str(lumbar_dir / "subjects.csv"),
        input={"name": "stretched"},
        image_size=32,
        val_subjects=["sub20", "sub25"],
        cache_dir=str(tmp_path / "cache"),
    )
    sub11_only.setup("fit")
    assert len(sub11_only.train_set) == 43  # sub11's slices with disc
    held_out = len(dm.train_set) - (43 if train_on_val else 0)
    assert held_out > 2 * 20  # sub20 + sub25, blank slices deleted


def test_unknown_val_subject_is_refused(lumbar_dir):
    dm = DiscDataModule(str(lumbar_dir / "subjects.csv"), image_size=32, val_subjects=["sub99"])
    with pytest.raises(InputError, match="sub99"):
        dm.setup("fit")


@pytest.mark.parametrize("shape", [(5, 8, 8), (12, 32, 32)])
def test_batched_fetch_equals_per_slice_items(shape):
    images = torch.rand(shape).half()
    labels = (torch.rand(shape) > 0.5).to(torch.uint8)
    dataset = dm_module.SliceDataset(images, labels)
    indices = [3, 0, shape[0] - 1]
    batch_images, batch_labels = dataset.__getitems__(indices)
    items = [dataset[i] for i in indices]
    assert torch.equal(batch_images, torch.stack([x for x, _ in items])) and batch_images.dtype == torch.float32
    assert torch.equal(batch_labels, torch.stack([y for _, y in items]))
    assert dm_module.as_batch((batch_images, batch_labels))[0] is batch_images


def test_context_slices_give_each_slice_its_neighbours_and_blank_slices_as_context(manifest, tmp_path):
    kwargs = dict(input={"name": "stretched"}, image_size=32, cache_dir=str(tmp_path / "c"))
    flat = DiscDataModule(str(manifest), **kwargs)
    flat.setup("fit")
    context = DiscDataModule(str(manifest), context_slices=1, **kwargs)
    context.setup("fit")
    assert len(context.train_set) == len(flat.train_set) == 2 * 43  # trained on disc slices only
    images, labels = context.train_set.__getitems__([0, 5])
    ref_images, ref_labels = flat.train_set.__getitems__([0, 5])
    assert images.shape == (2, 3, 32, 32)
    torch.testing.assert_close(images[:, 1:2], ref_images)  # the centre channel is the slice itself
    assert torch.equal(labels, ref_labels)
    first_disc = int(context.train_set.rows[0])
    stack = context.train_set.images
    # the first disc slice's upper neighbour is a blank slice of the scan, kept as context
    torch.testing.assert_close(images[0, 0], stack[first_disc - 1].float())


def test_augmentation_runs_on_training_batches_only_and_depends_on_seed_epoch_step(manifest, tmp_path):
    from types import SimpleNamespace

    dm = DiscDataModule(
        str(manifest), input={"name": "stretched"}, image_size=32, augment={"gamma_p": 1.0, "rotation_p": 1.0}
    )
    batch = (torch.rand(4, 1, 32, 32), torch.zeros(4, 32, 32, dtype=torch.uint8))
    dm.trainer = SimpleNamespace(training=False, global_step=0, current_epoch=0, global_rank=0)
    assert dm.on_after_batch_transfer(batch, 0) is batch  # validation: untouched
    dm.trainer = SimpleNamespace(training=True, global_step=3, current_epoch=1, global_rank=0)
    def fresh():  # a batch as the loader hands it over: the datamodule's own, augmented in place
        return tuple(t.clone() for t in batch)

    own = fresh()
    first = dm.on_after_batch_transfer(own, 0)
    assert first[0] is own[0] and first[1] is own[1]
    again = dm.on_after_batch_transfer(fresh(), 0)
    assert not torch.equal(first[0], batch[0]) and torch.equal(first[0], again[0])
    dm.trainer.global_step = 4
    assert not torch.equal(dm.on_after_batch_transfer(fresh(), 0)[0], first[0])


def test_augmentation_settings_do_not_invalidate_the_slice_cache(manifest, tmp_path, monkeypatch):
    kwargs = dict(input={"name": "stretched"}, image_size=32, cache_dir=str(tmp_path / "c"))
    DiscDataModule(str(manifest), **kwargs).setup("fit")

    def no_reading(*args, **kwargs):
        raise AssertionError("a volume was read although the cache holds it")

    monkeypatch.setattr(dm_module, "read_volume", no_reading)
    DiscDataModule(str(manifest), augment={"gamma_p": 0.5, "elastic_p": 0.2}, context_slices=1, **kwargs).setup("fit")


@pytest.mark.parametrize(
    "augment, keep, kept", [({"gamma_p": 0.5}, True, True), ({"gamma_p": 0.5}, False, False), (None, True, False)]
)
def test_augmenting_datamodules_keep_freed_batch_memory(manifest, tmp_path, monkeypatch, augment, keep, kept):
    calls = []
    monkeypatch.setattr(dm_module, "keep_freed_memory", lambda: calls.append(1))
    kwargs = dict(input={"name": "stretched"}, image_size=32, cache_dir=str(tmp_path / "c"))
    DiscDataModule(str(manifest), augment=augment, keep_freed_memory=keep, **kwargs).setup("fit")
    assert bool(calls) == kept


def test_context_slices_with_input4_copies_are_refused(manifest):
    with pytest.raises(InputError, match="context_slices"):
        DiscDataModule(str(manifest), input={"name": "augmented", "augment_copies": 1}, context_slices=1)


@pytest.mark.parametrize("train_on_test", [False, True])
def test_val_subjects_never_train_on_test_subjects_unless_asked(lumbar_dir, tmp_path, train_on_test):
    table = pd.read_csv(lumbar_dir / "subjects.csv")
    table["image"] = [str(lumbar_dir / p) for p in table["image"]]
    table["label"] = [str(lumbar_dir / p) for p in table["label"]]
    table["split"] = table["subject"].map({"sub11": "train", "sub20": "val", "sub25": "test"})
    table.to_csv(tmp_path / "subjects.csv", index=False)
    dm = DiscDataModule(
        str(tmp_path / "subjects.csv"),
        input={"name": "stretched"},
        image_size=32,
        val_subjects=["sub20"],
        train_on_test=train_on_test,
        cache_dir=str(tmp_path / "cache"),
    )
    dm.setup("fit")
    assert len(dm.train_set) > 43 if train_on_test else len(dm.train_set) == 43  # sub11 alone: 43 disc slices
