"""Where ``augment=few_scans`` spends its time at 512 px: the spatial and intensity parts of a batch of 8,
and the single operations behind them, medians of interleaved rounds.

Batches are taken in turn from a pool of ``--pool`` slices (a different batch each call, as in training,
so caches hold what they would). The figures behind the README's "why 1000 slices/s is out of reach"
(freed memory kept, as training's datamodule does):

    python experiments/benchmarks/augment_costs.py -o experiments/benchmarks/results-cpu-augment-costs-<commit>.json

The one-slice measures show how torch's CPU ``grid_sample`` uses the threads (it spreads the batch
dimension only: one slice runs on one thread, unless split into bands of rows) and what the noise's
normal draws cost (one thread: the generator is sequential).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from discnet.data import augment
from discnet.data.allocator import keep_freed_memory
from discnet.data.augment_config import augment_config

ROOT = Path(__file__).resolve().parents[2]


def _median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return round(1e3 * statistics.median(times), 3)


def _one_thread(fn):
    def timed(step):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            fn(step)
        finally:
            torch.set_num_threads(threads)

    return timed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--pool", type=int, default=64, help="slices the batches are taken from in turn")
    p.add_argument("--batches", type=int, default=40, help="calls timed per measure and round")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    keep_freed_memory()
    cfg = augment_config(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "augment" / "few_scans.yaml")))
    g = torch.Generator().manual_seed(0)
    size = (args.size, args.size)
    images = torch.rand(args.pool, 1, *size, generator=g)
    labels = (torch.rand(args.pool, *size, generator=g) > 0.9).to(torch.uint8)
    grid = augment._sampling_grid(torch.tensor([0.2]), torch.tensor([1.1]), None, size)
    bands = grid.view(2, args.size // 2, args.size, 2)

    def batch(step):
        start = 8 * step % (args.pool - 7)
        return images[start : start + 8], labels[start : start + 8]

    def whole(step):
        augment.augment_batch(*batch(step), cfg, augment.batch_generator(0, 0, step))

    def spatial(step):
        augment._spatial(*batch(step), cfg, augment.batch_generator(0, 0, step), False)

    def intensity(step):
        augment._intensity(batch(step)[0].clone(), cfg, augment.batch_generator(0, 0, step))

    def resample(step):
        x, y = batch(step)
        F.grid_sample(x[:1], grid, "bilinear", "zeros", align_corners=True)
        F.grid_sample(y[:1, None].float(), grid, "nearest", "zeros", align_corners=True)

    def resample_bands(step):
        x, y = batch(step)
        F.grid_sample(x[:1].expand(2, 1, *size), bands, "bilinear", "zeros", align_corners=True)
        F.grid_sample(y[:1, None].float().expand(2, 1, *size), bands, "nearest", "zeros", align_corners=True)

    measures = {
        "augment_batch": whole,
        "spatial (warp + mirror)": spatial,
        "intensity": intensity,
        "grid_sample of one slice, image and mask": resample,
        "the same on one thread": _one_thread(resample),
        "the same as 2 bands of rows (one per thread)": resample_bands,
        "normal draws of one slice (the noise)": lambda step: torch.randn((1, 1, *size), generator=g),
    }
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(args.rounds):  # interleaved, so that a slow spell of the machine hits every measure
        for name, fn in measures.items():
            samples[name].append(_median_ms(fn, args.batches))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {
        "command": "augment_costs.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k != "output"),
        "commit": commit.strip(),
        "slice_px": args.size,
        "threads": torch.get_num_threads(),
        "ms_median_of_round_medians": {name: round(statistics.median(v), 3) for name, v in samples.items()},
        "ms_round_medians": samples,
        "warped_fraction": round(1 - (1 - cfg.rotation_p) * (1 - cfg.scaling_p) * (1 - cfg.elastic_p), 3),
    }
    result["slices_per_s"] = round(8e3 / result["ms_median_of_round_medians"]["augment_batch"], 1)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["ms_median_of_round_medians"], indent=2), result["slices_per_s"])


if __name__ == "__main__":
    main()
