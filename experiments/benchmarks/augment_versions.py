"""Two revisions of ``discnet.data.augment`` timed alternately on the same batches (one run, one machine).

The augmentation's speed from one commit to the next, as a ratio that the machine's load cancels
out of: each round times ``--steps`` batches of 8 slices with ``augment=few_scans`` under the old
revision, then under the working tree's, ``--rounds`` times; the medians and their ratio go to a JSON.

    python experiments/benchmarks/augment_versions.py --old 9350e9d -o results-cpu-augment-versions-9350e9d.json
    python experiments/benchmarks/augment_versions.py --old c2577be --keep-freed-memory -o ...-kept.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from omegaconf import OmegaConf

from discnet.data.augment_config import augment_config

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="git revision to compare with the working tree")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=12, help="batches of 8 per timed round")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="time both with freed memory kept (discnet.data.allocator, as training's datamodule does)",
    )
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    if args.keep_freed_memory:
        from discnet.data.allocator import keep_freed_memory

        keep_freed_memory()
    source = subprocess.run(
        ["git", "show", f"{args.old}:discnet/data/augment.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "old_augment.py").write_text(source, encoding="utf-8")
        versions = {args.old: _module(Path(tmp) / "old_augment.py", "old_augment")}
    versions["working tree"] = _module(ROOT / "discnet" / "data" / "augment.py", "new_augment")
    preset = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "augment" / "few_scans.yaml"))
    g = torch.Generator().manual_seed(0)
    images = torch.rand(8, 1, args.size, args.size, generator=g)
    labels = (torch.rand(8, args.size, args.size, generator=g) > 0.9).to(torch.uint8)
    rates = {name: [] for name in versions}
    for _ in range(args.rounds):
        for name, module in versions.items():
            cfg = getattr(module, "augment_config", augment_config)(preset)  # later revisions: its own module
            start = time.perf_counter()
            for step in range(args.steps):
                module.augment_batch(images, labels, cfg, module.batch_generator(0, 0, step))
            rates[name].append(8 * args.steps / (time.perf_counter() - start))
    medians = {name: round(statistics.median(r), 1) for name, r in rates.items()}
    result = {
        "command": " ".join(["augment_versions.py", *sys.argv[1:]]),
        "slice_px": args.size,
        "preset": "few_scans",
        "threads": torch.get_num_threads(),
        "keep_freed_memory": args.keep_freed_memory,
        "slices_per_s_median": medians,
        "slices_per_s_rounds": {name: [round(r, 1) for r in v] for name, v in rates.items()},
        "speedup": round(medians["working tree"] / medians[args.old], 2),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
