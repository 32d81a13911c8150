"""Section 5: peak memory of ``discnet predict`` on one volume and of a training step at the paper's batches.

Each measurement runs in a fresh process whose peak resident set size (``VmHWM``: ``ru_maxrss`` would
carry the parent's peak across ``exec`` on Linux) or peak CUDA allocation is read at its end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from inference import Setup, bench_model, paper_scan

PAPER_BATCHES = {"unet100": (1.0, 6), "unet75": (0.75, 8), "unet50": (0.5, 14)}

_STEP = """
import json, sys, torch
def peak_rss_mb():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0]) / 1024
from discnet.training.segmenter import DiscSegmenter
params, ref, batch, size, device = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
model = DiscSegmenter(net={"params": params, "reference_filters": ref}, optim={}).to(device)
opt = torch.optim.AdamW(model.parameters())
x = torch.rand(batch, 1, size, size, device=device)
y = torch.randint(0, 2, (batch, 1, size, size), device=device)
loss = model.loss(model(x), y)
loss.backward()
opt.step()
cuda = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
print(json.dumps({"rss_mb": peak_rss_mb(), "cuda_mb": cuda}))
"""

_PREDICT = """
import json, sys, torch
def peak_rss_mb():
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0]) / 1024
from discnet.cli import main
code = main(sys.argv[2:])
cuda = torch.cuda.max_memory_allocated() / 2**20 if sys.argv[1].startswith("cuda") else None
print(json.dumps({"rss_mb": peak_rss_mb(), "cuda_mb": cuda, "code": code}))
"""


def _python(code: str, *args) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(
    setup: Setup, train_batches: tuple[int, ...] | None = None, models: tuple[str, ...] = tuple(PAPER_BATCHES)
) -> dict:
    """Peak memory; on CPU the training steps of batches ``train_batches`` (default: the paper's) are
    measured and the paper's batch sizes extrapolated linearly when they are not among them."""
    image = next(paper_scan(setup).parent.glob("*_T2w.nii.gz"))
    ckpt = setup.work / "unet75.ckpt"
    if not ckpt.exists():
        bench_model(setup, ckpt)
    device = str(setup.device)
    predict = _python(
        _PREDICT, device, "predict", "--ckpt", ckpt, image, "--out-dir", Path(setup.work) / "mem", "--device", device
    )
    results = {"predict_one_volume": predict, "training_step": {}}
    for name in models:
        params, paper_batch = PAPER_BATCHES[name]
        batches = train_batches or (paper_batch,)
        measured = {b: _python(_STEP, params, setup.reference_filters, b, setup.image_size, device) for b in batches}
        entry = {"measured": {str(b): m for b, m in measured.items()}, "paper_batch": paper_batch}
        if paper_batch not in measured and len(measured) >= 2:
            key = "cuda_mb" if setup.device.type == "cuda" else "rss_mb"
            slope, intercept = np.polyfit(list(measured), [m[key] for m in measured.values()], 1)
            entry["extrapolated_mb_at_paper_batch"] = round(float(intercept + slope * paper_batch), 1)
        results["training_step"][name] = entry
    return results
