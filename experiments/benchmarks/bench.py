"""``make bench``: discnet's speed measured side by side (see README.md in this folder).

Every figure is a ratio of two things timed in the same run on the same data (median of --repeats
calls after a warm-up); absolute times are kept too. Writes results-<device>.json and results-<device>.md.

    python experiments/benchmarks/bench.py                 # the paper's geometry (slow on a CPU)
    python experiments/benchmarks/bench.py --slices 2      # fewer slices per volume, same per-slice work
    python experiments/benchmarks/bench.py --quick         # seconds: a smoke run of every section
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import backends  # noqa: E402
import evaluation  # noqa: E402
import inference  # noqa: E402
import memory  # noqa: E402
import training  # noqa: E402
from machine import device_info  # noqa: E402
from report import markdown  # noqa: E402

SECTIONS = ("inference", "data", "step", "evaluation", "memory")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median)")
    p.add_argument("--slices", type=int, default=24, help="sagittal slices of the inference volume")
    p.add_argument("--precisions", nargs="+", choices=("32", "bf16"), default=["32", "bf16"])
    p.add_argument(
        "--bf16-slices", type=int, help="slices timed in bf16 (default all; CPUs without native bf16 are slow)"
    )
    p.add_argument("--bf16-repeats", type=int, help="timed bf16 calls (default --repeats; 1 = no warm-up)")
    p.add_argument("--sections", nargs="+", choices=(*SECTIONS, "backends"), default=list(SECTIONS))
    p.add_argument("--compile", action="store_true", help="backends: also torch.compile (minutes to compile)")
    p.add_argument(
        "--train-step", nargs=2, type=int, default=(256, 2), metavar=("SIZE", "BATCH"), help="backends: training step"
    )
    p.add_argument("--train-subjects", type=int, default=4, help="phantoms for the data-throughput section")
    p.add_argument(
        "--step",
        nargs=3,
        type=int,
        default=(16, 256, 8),
        metavar=("FILTERS", "SIZE", "BATCH"),
        help="model and batch of the step-overhead section (default 16 filters, 256 px, batch 8)",
    )
    p.add_argument("--steps", type=int, default=12, help="optimizer steps timed per loop")
    p.add_argument(
        "--memory-batches",
        nargs="+",
        type=int,
        default=None,
        help="training-step batches measured for memory (default: the paper's; others extrapolate)",
    )
    p.add_argument("--memory-models", nargs="+", choices=memory.PAPER_BATCHES, default=list(memory.PAPER_BATCHES))
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that every section runs")
    p.add_argument("-o", "--output", type=Path, default=HERE)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="discnet-bench-") as work:
        setup = inference.Setup(
            work=Path(work),
            device=device,
            repeats=args.repeats,
            slices=args.slices,
            bf16_slices=args.bf16_slices,
            bf16_repeats=args.bf16_repeats,
            precisions=tuple(args.precisions),
        )
        if args.quick:
            setup.image_size, setup.in_plane, setup.slices, setup.reference_filters = 64, (64, 48), 3, 8
            setup.spacing = (4.0, 4.0, 3.0)
            setup.peak_scale, args.step, args.steps, args.train_subjects = 0.125, (4, 32, 2), 3, 2
            args.memory_batches, args.memory_models = args.memory_batches or [1, 2], ["unet75"]
        results = {"command": " ".join(["bench.py", *(argv or sys.argv[1:])]), **device_info(device)}
        started = time.perf_counter()
        if "inference" in args.sections:
            results["inference"] = inference.run(setup)
        if "data" in args.sections:
            results["data"] = training.data_throughput(setup, args.train_subjects)
        if "step" in args.sections:
            results["step"] = training.step_overhead(setup, *args.step, steps=args.steps)
        if "evaluation" in args.sections:
            results["evaluation"] = evaluation.run(setup)
        if "memory" in args.sections:
            batches = tuple(args.memory_batches) if args.memory_batches else None
            results["memory"] = memory.run(setup, batches, tuple(args.memory_models))
        if "backends" in args.sections:
            results["backends"] = backends.run(setup, args.compile, tuple(args.train_step))
        results["bench_wall_s"] = round(time.perf_counter() - started, 1)
    name = ("quick" if args.quick else device.type) + ("-backends" if args.sections == ["backends"] else "")
    table = backends.markdown if args.sections == ["backends"] else markdown
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"results-{name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.output / f"results-{name}.md").write_text(table(results), encoding="utf-8")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
