"""Section ``backends``: the CPU inference levers side by side (``bench.py --sections backends``).

Every variant runs the network part of ``discnet predict`` (:func:`discnet.inference.probability.disc_probability` over
the volume's slices, probabilities resized back) on the same prepared slices and weights. Variants are
timed interleaved (A B C ... A B C ...: one warm-up round, then ``repeats`` timed rounds) so that a machine
shared with other work slows them alike; the figures are medians and ratios to today's path (eager
PyTorch, contiguous memory, batch 8). Build times (trace, export, compile, with the first forward pass
of one slice) are timed apart. Then ``discnet predict`` end to end, today's path against the fastest
variant, interleaved the same way, and one training step (forward, backward, AdamW) contiguous against
channels-last.
"""

from __future__ import annotations

import copy
import statistics
import time
from unittest import mock

import torch
from inference import _monai_slices, bench_model, paper_scan
from machine import forward_flops, theoretical_peak
from monai.losses import DiceCELoss

from discnet.cli import main as discnet_main
from discnet.data.preprocess import InputConfig, prepare_volume
from discnet.inference.backends import BACKENDS, prepare
from discnet.inference.probability import disc_probability
from discnet.io import read_volume

TODAY = "torch (today: contiguous)"
FORMATS = ("contiguous", "channels-last")


def _timed_build(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _interleaved(calls: dict, repeats: int) -> dict:
    """Median seconds of each call, the calls interleaved round by round; the first round is a warm-up
    (its times are kept as ``first_s``: a lazily built backend builds there)."""
    times = {name: [] for name in calls}
    first = {}
    for round_ in range(repeats + 1):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            elapsed = time.perf_counter() - start
            if round_ == 0:
                first[name] = round(elapsed, 3)
            else:
                times[name].append(round(elapsed, 4))
    return {name: {"median_s": statistics.median(t), "times_s": t, "first_s": first[name]} for name, t in times.items()}


def _variants(net, setup, threads: int, compile_: bool) -> tuple[dict, dict]:
    """Name -> (module, batch size, threads), and the build seconds of each eagerly built variant."""
    example = torch.zeros(1, 1, setup.image_size, setup.image_size)  # one slice: a build takes any batch
    variants, builds = {TODAY: (net, setup.batch_size, threads)}, {}
    variants["torch, 1 thread"] = (net, setup.batch_size, 1)
    variants["torch channels-last"] = (prepare(net, "torch", channels_last=True), setup.batch_size, threads)
    variants["torch channels-last, batch 1"] = (variants["torch channels-last"][0], 1, threads)
    for name in BACKENDS[1:]:
        module, seconds = _timed_build(lambda n=name: _built(prepare(net, n), example))
        variants[name], builds[name] = (module, setup.batch_size, threads), round(seconds, 2)
    if compile_:
        compiled = torch.compile(copy.deepcopy(net).to(memory_format=torch.channels_last))
        module, seconds = _timed_build(lambda: _built(compiled, example.contiguous(memory_format=torch.channels_last)))
        variants["torch.compile (inductor, channels-last)"] = (module, setup.batch_size, threads)
        builds["torch.compile (inductor, channels-last)"] = round(seconds, 2)
    return variants, builds


def _built(module, example):
    with torch.inference_mode():
        module(example)
    return module


def _network_call(module, stack, batch: int, threads: int):
    def call():
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            disc_probability([module], stack.images, stack.native_shape, batch, "cpu", channels_last=False)
        finally:
            torch.set_num_threads(before)

    return call


def _train_step(net, size: int, batch: int, channels_last: bool):
    model = copy.deepcopy(net).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, size, size, generator=generator).contiguous(memory_format=fmt)
    y = (torch.rand(batch, 1, size, size, generator=generator) > 0.9).long()

    loss = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)

    def step():
        optim.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        optim.step()

    return step


def run(setup, compile_: bool = False, train: tuple[int, int] = (256, 2)) -> dict:
    """The table's figures; ``compile_`` adds ``torch.compile`` (minutes of compiling on a small CPU),
    ``train`` is the (image size, batch) of the training step."""
    manifest = paper_scan(setup)
    image = next(manifest.parent.glob("*_T2w.nii.gz"))
    ckpt = setup.work / "unet75.ckpt"
    net = bench_model(setup, ckpt).net.eval()
    stack = prepare_volume(read_volume(image), None, InputConfig(), setup.image_size)
    n, threads = len(stack.images), torch.get_num_threads()
    gflop = forward_flops(net, (1, 1, setup.image_size, setup.image_size)) / 1e9
    peak = theoretical_peak()["fp32_gflops"]
    variants, builds = _variants(net, setup, threads, compile_)
    calls = {name: _network_call(m, stack, b, t) for name, (m, b, t) in variants.items()}
    calls["MONAI SliceInferer"] = lambda: _monai_slices(net, stack.images, setup, "32")
    network = _interleaved(calls, setup.repeats)
    today = network[TODAY]["median_s"]
    for name, entry in network.items():
        entry["speedup_vs_today"] = round(today / entry["median_s"], 3)
        entry["gflops"] = round(gflop * n / entry["median_s"], 2)
        entry["of_theoretical_peak"] = round(entry["gflops"] / peak, 3)
        entry["build_s"] = builds.get(name)
    candidates = [name for name in network if name not in (TODAY, "MONAI SliceInferer")]
    best = max(candidates, key=lambda name: network[name]["speedup_vs_today"])
    results = {
        "geometry": {"slices": n, "native": list(stack.native_shape), "image_size": setup.image_size},
        "threads": threads,
        "gflop_per_slice": round(gflop, 2),
        "theoretical_fp32_gflops": peak,
        "network": network,
        "best": best,
        "best_vs_monai": round(network["MONAI SliceInferer"]["median_s"] / network[best]["median_s"], 3),
        "best_of_theoretical_peak": network[best]["of_theoretical_peak"],
    }
    results["end_to_end"] = _end_to_end(setup, ckpt, image, best)
    steps = _interleaved({fmt: _train_step(net, *train, fmt == "channels-last") for fmt in FORMATS}, setup.repeats)
    results["training_step"] = {"image_size": train[0], "batch": train[1], **steps}
    results["training_channels_last_speedup"] = round(
        steps["contiguous"]["median_s"] / steps["channels-last"]["median_s"], 3
    )
    return results


