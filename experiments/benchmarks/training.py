"""Sections 2 and 3: slices per second from the datamodule against a torchio Queue, and the time per
optimizer step under Lightning against a plain PyTorch loop."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import pandas as pd
import torch
import torchio as tio
from inference import Setup, paper_scan
from machine import synchronize
from omegaconf import OmegaConf

from discnet.data.allocator import keep_freed_memory
from discnet.data.datamodule import DiscDataModule
from discnet.models.optimizer import build_optimizer
from discnet.training.segmenter import DiscSegmenter

CONF = Path(__file__).resolve().parents[2] / "conf"


def _slices_per_s(loader, limit: int) -> tuple[float, int]:
    count, start = 0, time.perf_counter()
    for images, _ in loader:
        count += len(images)
        if count >= limit:
            break
    return count / (time.perf_counter() - start), count


def _augmented(dm: DiscDataModule):
    """The datamodule's batches through its augmentation, as it hands them to training (its
    ``on_after_batch_transfer``, step by step)."""
    for step, (images, labels) in enumerate(dm.train_dataloader()):
        yield dm.augmented(images, labels, 0, step)


def _torchio_loader(manifest, setup: Setup, batch_size: int):
    """A plain torchio pipeline: subjects -> canonical, stretched, resized -> slice patches from a Queue."""
    table = pd.read_csv(manifest)
    subjects = [
        tio.Subject(image=tio.ScalarImage(manifest.parent / row.image), label=tio.LabelMap(manifest.parent / row.label))
        for row in table.itertuples()
    ]
    transform = tio.Compose(
        [
            tio.ToCanonical(),
            tio.RescaleIntensity((0, 1), percentiles=(2.5, 97.5)),
            tio.Resize((setup.slices, setup.image_size, setup.image_size)),
        ]
    )
    dataset = tio.SubjectsDataset(subjects, transform=transform)
    queue = tio.Queue(
        dataset,
        max_length=4 * setup.slices,
        samples_per_volume=setup.slices,
        sampler=tio.UniformSampler((1, setup.image_size, setup.image_size)),
        num_workers=0,
        shuffle_subjects=True,
        shuffle_patches=True,
    )
    loader = torch.utils.data.DataLoader(queue, batch_size=batch_size, num_workers=0)
    for batch in loader:
        yield batch["image"][tio.DATA][:, :, 0], batch["label"][tio.DATA][:, 0, 0]


def data_throughput(setup: Setup, subjects: int) -> dict:
    manifest = paper_scan(setup, subjects, "train")
    table = pd.read_csv(manifest)
    table["split"] = ["val" if i == 0 else "train" for i in range(len(table))]
    table.to_csv(manifest, index=False)
    kwargs = dict(input={"name": "augmented", "augment_copies": 1}, image_size=setup.image_size, batch_size=8)
    cache = setup.work / "cache"
    start = time.perf_counter()
    DiscDataModule(str(manifest), cache_dir=str(cache), **kwargs).setup("fit")
    first_setup = time.perf_counter() - start
    start = time.perf_counter()
    dm = DiscDataModule(str(manifest), cache_dir=str(cache), **kwargs)
    dm.setup("fit")
    cached_setup = time.perf_counter() - start
    total = len(dm.train_set)
    ours = max(_slices_per_s(dm.train_dataloader(), total)[0] for _ in range(setup.repeats))
    # augment=few_scans through a datamodule configured with it (its setup keeps freed batch memory,
    # discnet.data.allocator, as training does; this process keeps it from here on)
    few_scans = OmegaConf.to_container(OmegaConf.load(CONF / "augment" / "few_scans.yaml"))
    augmenting = DiscDataModule(str(manifest), cache_dir=str(cache), augment=few_scans, **kwargs)
    augmenting.setup("fit")
    augmented = max(_slices_per_s(_augmented(augmenting), total)[0] for _ in range(setup.repeats))
    theirs, _ = _slices_per_s(_torchio_loader(manifest, setup, 8), total)
    return {
        "training_slices": total,
        "first_setup_s": round(first_setup, 2),
        "setup_from_cache_s": round(cached_setup, 2),
        "datamodule_slices_per_s": round(ours, 1),
        "datamodule_few_scans_augment_slices_per_s": round(augmented, 1),
        "augment_keeps_freed_memory": augmenting.keep_freed_memory and keep_freed_memory(),
        "torchio_queue_slices_per_s": round(theirs, 2),
        "speedup": round(ours / theirs, 1),
    }


class _StepTimes(L.Callback):
    def __init__(self, device):
        self.device, self.times, self._start = device, [], 0.0

    def on_train_batch_start(self, *args):
        synchronize(self.device)
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args):
        synchronize(self.device)
        self.times.append(time.perf_counter() - self._start)


def step_overhead(setup: Setup, base_filters: int, image_size: int, batch_size: int, steps: int) -> dict:
    """Median time per optimizer step, Lightning vs a plain loop, same model, batches and optimizer."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size * steps, 1, image_size, image_size, generator=generator)
    labels = (images[:, 0] > 0.7).long()
    dataset = torch.utils.data.TensorDataset(images, labels)
    net = {"base_filters": base_filters, "dropout": 0.2}
    optim = {"lr": 1e-3}

    def loader():
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)

    torch.manual_seed(0)
    model = DiscSegmenter(net=net, optim=optim)
    timer = _StepTimes(setup.device)
    trainer = L.Trainer(
        accelerator=setup.device.type,
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader())
    lightning_fit = time.perf_counter() - start

    torch.manual_seed(0)
    plain = DiscSegmenter(net=net, optim=optim).to(setup.device)
    optimizer = build_optimizer(plain.parameters(), dict(plain.hparams.optim), total_steps=steps)
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    plain.train()
    times = []
    for x, y in loader():
        synchronize(setup.device)
        t = time.perf_counter()
        x, y = x.to(setup.device), y.to(setup.device)
        loss = plain.loss(plain(x), y[:, None])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        synchronize(setup.device)
        times.append(time.perf_counter() - t)
    lightning_step = sorted(timer.times[1:])[len(timer.times[1:]) // 2]
    plain_step = sorted(times[1:])[len(times[1:]) // 2]
    return {
        "model": f"U-Net depth 4, {base_filters} first-level filters, {image_size} px, batch {batch_size}",
        "steps": steps,
        "lightning_step_s": round(lightning_step, 4),
        "plain_step_s": round(plain_step, 4),
        "overhead": round(lightning_step / plain_step - 1, 4),
        "lightning_fit_s": round(lightning_fit, 2),
        "plain_loop_s": round(sum(times), 2),
    }
