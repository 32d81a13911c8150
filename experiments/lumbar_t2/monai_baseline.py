"""The peer baseline: a plain MONAI 2D U-Net trained on the same folds with the same compute budget.

What a lab would write in a hundred lines of MONAI: BasicUNet (16 first-level filters), sagittal slices
resized to ``--size`` px, intensities scaled by the 0.5th-99.5th percentiles, MONAI's random affine and
intensity jitter, DiceCE loss, Adam 1e-3, batch 8, trained for ``--steps`` optimizer steps (the budget:
the same number of steps of the same batch size as discnet's recipe, whose network costs about as much
per step; both wall times are recorded, and ``--budget-s`` stops earlier if given); the last model
predicts the held-out scan. discnet's reader and writer are used only to keep the scan's geometry, so
that both methods are scored by the same ``discnet evaluate``. Writes ``<out>/<subject>_discs.nii.gz``
(threshold 0.5) and ``<out>/orphans_removed/<subject>_discs.nii.gz`` (discnet's orphan removal).

    python experiments/lumbar_t2/monai_baseline.py --held-out sub11 --steps 198 -o work/monai/sub11
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandGaussianNoised,
    RandScaleIntensityd,
    ScaleIntensityRangePercentiles,
)

from discnet.data.slices import from_slices, to_slices
from discnet.io import Volume, from_canonical, read_volume, to_canonical, write_like
from discnet.postprocess import remove_orphans

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "lumbar-t2"


def slices(subject: str, data: Path) -> tuple[np.ndarray, np.ndarray, Volume]:
    """(n, H, W) percentile-scaled sagittal image slices, their disc masks, and the scan."""
    scan = read_volume(data / f"{subject}_T2w.nii.gz")
    label = read_volume(data / f"{subject}_discs.nii.gz", kind="label")
    image = to_canonical(scan)[0].astype(np.float32)
    scale = ScaleIntensityRangePercentiles(lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True)
    image = np.asarray(scale(image[None]))[0]
    return np.ascontiguousarray(to_slices(image)), np.ascontiguousarray(to_slices(to_canonical(label)[0] > 0)), scan


def resized(x: np.ndarray, size: int, mode: str) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32)[:, None]
    return F.interpolate(t, size=(size, size), mode=mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", required=True)
    parser.add_argument("--train", nargs="+", help="training subjects (default: the other two)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--steps", type=int, default=198)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--budget-s", type=float, default=float("inf"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    subjects = args.train or [s for s in ("sub11", "sub20", "sub25") if s != args.held_out]
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    images, labels = zip(*[slices(s, args.data)[:2] for s in subjects], strict=True)
    x = resized(np.concatenate(images), args.size, "bilinear")
    y = resized(np.concatenate(labels).astype(np.float32), args.size, "nearest")
    augment = Compose(
        [
            RandAffined(
                keys=["image", "label"],
                prob=0.5,
                rotate_range=0.26,
                scale_range=0.15,
                translate_range=10,
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
            ),
            RandScaleIntensityd(keys="image", factors=0.2, prob=0.5),
            RandAdjustContrastd(keys="image", gamma=(0.7, 1.5), prob=0.3),
            RandGaussianNoised(keys="image", std=0.03, prob=0.2),
        ]
    )
    augment.set_random_state(seed=args.seed)
    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(16, 32, 64, 128, 256, 16))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    start, steps, epochs = time.perf_counter(), 0, 0

    def spent() -> bool:
        return steps >= args.steps or time.perf_counter() - start >= args.budget_s

    while not spent():
        net.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(order), 8):
            batch = [augment({"image": x[j], "label": y[j]}) for j in order[i : i + 8].tolist()]
            xb = torch.stack([torch.as_tensor(b["image"]) for b in batch])
            yb = torch.stack([torch.as_tensor(b["label"]) for b in batch])
            optimizer.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            optimizer.step()
            steps += 1
            if spent():
                break
        epochs += 1
        print(
            f"epoch {epochs} step {steps} loss {loss.item():.4f} elapsed {time.perf_counter() - start:.0f}s", flush=True
        )
    train_s = time.perf_counter() - start

    image, _, scan = slices(args.held_out, args.data)
    net.eval()
    with torch.inference_mode():
        logits = torch.cat([net(resized(image[i : i + 8], args.size, "bilinear")) for i in range(0, len(image), 8)])
        prob = F.interpolate(torch.softmax(logits, 1)[:, 1:], size=image.shape[1:], mode="bilinear")[:, 0]
    mask = from_slices(prob.numpy() > 0.5)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "orphans_removed").mkdir(exist_ok=True)
    name = f"{args.held_out}_discs.nii.gz"
    for folder, canonical in ((args.out, mask), (args.out / "orphans_removed", remove_orphans(mask))):
        write_like(from_canonical(canonical.astype(np.uint8), scan), scan, folder / name)
    summary = {"held_out": args.held_out, "train": subjects, "train_s": round(train_s, 1), "epochs": epochs}
    (args.out / "summary.json").write_text(json.dumps({**summary, "steps": steps}, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
