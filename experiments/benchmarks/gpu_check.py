"""``make gpu-check``: one command for a GPU day, at most 5 minutes on one CUDA GPU (README.md in this folder).

    python experiments/benchmarks/gpu_check.py                        # -> results-cuda.json, results-cuda.md
    python experiments/benchmarks/gpu_check.py --device cpu --tiny -o /tmp/check   # the same path, tiny, on a CPU

Sections: (1) the bench's inference section at the paper's geometry in fp32 and bf16 (peak, MONAI
SliceInferer, end to end); (2) bf16-mixed training steps of unet75 at 512 px: plain, channels-last, and
channels-last with torch.compile; (3) ``discnet predict --device cuda`` on a real scan (lumbar-t2 sub11)
with a small model trained here first on the other two scans, Dice equal to the CPU prediction's to 1e-3;
(4) a one-GPU DDP training run (``trainer=ddp trainer.devices=1``). Exit code 1 when a check fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import nibabel as nib
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import inference  # noqa: E402
from machine import device_info  # noqa: E402
from report import markdown as bench_markdown  # noqa: E402
from training import _StepTimes  # noqa: E402

from discnet.evaluation.metrics import dice  # noqa: E402
from discnet.models.run_folder import RunFolder, read_summary  # noqa: E402
from discnet.training.segmenter import DiscSegmenter  # noqa: E402

LUMBAR = REPO.parent / "shared" / "data" / "lumbar-t2"
DICE_TOLERANCE = 1e-3
BUDGET_S = 300


@dataclasses.dataclass
class Sizes:
    """What the check runs: the paper's geometry on a GPU, seconds-long sizes with ``--tiny``."""

    steps: int = 200  # per training variant
    warmup: int = 20  # steps left out of the median (compilation, cuDNN autotuning)
    image_size: int = 512
    batch_size: int = 8  # unet75's paper batch
    reference_filters: int = 64
    predict_args: tuple[str, ...] = ("image_size=128", "model.net.reference_filters=8", "trainer.max_epochs=60")
    ddp_args: tuple[str, ...] = ("image_size=128", "model.net.reference_filters=8", "trainer.max_epochs=2")


TINY = Sizes(
    steps=6,
    warmup=2,
    image_size=32,
    batch_size=2,
    reference_filters=8,
    predict_args=("image_size=32", "model.net.reference_filters=4", "model.net.depth=2", "trainer.max_epochs=1"),
    ddp_args=("image_size=32", "model.net.reference_filters=4", "model.net.depth=2", "trainer.max_epochs=1"),
)


