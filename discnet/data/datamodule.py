"""LightningDataModule: subjects from a manifest, preprocessed once, served as slices.

Training uses every session of the training subjects (the paper's repetition-as-augmentation) and serves
single slices from memory; validation yields whole session-1 volumes of the validation subjects so that a
3D Dice per subject can be computed on the native grid.

Example (with a manifest that has a ``split`` column):
    >>> dm = DiscDataModule("subjects.csv", input={"name": "stretched"}, image_size=128)  # doctest: +SKIP
    >>> dm.setup("fit")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from rich.progress import track
from torch.utils.data import DataLoader, Dataset

from discnet.data.allocator import keep_freed_memory
from discnet.data.augment import augment_batch, batch_generator
from discnet.data.augment_config import augment_config
from discnet.data.cache import cache_key, cached_stack
from discnet.data.default_data import ensure_default_data
from discnet.data.manifest import load_manifest
from discnet.data.preprocess import InputConfig, SliceStack, input_config, prepare_volume
from discnet.data.slices import neighbour_rows
from discnet.errors import InputError
from discnet.io import read_volume


class SliceDataset(Dataset):
    """Slices held in memory: item ``i`` is ``(image (C, S, S) float32, label (S, S) uint8)``.

    ``rows`` are the slices trained on (all by default); with ``context`` k, an item's channels are the
    slice and its k neighbours on each side within its own scan (``neighbours``: (N, 2k+1) row indices,
    the scan's edge slice repeated beyond its ends), so blank slices stay available as context even when
    they are not trained on. A DataLoader fetches a whole batch at once (``__getitems__``; use
    :func:`as_batch` as its ``collate_fn``): one float conversion per batch instead of one per slice.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        rows: torch.Tensor | None = None,
        neighbours: torch.Tensor | None = None,
    ):
        self.images, self.labels = images, labels
        self.rows = rows if rows is not None else torch.arange(len(images))
        self.neighbours = neighbours if neighbours is not None else torch.arange(len(images))[:, None]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        images, labels = self.__getitems__([i])
        return images[0], labels[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.rows[torch.as_tensor(indices)]
        if self.neighbours.shape[1] == 1:
            # Stacking views then converting once measured 5x faster than fancy indexing of float16 rows.
            images = torch.stack([self.images[i] for i in rows.tolist()])[:, None]
        else:
            images = self.images[self.neighbours[rows]]
        return images.float(), torch.stack([self.labels[i] for i in rows.tolist()])


def as_batch(batch):
    """``collate_fn`` for :class:`SliceDataset`: its ``__getitems__`` already returns a batch."""
    return batch


@dataclass
class ValidationVolume:
    """A whole validation scan: its slices for the network and its native disc mask."""

    subject: str
    images: torch.Tensor
    native_labels: np.ndarray
    native_shape: tuple[int, int]


class VolumeDataset(Dataset):
    def __init__(self, volumes: list[ValidationVolume]):
        self.volumes = volumes

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, i) -> ValidationVolume:
        return self.volumes[i]


def _first(batch):
    return batch[0]


