"""Timing, FLOP counting and the machine's peak, shared by the benchmark sections."""

from __future__ import annotations

import copy
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1) -> dict:
    """Median wall time of ``repeats`` calls after ``warmup`` calls (all times kept)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "times_s": [round(t, 4) for t in times]}


def autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def forward_flops(net: nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of ``net`` on an input of ``shape`` (counted on the meta device)."""
    meta = copy.deepcopy(net).to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(shape, device="meta"))
    return counter.get_total_flops()


def measured_peak(device: torch.device, precision: str, repeats: int, scale: float = 1.0) -> dict:
    """Best GFLOP/s of a large 3x3 convolution and a large matmul at ``precision``."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    side, channels, n = max(16, int(128 * scale)), max(8, int(128 * scale)), max(64, int(2048 * scale))
    x = torch.randn(4, channels, side, side, device=device, dtype=dtype)
    w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype)
    a = torch.randn(n, n, device=device, dtype=dtype)
    conv_flops = 2 * 4 * channels * side * side * channels * 9
    matmul_flops = 2 * n**3
    with torch.inference_mode():
        conv = measure(lambda: torch.nn.functional.conv2d(x, w, padding=1), device, repeats)
        matmul = measure(lambda: a @ a, device, repeats)
    conv_gflops = conv_flops / conv["median_s"] / 1e9
    matmul_gflops = matmul_flops / matmul["median_s"] / 1e9
    return {
        "conv3x3_gflops": round(conv_gflops, 2),
        "matmul_gflops": round(matmul_gflops, 2),
        "peak_gflops": round(max(conv_gflops, matmul_gflops), 2),
    }


def theoretical_peak() -> dict:
    """Peak fp32 FLOP/s from the reported clock and vector width (CPU; assumes 2 FMA units per core)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = set(re.findall(r"^flags\s*:\s*(.*)$", info, re.M)[0].split()) if "flags" in info else set()
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)]
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    cores = torch.get_num_threads()
    ghz = max(mhz) / 1000 if mhz else float("nan")
    return {
        "cpu": (re.findall(r"^model name\s*:\s*(.*)$", info, re.M) or [platform.processor()])[0],
        "threads": cores,
        "clock_ghz": round(ghz, 3),
        "fp32_lanes": lanes,
        "native_bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "fp32_gflops": round(cores * ghz * lanes * 2 * 2, 1),
    }


def device_info(device: torch.device) -> dict:
    if device.type == "cuda":
        return {"device": torch.cuda.get_device_name(device), "torch": torch.__version__}
    return {"device": f"cpu ({os.cpu_count()} cores)", "torch": torch.__version__, **theoretical_peak()}