def training_steps(device: torch.device, sizes: Sizes, channels_last: bool, compiled: bool, backend: str) -> dict:
    """Median time of bf16-mixed optimizer steps of unet75 under Lightning (after ``sizes.warmup`` steps)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4 * sizes.batch_size, 1, sizes.image_size, sizes.image_size, generator=generator)
    labels = (images[:, 0] > 0.7).to(torch.uint8)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=sizes.batch_size)
    torch.manual_seed(0)
    net = {"params": 0.75, "reference_filters": sizes.reference_filters, "dropout": 0.2}
    model = DiscSegmenter(net=net, optim={"lr": 1e-3}, image_size=sizes.image_size, channels_last=channels_last)
    if compiled:
        model.net = torch.compile(model.net, backend=backend)
    timer = _StepTimes(device)
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        precision="bf16-mixed",
        max_steps=sizes.steps,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    median = statistics.median(timer.times[sizes.warmup :])
    return {
        "channels_last": channels_last,
        "compile": backend if compiled else False,
        "steps": len(timer.times),
        "first_step_s": round(timer.times[0], 4),
        "median_step_s": round(median, 5),
        "slices_per_s": round(sizes.batch_size / median, 2),
        "fit_s": round(time.perf_counter() - start, 2),
        "weights_finite": all(bool(torch.isfinite(p).all()) for p in model.parameters()),
    }


def _command(*args: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} ... failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, result


def _train(work: Path, name: str, data: Path, *overrides: str) -> tuple[float, dict]:
    out = work / name
    wall, _ = _command(
        sys.executable,
        str(REPO / "train.py"),
        "data=lumbar_t2",
        f"data.root={data}",
        "data.val_subjects=[sub11]",
        "logger=csv",
        *overrides,
        f"hydra.run.dir={out}",
        f"paths.cache_dir={work / 'cache'}",
        cwd=work,
    )
    return wall, read_summary(out, strict=True)


def _trainer(device: torch.device) -> tuple[str, ...]:
    return ("trainer=gpu",) if device.type == "cuda" else ("trainer=cpu", "trainer.accelerator=cpu")


def predict_real_scan(device: torch.device, sizes: Sizes, work: Path, data: Path) -> dict:
    """Train a small model on sub20 + sub25, predict sub11 on ``device`` and on the CPU, Dice of each."""
    train_s, summary = _train(work, "predict-model", data, *_trainer(device), *sizes.predict_args)
    ckpt = RunFolder(work / "predict-model").checkpoint("last")
    truth = nib.load(data / "sub11_discs.nii.gz").get_fdata() > 0
    results = {"scan": str(data / "sub11_T2w.nii.gz"), "train_s": round(train_s, 1), "val_dsc": summary["last_val_dsc"]}
    masks = {}
    for target in dict.fromkeys((device.type, "cpu")):
        out = work / f"predict-{target}"
        wall, _ = _command(
            str(Path(sys.executable).parent / "discnet"),
            "predict",
            "--ckpt",
            str(ckpt),
            str(data / "sub11_T2w.nii.gz"),
            "--out-dir",
            str(out),
            "--device",
            target,
            cwd=work,
        )
        (mask,) = out.glob("*_discs.nii.gz")
        masks[target] = nib.load(mask).get_fdata() > 0
        results[f"dice_{target}"] = dice(masks[target], truth)
        results[f"predict_{target}_s"] = round(wall, 2)
    results["dice_difference"] = abs(results[f"dice_{device.type}"] - results["dice_cpu"])
    results["voxels_differing"] = int((masks[device.type] != masks["cpu"]).sum())
    return results


def ddp_run(device: torch.device, sizes: Sizes, work: Path, data: Path) -> dict:
    """A DDP training run on one device (a process group of one): it must end with a complete summary."""
    extra = () if device.type == "cuda" else ("trainer.accelerator=cpu", "trainer.precision=32-true")
    wall, summary = _train(work, "ddp", data, "trainer=ddp", "trainer.devices=1", *extra, *sizes.ddp_args)
    return {
        "wall_s": round(wall, 1),
        "status": summary["status"],
        "device": summary["device"],
        "epochs": summary["epochs"],
    }


def checks(results: dict, full: bool) -> dict[str, bool]:
    """Pass/fail of each section (a section that did not run fails); ``full``: also the size-dependent ones."""
    out = {"bench fp32 and bf16 ran": {"fp32", "bf16"} <= set(results.get("inference", {}))}
    variants = results.get("training", [])
    out["training variants finite"] = len(variants) == 3 and all(v["weights_finite"] for v in variants)
    predict = results.get("predict", {})
    out[f"predict Dice equal to CPU's within {DICE_TOLERANCE}"] = predict.get("dice_difference", 1.0) <= DICE_TOLERANCE
    out["one-device DDP run complete"] = results.get("ddp", {}).get("status") == "complete"
    if full:  # the full-size run: a model that finds discs, within the time budget
        out["predicted discs overlap the truth (Dice > 0.1)"] = predict.get("dice_cpu", 0.0) > 0.1
        out[f"total under {BUDGET_S} s"] = results.get("wall_s", BUDGET_S + 1) <= BUDGET_S
    return out


def markdown(results: dict) -> str:
    bench = [line for line in bench_markdown(results).splitlines() if "| n/a |" not in line]  # sections not run
    lines = [*bench, "", "| training (bf16-mixed, unet75) | median step (s) | slices/s | first step (s) |"]
    lines += ["| --- | --- | --- | --- |"]
    for v in results.get("training", []):
        name = f"channels-last {'on' if v['channels_last'] else 'off'}, compile {v['compile'] or 'off'}"
        lines.append(f"| {name} | {v['median_step_s']} | {v['slices_per_s']} | {v['first_step_s']} |")
    predict, ddp = results.get("predict", {}), results.get("ddp", {})
    lines += ["", "| check | value |", "| --- | --- |"]
    lines += [f"| predict sub11: {k} | {v} |" for k, v in predict.items() if k != "scan"]
    lines += [f"| DDP, one device: {k} | {v} |" for k, v in ddp.items()]
    lines += [f"| {name} | {'pass' if ok else 'FAIL'} |" for name, ok in results["checks"].items()]
    lines.append(f"| total wall time (s) | {results['wall_s']} |")
    return "\n".join(lines) + "\n"


def _section(results: dict, name: str, run) -> None:
    started = time.perf_counter()
    try:
        results[name] = run()
    except Exception as err:  # a failed section is recorded and the check goes on
        results.setdefault("errors", {})[name] = f"{type(err).__name__}: {err}"
    results.setdefault("section_wall_s", {})[name] = round(time.perf_counter() - started, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="seconds-long sizes (tests, CPU)")
    p.add_argument("--data", type=Path, default=LUMBAR, help="the lumbar-t2 folder (sub11, sub20, sub25)")
    p.add_argument("--compile-backend", default="inductor")
    p.add_argument("-o", "--output", type=Path, default=HERE)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    sizes = TINY if args.tiny else Sizes()
    results = {
        "command": " ".join(["gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
        **device_info(device),
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="discnet-gpu-check-") as tmp:
        work = Path(tmp)
        setup = inference.Setup(work=work, device=device, repeats=3)
        if args.tiny:
            setup.image_size, setup.in_plane, setup.slices, setup.reference_filters = 64, (64, 48), 3, 8
            setup.spacing, setup.peak_scale, setup.repeats = (4.0, 4.0, 3.0), 0.125, 1
        _section(results, "inference", lambda: inference.run(setup))
        variants = ((False, False), (True, False), (True, True))
        _section(
            results,
            "training",
            lambda: [training_steps(device, sizes, cl, c, args.compile_backend) for cl, c in variants],
        )
        _section(results, "predict", lambda: predict_real_scan(device, sizes, work, args.data.resolve()))
        _section(results, "ddp", lambda: ddp_run(device, sizes, work, args.data.resolve()))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["checks"] = checks(results, full=not args.tiny)
    name = f"results-{'tiny-' if args.tiny else ''}{device.type}"
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.output / f"{name}.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    for section, error in results.get("errors", {}).items():
        print(f"gpu_check: section {section} failed: {error}", file=sys.stderr)
    return 0 if all(results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
