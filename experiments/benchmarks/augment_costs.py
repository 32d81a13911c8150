"""Where ``augment=few_scans`` spends its time at 512 px: the spatial and intensity parts of a batch of 8,
and one ``grid_sample`` of a slice (image bilinear, mask nearest), medians of interleaved
rounds.

The figures behind the README's "why 1000 slices/s is out of reach" (freed memory kept, as training's
datamodule does):

    python experiments/benchmarks/augment_costs.py -o experiments/benchmarks/results-cpu-augment-costs.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from discnet.data import augment
from discnet.data.allocator import keep_freed_memory

ROOT = Path(__file__).resolve().parents[2]


def _median_ms(fn, repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return round(1e3 * statistics.median(times), 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batches", type=int, default=20, help="calls timed per measure and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    keep_freed_memory()
    cfg = augment.augment_config(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "augment" / "few_scans.yaml")))
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, args.size, args.size, generator=g)
    labels = (torch.rand(8, args.size, args.size, generator=g) > 0.9).to(torch.uint8)
    grid = augment._sampling_grid(torch.tensor([0.2]), torch.tensor([1.1]), None, (args.size, args.size))
    image, mask = images[:1], labels[:1, None].float()

    def spatial(step):
        augment._spatial(images.clone(), labels.clone(), cfg, augment.batch_generator(0, 0, step))

    def intensity(step):
        augment._intensity(images.clone(), cfg, augment.batch_generator(0, 0, step))

    def whole(step):
        augment.augment_batch(images, labels, cfg, augment.batch_generator(0, 0, step))

    def resample(_):
        F.grid_sample(image, grid, "bilinear", "zeros", align_corners=True)
        F.grid_sample(mask, grid, "nearest", "zeros", align_corners=True)

    measures = {
        "augment_batch": whole,
        "spatial (warp + mirror)": spatial,
        "intensity": intensity,
        "grid_sample of one slice, image and mask": resample,
    }
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(args.rounds):  # interleaved, so that a slow spell of the machine hits every measure
        for name, fn in measures.items():
            samples[name].append(_median_ms(fn, args.batches))
    result = {
        "command": "augment_costs.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k != "output"),
        "slice_px": args.size,
        "threads": torch.get_num_threads(),
        "ms_median_of_round_medians": {name: round(statistics.median(v), 3) for name, v in samples.items()},
        "ms_round_medians": samples,
        "warped_fraction": round(1 - (1 - cfg.rotation_p) * (1 - cfg.scaling_p) * (1 - cfg.elastic_p), 3),
    }
    result["slices_per_s"] = round(8e3 / result["ms_median_of_round_medians"]["augment_batch"], 1)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
