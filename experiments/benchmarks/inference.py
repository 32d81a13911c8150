"""Section 1: inference at paper geometry, against the machine's peak, MONAI's SliceInferer and end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from machine import autocast, forward_flops, measure, measured_peak
from monai.inferers import SliceInferer

from discnet.cli import main as discnet_main
from discnet.data.preprocess import InputConfig, prepare_volume
from discnet.inference.probability import disc_probability
from discnet.io import read_volume
from discnet.phantoms.synthetic import generate_dataset
from discnet.training.segmenter import DiscSegmenter


@dataclasses.dataclass
class Setup:
    """What every section shares: sizes, repeats, device and a scratch folder."""

    work: Path
    device: torch.device
    repeats: int
    image_size: int = 512
    in_plane: tuple[int, int] = (512, 352)
    spacing: tuple[float, float, float] = (0.52, 0.52, 3.0)
    slices: int = 24
    batch_size: int = 8
    params: float = 0.75
    reference_filters: int = 64
    precisions: tuple[str, ...] = ("32", "bf16")
    bf16_slices: int | None = None
    bf16_repeats: int | None = None
    peak_scale: float = 1.0


def paper_scan(setup: Setup, subjects: int = 1, name: str = "scans") -> Path:
    """Phantom scans at the benchmark's geometry (the paper's: 512 x 352 x 0.52 mm, 3 mm slices); subjects.csv."""
    out = setup.work / f"{name}-{subjects}"
    manifest = out / "subjects.csv"
    if not manifest.exists():
        generate_dataset(out, subjects, seed=0, shape=setup.in_plane, spacing=setup.spacing, slices=(setup.slices,) * 2)
    return manifest


def bench_model(setup: Setup, path: Path) -> DiscSegmenter:
    """The unet75 of the paper (untrained weights, fixed seed), saved as a discnet checkpoint at ``path``."""
    torch.manual_seed(0)
    net = {"params": setup.params, "reference_filters": setup.reference_filters, "dropout": 0.2}
    model = DiscSegmenter(net=net, optim={}, input={"name": "stretched"}, image_size=setup.image_size)
    hyper = {"net": net, "input": dataclasses.asdict(InputConfig()), "image_size": setup.image_size}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hyper}, path)
    return model


def _monai_slices(net, images: torch.Tensor, setup: Setup, precision: str) -> torch.Tensor:
    """What a MONAI user writes: SliceInferer with its defaults over the (1, 1, n, S, S) stack."""
    inferer = SliceInferer(roi_size=(setup.image_size, setup.image_size), spatial_dim=0)
    x = images[None, None].float().to(setup.device)
    with torch.no_grad(), autocast(setup.device, precision):
        return inferer(x, net)


def run(setup: Setup) -> dict:
    manifest = paper_scan(setup)
    image = next(manifest.parent.glob("*_T2w.nii.gz"))
    ckpt = setup.work / "unet75.ckpt"
    net = bench_model(setup, ckpt).net.eval().to(setup.device)
    stack = prepare_volume(read_volume(image), None, InputConfig(), setup.image_size)
    n = len(stack.images)
    flops_per_slice = forward_flops(net, (1, 1, setup.image_size, setup.image_size))
    results = {
        "geometry": {"slices": n, "native": list(stack.native_shape), "image_size": setup.image_size},
        "parameters": sum(p.numel() for p in net.parameters()),
        "gflop_per_slice": round(flops_per_slice / 1e9, 2),
    }
    for precision in setup.precisions:
        bf16 = precision == "bf16"
        count = min(setup.bf16_slices or n, n) if bf16 else n
        repeats = (setup.bf16_repeats or setup.repeats) if bf16 else setup.repeats
        warmup = 0 if repeats == 1 and bf16 else 1
        images = stack.images[:count]
        peak = measured_peak(setup.device, precision, repeats, setup.peak_scale)
        network = measure(
            lambda p=precision, x=images: disc_probability(
                [net], x, stack.native_shape, setup.batch_size, setup.device, p
            ),
            setup.device,
            repeats,
            warmup,
        )
        monai = measure(lambda p=precision, x=images: _monai_slices(net, x, setup, p), setup.device, repeats, warmup)
        achieved = flops_per_slice * count / network["median_s"] / 1e9
        entry = {
            **peak,
            "slices": count,
            "network": network,
            "achieved_gflops": round(achieved, 2),
            "efficiency": round(achieved / peak["peak_gflops"], 3),
            "monai_slice_inferer": monai,
            "speedup_vs_monai": round(monai["median_s"] / network["median_s"], 3),
            "slices_per_s": round(count / network["median_s"], 4),
        }
        if count == n:
            out = setup.work / f"predict-{precision}"
            args = ["predict", "--ckpt", str(ckpt), str(image), "--out-dir", str(out), "--precision", precision]
            args += ["--batch-size", str(setup.batch_size), "--device", str(setup.device)]
            end_to_end = measure(lambda a=args: discnet_main(a), setup.device, repeats, warmup)
            entry["predict_end_to_end"] = end_to_end
            entry["predict_overhead"] = round(end_to_end["median_s"] / network["median_s"] - 1, 3)
        results["bf16" if bf16 else "fp32"] = entry
    if "bf16" in results and "fp32" in results:
        results["bf16_over_fp32_throughput"] = round(
            results["bf16"]["slices_per_s"] / results["fp32"]["slices_per_s"], 3
        )
    return results
