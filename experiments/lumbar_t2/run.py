"""Leave-one-out on the three public lumbar T2 scans, and a final model on all three.

For each input (raw, stretched) and each held-out subject: train on the other two with
``experiment=lumbar_t2``, predict the held-out scan with the last checkpoint (with and without orphan
removal), score it with ``discnet evaluate``; then train the final model on all three subjects, predict a
scan with it, check the mask's geometry and compare its disc volumes with the published table of
../shared/data/ivd-volumes. Every step is a discnet command, printed before it runs; finished steps are
skipped on a re-run. Results (small CSV/Markdown/PNG files) go to ``--results``.

    python experiments/lumbar_t2/run.py            # make lumbar-t2
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.report import frame_markdown

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SUBJECTS = ("sub11", "sub20", "sub25")


def sh(*args: str | Path) -> float:
    """Run a command (no shell), echo it, return its wall time in seconds."""
    cmd = [str(a) for a in args]
    print("$", shlex.join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def discnet(*args) -> float:
    return sh(Path(sys.executable).parent / "discnet", *args)


def train(run_dir: Path, cache: Path, data: Path, overrides: list[str]) -> dict:
    """Train (skipped when ``run_dir`` holds a complete summary); the run's summary.json."""
    sh(
        sys.executable,
        ROOT / "train.py",
        "experiment=lumbar_t2",
        f"data.root={data}",
        f"hydra.run.dir={run_dir}",
        f"paths.cache_dir={cache}",
        *overrides,
    )
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def predict_and_score(ckpt: Path, data: Path, subject: str, out: Path, orphans: bool) -> pd.DataFrame:
    """Predict one scan and score it; the evaluate table (level 'all' and one row per level)."""
    metrics = out / "metrics.csv"
    if not metrics.is_file():
        flags = [] if orphans else ["--no-orphan-removal"]
        seconds = discnet(
            "predict",
            "--ckpt",
            ckpt,
            data / f"{subject}_T2w.nii.gz",
            "--levels",
            data / "levels.csv",
            "-o",
            out,
            "--qc",
            *flags,
        )
        (out / "predict_seconds.txt").write_text(f"{seconds:.2f}\n", encoding="utf-8")
        discnet(
            "evaluate",
            "--pred",
            out,
            "--truth",
            data / f"{subject}_discs.nii.gz",
            "--levels",
            data / "levels.csv",
            "-o",
            metrics,
        )
    table = pd.read_csv(metrics)
    table["predict_s"] = float((out / "predict_seconds.txt").read_text(encoding="utf-8"))
    return table


def leave_one_out(args, work: Path) -> pd.DataFrame:
    rows = []
    for input_name in args.inputs:
        for held in args.subjects:
            run_dir = work / "train" / input_name / held
            summary = train(run_dir, work / "cache", args.data, [f"input={input_name}", f"data.val_subjects=[{held}]"])
            for orphans in (True, False):
                out = work / "predict" / input_name / held / ("orphans_removed" if orphans else "raw_mask")
                table = predict_and_score(run_dir / "checkpoints" / "last.ckpt", args.data, held, out, orphans)
                table = table.assign(
                    input=input_name,
                    held_out=held,
                    orphan_removal=orphans,
                    epochs=summary["epochs"],
                    train_s=summary["wall_time_s"],
                    best_epoch_val_dsc=summary["best_val_dsc"],
                )
                rows.append(table)
                if orphans:  # the paper's Figure 6 colours: yellow correct, green missed, red false positive
                    discnet(
                        "overlay",
                        args.data / f"{held}_T2w.nii.gz",
                        out / f"{held}_T2w_discs.nii.gz",
                        args.data / f"{held}_discs.nii.gz",
                        "-o",
                        args.results / f"qc_{input_name}_{held}.png",
                    )
    return pd.concat(rows, ignore_index=True)


