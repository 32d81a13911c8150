"""``augment=few_scans`` in the main process (as the datamodule does it) against in DataLoader worker
processes, batches of 8 at 512 px.

The alternative tried for more augmented slices per second on a CPU: each worker augments whole batches
on one thread and hands them over through shared memory. Measured here, not assumed: the best epoch of
``--epochs`` for 0, 1 and 2 workers, interleaved over ``--rounds``.

    python experiments/benchmarks/augment_workers.py -o experiments/benchmarks/results-cpu-augment-workers.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from discnet.data.allocator import keep_freed_memory
from discnet.data.augment import augment_batch, batch_generator
from discnet.data.augment_config import augment_config

ROOT = Path(__file__).resolve().parents[2]


class AugmentedBatches(Dataset):
    """Batch ``step``: 8 cached (float16) slices as float32, augmented with the generator of that step."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, cfg, batches: int):
        self.images, self.labels, self.cfg, self.batches = images, labels, cfg, batches

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, step: int):
        keep_freed_memory()  # in a worker too
        rows = torch.arange(8 * step, 8 * step + 8) % len(self.images)
        return augment_batch(self.images[rows].float(), self.labels[rows], self.cfg, batch_generator(0, 0, step))


def _slices_per_s(loader: DataLoader, epochs: int) -> float:
    best = 0.0
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for images, _ in loader:
            count += len(images)
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batches", type=int, default=32, help="batches of 8 per epoch")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    keep_freed_memory()
    cfg = augment_config(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "augment" / "few_scans.yaml")))
    g = torch.Generator().manual_seed(0)
    images = torch.rand(256, 1, args.size, args.size, generator=g).half()
    labels = (torch.rand(256, args.size, args.size, generator=g) > 0.9).to(torch.uint8)
    dataset = AugmentedBatches(images, labels, cfg, args.batches)
    loaders = {
        workers: DataLoader(dataset, batch_size=None, num_workers=workers, persistent_workers=workers > 0)
        for workers in (0, 1, 2)
    }
    rates: dict[int, list[float]] = {workers: [] for workers in loaders}
    for _ in range(args.rounds):
        for workers, loader in loaders.items():
            rates[workers].append(round(_slices_per_s(loader, args.epochs), 1))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {
        "command": "augment_workers.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k != "output"),
        "commit": commit.strip(),
        "slice_px": args.size,
        "threads_main_process": torch.get_num_threads(),
        "slices_per_s_median": {f"{w} workers": statistics.median(r) for w, r in rates.items()},
        "slices_per_s_rounds": {f"{w} workers": r for w, r in rates.items()},
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["slices_per_s_median"], indent=2))


if __name__ == "__main__":
    main()