_BACKEND_OF = {"torch channels-last": "torch", "torch channels-last, batch 1": "torch"}


def _end_to_end(setup, ckpt, image, best: str) -> dict:
    """``discnet predict`` in-process: today's path (channels-last off) against ``--backend`` of ``best``."""
    backend = _BACKEND_OF.get(best, best if best in BACKENDS else "torch")
    batch = 1 if best.endswith("batch 1") else setup.batch_size

    def predict(name: str, backend_arg: str, batch_arg: int, today: bool):
        args = [
            "predict",
            "--ckpt",
            str(ckpt),
            str(image),
            "--out-dir",
            str(setup.work / f"e2e-{name}"),
            "--device",
            "cpu",
        ]
        args += ["--backend", backend_arg, "--batch-size", str(batch_arg)]

        def call():
            if today:
                with mock.patch("discnet.inference.backends.channels_last_default", return_value=False):
                    discnet_main(args)
            else:
                discnet_main(args)

        return call

    calls = {"today": predict("today", "torch", setup.batch_size, True), "best": predict("best", backend, batch, False)}
    timed = _interleaved(calls, setup.repeats)
    return {
        "best_backend": backend,
        "best_batch": batch,
        **timed,
        "speedup": round(timed["today"]["median_s"] / timed["best"]["median_s"], 3),
    }


def _row(cells) -> str:
    return "| " + " | ".join(f"{c:.4g}" if isinstance(c, float) else str(c) for c in cells) + " |"


def markdown(results: dict) -> str:
    """The backends table, the end-to-end and training rows, and the issue's three targets met or missed."""
    b = results["backends"]
    geometry = b["geometry"]
    lines = [
        f"Device: {results['device']}, {b['threads']} threads; command: `{results['command']}`",
        "",
        f"unet75 at {geometry['image_size']} px, a volume of {geometry['slices']} slices "
        f"({b['gflop_per_slice']} GFLOP per slice forward); medians of interleaved rounds on a machine shared "
        "with other work (ratios hold, absolute times do not).",
        "",
        _row(
            [
                "variant",
                "median s",
                "x today",
                "GFLOP/s",
                "of theoretical peak",
                "build s (with a forward)",
                "first call s",
            ]
        ),
        _row(["---"] * 7),
    ]
    for name, e in b["network"].items():
        build = "-" if e["build_s"] is None else e["build_s"]
        cells = [name, e["median_s"], e["speedup_vs_today"], e["gflops"], e["of_theoretical_peak"], build, e["first_s"]]
        lines.append(_row(cells))
    e2e, steps = b["end_to_end"], b["training_step"]
    lines += [
        "",
        _row(["end to end (`discnet predict`)", "median s"]),
        _row(["---"] * 2),
        _row(["today (torch, contiguous, batch 8)", e2e["today"]["median_s"]]),
        _row([f"--backend {e2e['best_backend']} --batch-size {e2e['best_batch']}", e2e["best"]["median_s"]]),
        "",
        _row(
            [f"training step (forward, backward, AdamW; {steps['image_size']} px, batch {steps['batch']})", "median s"]
        ),
        _row(["---"] * 2),
        *(_row([fmt, steps[fmt]["median_s"]]) for fmt in FORMATS),
        "",
        _row(["target", "value", "met"]),
        _row(["---"] * 3),
    ]
    for label, value, target in (
        ("end-to-end predict / today's fp32 path >= 1.5", e2e["speedup"], 1.5),
        (f"best ({b['best']}) / MONAI SliceInferer >= 1.2", b["best_vs_monai"], 1.2),
        ("best, of the theoretical fp32 peak >= 0.6", b["best_of_theoretical_peak"], 0.6),
    ):
        lines.append(_row([label, value, "yes" if value >= target else "no"]))
    lines.append(_row(["training step, channels-last / contiguous speed-up", b["training_channels_last_speedup"], "-"]))
    return "\n".join(lines) + "\n"