def final_model(args, work: Path) -> dict:
    """Train on all subjects, predict one scan, check geometry and volumes against ivd-volumes."""
    import nibabel as nib

    run_dir = work / "train" / "final"
    subjects = ",".join(args.subjects)
    summary = train(
        run_dir,
        work / "cache",
        args.data,
        ["input=stretched", f"data.val_subjects=[{subjects}]", "data.train_on_val=true"],
    )
    scan = args.data / f"{args.subjects[0]}_T2w.nii.gz"
    out = work / "predict" / "final"
    seconds = discnet(
        "predict",
        "--ckpt",
        run_dir / "checkpoints" / "last.ckpt",
        scan,
        "--levels",
        args.data / "levels.csv",
        "-o",
        out,
        "--qc",
    )
    image, mask = nib.load(scan), nib.load(out / f"{args.subjects[0]}_T2w_discs.nii.gz")
    same_geometry = image.shape == mask.shape and np.array_equal(image.affine, mask.affine)
    volumes = pd.read_csv(out / "volumes.csv")
    reference = pd.read_csv(args.reference)
    levels = [c for c in reference.columns if c.startswith(("L", "S"))]
    low, high = reference[levels].min() * 1000, reference[levels].max() * 1000
    volumes["published_min_mm3"] = volumes["level"].map(low)
    volumes["published_max_mm3"] = volumes["level"].map(high)
    volumes["within_published_range"] = volumes["volume_mm3"].between(
        volumes["published_min_mm3"], volumes["published_max_mm3"]
    )
    volumes.to_csv(args.results / "final_volumes.csv", index=False)
    shutil.copyfile(out / f"{args.subjects[0]}_T2w_qc.png", args.results / "qc_final.png")
    return {
        "train_s": summary["wall_time_s"],
        "epochs": summary["epochs"],
        "predict_s": round(seconds, 2),
        "training_fit_dsc": summary["last_val_dsc"],
        "same_geometry": bool(same_geometry),
        "volumes_within_published_range": int(volumes["within_published_range"].sum()),
        "discs": len(volumes),
    }


def write_tables(per_level: pd.DataFrame, final: dict | None, results: Path) -> None:
    per_level.to_csv(results / "loo_metrics.csv", index=False)
    whole = per_level[per_level["level"] == "all"]
    folds = whole.pivot_table(index=["input", "orphan_removal"], columns="held_out", values="dice")
    folds["mean"] = folds.mean(axis=1)
    levels = per_level[per_level["level"] != "all"].pivot_table(
        index=["input", "orphan_removal"], columns="level", values="dice"
    )
    times = whole[whole["orphan_removal"]].pivot_table(index="input", columns="held_out", values="train_s")
    lines = [
        "# Leave-one-out results (generated by run.py)",
        "",
        "Whole-volume Dice of the held-out subject (checkpoints/last.ckpt of each fold):",
        "",
        frame_markdown(folds),
        "",
        "Dice per disc level, mean over the three held-out subjects:",
        "",
        frame_markdown(levels),
        "",
        "Training wall time per fold (s):",
        "",
        frame_markdown(times, digits=0),
    ]
    if final is not None:
        (results / "final.json").write_text(json.dumps(final, indent=2) + "\n", encoding="utf-8")
        lines += ["", "Final model on all three subjects:", "", "```json", json.dumps(final, indent=2), "```"]
    (results / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lumbar-t2")
    parser.add_argument(
        "--reference", type=Path, default=ROOT.parent / "shared" / "data" / "ivd-volumes" / "reference_volumes_cm3.csv"
    )
    parser.add_argument("--work", type=Path, default=ROOT / "experiments" / "lumbar_t2" / "work")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--inputs", nargs="+", default=["stretched", "raw"])
    parser.add_argument("--subjects", nargs="+", default=list(SUBJECTS))
    parser.add_argument("--no-final", action="store_true", help="skip the final model on all subjects")
    args = parser.parse_args()
    args.data, args.work = args.data.resolve(), args.work.resolve()
    args.results.mkdir(parents=True, exist_ok=True)
    per_level = leave_one_out(args, args.work)
    final = None if args.no_final else final_model(args, args.work)
    write_tables(per_level, final, args.results)


if __name__ == "__main__":
    main()
