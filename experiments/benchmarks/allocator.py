"""augment=few_scans with and without freed memory kept, each in a fresh process, alternately.

glibc adapts its mmap threshold as a process runs, so the two settings cannot share one process: each
round starts one process per setting, times ``--steps`` batches of 8 slices at 512 px after two warm-up
batches, and the medians over ``--rounds`` go to a JSON.

    python experiments/benchmarks/allocator.py -o experiments/benchmarks/results-cpu-allocator.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMING = """
import sys, time, torch
from omegaconf import OmegaConf
from discnet.data.allocator import keep_freed_memory
from discnet.data.augment import augment_batch, batch_generator
from discnet.data.augment_config import augment_config
if sys.argv[1] == "kept":
    keep_freed_memory()
cfg = augment_config(OmegaConf.load(sys.argv[3]))
g = torch.Generator().manual_seed(0)
x = torch.rand(8, 1, 512, 512, generator=g)
y = (torch.rand(8, 512, 512, generator=g) > 0.9).to(torch.uint8)
for step in range(2):
    augment_batch(x, y, cfg, batch_generator(0, 0, step))
start, steps = time.perf_counter(), int(sys.argv[2])
for step in range(steps):
    augment_batch(x, y, cfg, batch_generator(0, 1, step))
print(8 * steps / (time.perf_counter() - start))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    preset = ROOT / "conf" / "augment" / "few_scans.yaml"
    rates = {"default": [], "kept": []}
    for _ in range(args.rounds):
        for setting in rates:
            cmd = [sys.executable, "-c", TIMING, setting, str(args.steps), str(preset)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            rates[setting].append(round(float(out.strip().splitlines()[-1]), 1))
    medians = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    result = {
        "command": " ".join(["allocator.py", *sys.argv[1:]]),
        "slice_px": 512,
        "preset": "few_scans",
        "slices_per_s_median": medians,
        "slices_per_s_rounds": rates,
        "kept_over_default": round(medians["kept"] / medians["default"], 2),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