class DiscDataModule(L.LightningDataModule):
    """Slices of the subjects in ``manifest`` for training and whole volumes for validation.

    Args:
        manifest: ``subjects.csv`` with a ``split`` column (``discnet split`` writes it).
        root: folder that a relative ``manifest`` path is taken from (a dataset's folder).
        input: an input preset (see :class:`~discnet.data.preprocess.InputConfig`).
        image_size: side of the square network input (512 in the paper).
        batch_size: training slices per batch.
        num_workers: DataLoader workers for training.
        cache_dir: folder for preprocessed stacks shared between runs (None: memory only).
        seed: seed of the augmentation draws.
        val_split: split name used for validation.
        val_subjects: validate on these subjects and train on all others, ignoring any ``split``
            column (leave-one-out folds; a manifest without a ``split`` column).
        train_on_val: also train on the validation subjects (a final model fitted to every subject;
            its validation Dice is then a training fit, not a held-out score).
        train_on_test: with ``val_subjects``, also train on subjects whose ``split`` is ``test`` (never
            by default: a test subject stays unseen unless asked for explicitly).
        augment: an augmentation preset (``conf/augment``) applied on the fly to each training batch
            after it reaches the device; its draws depend on (seed, epoch, step) only.
        keep_freed_memory: with augmentation, keep freed batch buffers in the process
            (:func:`~discnet.data.allocator.keep_freed_memory`; a third fewer CPU seconds per batch).
        context_slices: neighbouring slices on each side given as extra input channels (2.5D).
        synthesize: phantoms made on first use when ``manifest`` is their missing ``subjects.csv``
            (:func:`discnet.data.default_data.ensure_default_data`; ``conf/data/synthetic.yaml``).
    """

    def __init__(
        self,
        manifest: str,
        root: str | None = None,
        input: dict | InputConfig | None = None,
        image_size: int = 256,
        batch_size: int = 8,
        num_workers: int = 0,
        cache_dir: str | None = None,
        seed: int = 0,
        val_split: str = "val",
        val_subjects: list[str] | None = None,
        train_on_val: bool = False,
        train_on_test: bool = False,
        augment: dict | None = None,
        keep_freed_memory: bool = True,
        context_slices: int = 0,
        synthesize: dict | None = None,
    ):
        super().__init__()
        self.manifest = Path(root or ".") / manifest
        self.synthesize = dict(synthesize) if synthesize else None
        self.input = input if isinstance(input, InputConfig) else input_config(input)
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.cache_dir, self.seed, self.val_split = cache_dir, seed, val_split
        self.val_subjects = [str(s) for s in val_subjects] if val_subjects else None
        self.train_on_val, self.train_on_test = train_on_val, train_on_test
        self.augment = augment_config(augment)
        self.keep_freed_memory = bool(keep_freed_memory)
        self.context_slices = int(context_slices)
        if self.context_slices < 0:
            raise InputError("context_slices", f"must be >= 0, not {self.context_slices}", "set model.context_slices")
        if self.context_slices and self.input.augment_copies:
            raise InputError(
                "context_slices",
                f"cannot be combined with input={self.input.name} (its extra copies have no neighbours)",
                "use input=stretched with augment=few_scans, or model.context_slices=0",
            )
        self.train_set: SliceDataset | None = None
        self.val_set: VolumeDataset | None = None
        self._sampler_generator: torch.Generator | None = None
        self._sampler_state: torch.Tensor | None = None

    def _stack(self, row, rng: np.random.Generator | None) -> SliceStack:
        settings = {"input": vars(self.input), "size": self.image_size, "augment_seed": self.seed if rng else None}
        key = cache_key([row.image, row.label], settings)

        def compute() -> SliceStack:
            image = read_volume(row.image)
            label = read_volume(row.label, kind="label")
            if label.shape != image.shape:
                raise InputError(
                    row.label,
                    f"label shape {label.shape} differs from image shape {image.shape}",
                    "give the label map drawn on this image",
                )
            return prepare_volume(image, label, self.input, self.image_size, rng)

        return cached_stack(self.cache_dir, key, compute)

    def _split(self, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Training rows (every session) and validation rows (session 1)."""
        subjects = table["subject"].astype(str)
        if self.val_subjects is not None:
            unknown = sorted(set(self.val_subjects) - set(subjects))
            if unknown:
                raise InputError(self.manifest, f"has no subject {', '.join(unknown)}", "check data.val_subjects")
            is_val = subjects.isin(self.val_subjects)
            held_out = table["split"].astype(str).eq("test") if "split" in table.columns else False
            is_train = ~is_val & (~held_out | self.train_on_test)
        elif "split" in table.columns:
            is_val, is_train = table["split"] == self.val_split, table["split"] == "train"
        else:
            raise InputError(
                self.manifest,
                "has no 'split' column",
                f"run: discnet split {self.manifest} --val N, or set data.val_subjects",
            )
        if self.train_on_val:
            is_train = is_train | is_val
        train_rows, val_rows = table[is_train], table[is_val & (table["session"] == 1)]
        if train_rows.empty or val_rows.empty:
            raise InputError(
                self.manifest,
                "needs training subjects and session-1 validation subjects",
                f"run: discnet split {self.manifest} --val N, or set data.val_subjects",
            )
        return train_rows, val_rows

    def setup(self, stage: str | None = None) -> None:
        if self.val_set is not None:
            return
        ensure_default_data({"manifest": self.manifest, "synthesize": self.synthesize})
        if self.augment.active and self.keep_freed_memory:
            keep_freed_memory()
        table = load_manifest(self.manifest, require_labels=True)
        train_rows, val_rows = self._split(table)
        rng = np.random.default_rng(self.seed)
        stacks = [
            self._stack(row, rng)
            for row in track(list(train_rows.itertuples()), description="Preparing training volumes")
        ]
        self.train_set = self._slice_dataset(stacks)
        volumes = []
        for row in val_rows.itertuples():
            stack = self._stack(row, None)
            volumes.append(ValidationVolume(str(row.subject), stack.images, stack.native_labels, stack.native_shape))
        self.val_set = VolumeDataset(volumes)

    def _slice_dataset(self, stacks: list[SliceStack]) -> SliceDataset:
        if not self.context_slices:
            pairs = [stack.training_pairs(self.input.delete_blanks) for stack in stacks]
            return SliceDataset(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))
        rows, neighbours, offset = [], [], 0
        for stack in stacks:
            count = len(stack.images)
            keep = stack.has_disc if self.input.delete_blanks else np.ones(count, bool)
            rows.append(offset + torch.as_tensor(np.flatnonzero(keep)))
            neighbours.append(neighbour_rows(count, self.context_slices, offset))
            offset += count
        images = torch.cat([stack.images for stack in stacks])
        labels = torch.cat([stack.labels for stack in stacks])
        return SliceDataset(images, labels, torch.cat(rows), torch.cat(neighbours))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Training batches are augmented on their device (``augment``); validation is never."""
        trainer = getattr(self, "trainer", None)
        if trainer is None or not trainer.training or not self.augment.active:
            return batch
        return self.augmented(*batch, trainer.current_epoch, trainer.global_step, getattr(trainer, "global_rank", 0))

    def augmented(self, images, labels, epoch: int, step: int, rank: int = 0):
        """A training batch of this datamodule (its own: overwritten) augmented for (seed, epoch, step, rank)."""
        generator = batch_generator(self.seed + 7919 * rank, epoch, step)
        return augment_batch(images, labels, self.augment, generator, inplace=True)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        if self._sampler_state is not None:  # resuming: the shuffle continues where the checkpoint left it
            generator.set_state(self._sampler_state)
        self._sampler_generator = generator
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=False,
            num_workers=self.num_workers,
            generator=generator,
            collate_fn=as_batch,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1, shuffle=False, collate_fn=_first)

    def state_dict(self) -> dict:
        """The training sampler's generator state (stored in checkpoints, so a resumed run shuffles alike)."""
        generator = self._sampler_generator
        return {"sampler": generator.get_state()} if generator is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._sampler_state = state_dict.get("sampler")
