"""The benchmark's markdown table: each measured ratio beside its target."""

from __future__ import annotations


def _get(results: dict, *keys):
    for key in keys:
        if not isinstance(results, dict) or key not in results:
            return None
        results = results[key]
    return results


#: (label, path into the results, target, True when larger is better)
TARGETS = [
    ("fp32 inference efficiency (achieved / measured peak)", ("inference", "fp32", "efficiency"), 0.7, True),
    ("bf16 / fp32 inference throughput", ("inference", "bf16_over_fp32_throughput"), 1.5, True),
    ("fp32 speed-up vs MONAI SliceInferer", ("inference", "fp32", "speedup_vs_monai"), 1.2, True),
    ("bf16 speed-up vs MONAI SliceInferer", ("inference", "bf16", "speedup_vs_monai"), 1.2, True),
    ("fp32 predict overhead (end to end / network - 1)", ("inference", "fp32", "predict_overhead"), 0.10, False),
    ("datamodule slices/s (augmented, 512 px, cached)", ("data", "datamodule_slices_per_s"), 1000, True),
    (
        "datamodule slices/s with augment=few_scans (512 px)",
        ("data", "datamodule_few_scans_augment_slices_per_s"),
        1000,
        True,
    ),
    ("datamodule / torchio Queue", ("data", "speedup"), 10, True),
    ("Lightning overhead per step", ("step", "overhead"), 0.05, False),
    ("whole-volume Dice: Convert3D time / discnet time", ("evaluation", "speedup_vs_c3d"), 1.0, True),
    ("per-disc scoring + orphan removal (s per volume)", ("evaluation", "per_disc_plus_orphans_s"), 1.0, False),
]

TIMES = [
    ("network, fp32 (s per volume)", ("inference", "fp32", "network", "median_s")),
    ("network, bf16 (s per volume)", ("inference", "bf16", "network", "median_s")),
    ("MONAI SliceInferer, fp32 (s)", ("inference", "fp32", "monai_slice_inferer", "median_s")),
    ("discnet predict end to end, fp32 (s)", ("inference", "fp32", "predict_end_to_end", "median_s")),
    ("achieved fp32 GFLOP/s", ("inference", "fp32", "achieved_gflops")),
    ("measured fp32 peak GFLOP/s (best of conv 3x3, matmul)", ("inference", "fp32", "peak_gflops")),
    ("measured bf16 peak GFLOP/s", ("inference", "bf16", "peak_gflops")),
    ("theoretical fp32 peak GFLOP/s (clock x lanes x 2 FMA x 2 units)", ("fp32_gflops",)),
    ("GFLOP per slice forward", ("inference", "gflop_per_slice")),
    ("torchio Queue slices/s", ("data", "torchio_queue_slices_per_s")),
    ("Lightning step (s)", ("step", "lightning_step_s")),
    ("plain PyTorch step (s)", ("step", "plain_step_s")),
    ("Dice of a file pair, discnet (s)", ("evaluation", "whole_volume_dice_discnet", "median_s")),
    ("Dice of a file pair, Convert3D (s)", ("evaluation", "whole_volume_dice_c3d", "median_s")),
    ("discnet evaluate command (s)", ("evaluation", "discnet_evaluate_command", "median_s")),
    ("peak RSS of discnet predict, one volume (MB)", ("memory", "predict_one_volume", "rss_mb")),
]


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(results: dict) -> str:
    """Targets table (value, target, met) then the absolute figures."""
    lines = [f"Device: {results.get('device')}; command: `{results.get('command')}`", ""]
    lines += ["| measure | value | target | met |", "| --- | --- | --- | --- |"]
    for label, path, target, larger in TARGETS:
        value = _get(results, *path)
        met = "n/a" if value is None else "yes" if (value >= target if larger else value <= target) else "no"
        lines.append(f"| {label} | {_fmt(value)} | {'>=' if larger else '<='} {target} | {met} |")
    lines += ["", "| absolute figure | value |", "| --- | --- |"]
    lines += [f"| {label} | {_fmt(_get(results, *path))} |" for label, path in TIMES]
    for name, entry in (_get(results, "memory", "training_step") or {}).items():
        measured = ", ".join(f"batch {b}: {m['rss_mb']:.0f} MB" for b, m in entry["measured"].items())
        extra = entry.get("extrapolated_mb_at_paper_batch")
        extra = f"; batch {entry['paper_batch']} extrapolated: {extra:.0f} MB" if extra else ""
        lines.append(f"| training step memory, {name} (peak RSS) | {measured}{extra} |")
    return "\n".join(lines) + "\n"
