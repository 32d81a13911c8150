"""Leave-one-out on the three public lumbar T2 scans: discnet's few-scan recipe beside a plain MONAI peer.

For each held-out subject: train the recipe (the earlier lumbar_t2, :data:`EARLIER_RECIPE`: no
augmentation, 198 steps; ``longer.py`` measures the preset as shipped) on the other two, predict the
held-out scan with ``last.ckpt`` (never the best epoch, which is chosen on the held-out scan itself),
with and without orphan removal and with test-time mirroring, and score it with ``discnet evaluate``;
train the MONAI baseline (``monai_baseline.py``) on the same fold with the same number of steps and score
its masks the same way. On one fold, the ablations (each lever of the recipe switched off), the paper's
preset; on every fold two more seeds of the recipe, the three-seed ensemble and its QC flags' hit rate. Then the final model on all three scans. Every step
is a command printed before it runs; finished steps are skipped on a re-run (``--score-only`` scores the
runs that exist and trains nothing). Results go to ``--results``.

    python experiments/lumbar_t2/run.py            # make lumbar-t2 (then seeds_x2.py and longer.py)
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from discnet.models.checkpoint import read_checkpoint
from discnet.models.model_settings import model_settings
from discnet.models.run_folder import RunFolder, read_summary

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SUBJECTS = ("sub11", "sub20", "sub25")
ABLATION_FOLD = "sub25"
#: The published disc volumes that flag outlying predicted discs (``discnet predict --reference``).
REFERENCE = ROOT.parent / "shared" / "data" / "ivd-volumes" / "reference_volumes_cm3.csv"


#: The recipe that run.py's tables (results/results.md) score: lumbar_t2 as it was until the preset took
#: augmentation, the background's Dice and 396 steps (longer.py measures the preset as shipped).
EARLIER_RECIPE = ("augment=none", "model.loss.include_background=false", "trainer.max_epochs=18")


def earlier_recipe(*overrides: str) -> tuple[str, list[str]]:
    """lumbar_t2 with :data:`EARLIER_RECIPE`'s values, then ``overrides`` (a key given twice: the last).

    Example:
        >>> earlier_recipe("augment=few_scans", "seed=1")[1]
        ['augment=few_scans', 'model.loss.include_background=false', 'trainer.max_epochs=18', 'seed=1']
    """
    values = dict(o.split("=", 1) for o in (*EARLIER_RECIPE, *overrides))
    return "lumbar_t2", [f"{key}={value}" for key, value in values.items()]


def three_seeds(name: str, *overrides: str) -> dict[str, tuple[str, list[str]]]:
    """``name`` (seed 0), ``name_seed1`` and ``name_seed2``: one setting of the earlier recipe, three seeds."""
    return {f"{name}{suffix}": earlier_recipe(*overrides, *extra)
            for suffix, extra in (("", ()), ("_seed1", ("seed=1",)), ("_seed2", ("seed=2",)))}  # fmt: skip


#: variant -> (experiment, overrides); the ablations switch one lever of the recipe off (``augmented``: on).
VARIANTS = {
    **three_seeds("recipe"),
    **three_seeds("augmented", "augment=few_scans"),
    "no_context": earlier_recipe("model.context_slices=0"),
    "with_background": earlier_recipe("model.loss.include_background=true"),
    "constant_lr": earlier_recipe("optim.schedule=constant", "optim.warmup_epochs=0"),
    "size128": earlier_recipe("image_size=128"),
    "paper": ("lumbar_t2_paper", []),
    "quick": ("few_scans_quick", ["data=lumbar_t2"]),  # the <= 10-minute first look: 8 epochs at 160 px
}


#: seeds_x2.py's settings at twice the steps (36 epochs, 396 steps): not run by run.py itself
X2_SETTINGS = {
    "recipe_x2": ["trainer.max_epochs=36"],
    "with_background_x2": ["trainer.max_epochs=36", "model.loss.include_background=true"],
    # the Dice term's background with nnU-Net's 2D augmentation (augment=few_scans), whose extra variety
    # is given the longer schedule: the no-augmentation runs reached 0.72-0.86 by seed on one fold.
    # The lumbar_t2 preset until it took 108 epochs and the anchor rule (longer.py measures it since).
    "augmented_bg_x2": ["trainer.max_epochs=36", "model.loss.include_background=true", "augment=few_scans"],
}
X2_VARIANTS = {v: spec for name, overrides in X2_SETTINGS.items() for v, spec in three_seeds(name, *overrides).items()}
VARIANTS.update(X2_VARIANTS)
VARIANTS["preset"] = ("lumbar_t2", [])  # the final model: the preset as shipped, no override
BASELINE_STEPS = 198  # the recipe's 18 epochs x 11 steps of batch 8 on a two-scan fold
#: The level-labelling rule of every table row not marked "--surplus anchor": the five largest of more than
#: five discs, whatever the checkpoint records (the lumbar_t2 preset records anchor since it took 108 epochs).
LARGEST = ("--surplus", "largest")
#: The test-time augmentation of every row not marked "flip TTA" (a later --tta in the flags wins).
NO_TTA = ("--tta", "none")


def sh(*args: str | Path) -> float:
    """Run a command (no shell), echo it, return its wall time in seconds."""
    cmd = [str(a) for a in args]
    print("$", shlex.join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def discnet(*args) -> float:
    return sh(Path(sys.executable).parent / "discnet", *args)


def complete(run_dir: Path) -> bool:
    return (read_summary(run_dir) or {}).get("status") == "complete"


def train(args, variant: str, held: str) -> Path | None:
    """The run folder of ``variant`` on fold ``held`` (``all``: the final model), trained unless done."""
    run_dir = args.work / "train" / variant / held
    if not complete(run_dir) and not args.score_only:
        experiment, overrides = VARIANTS[variant]
        fold = "data.train_on_val=true" if held == "all" else f"data.val_subjects=[{held}]"
        sh(sys.executable, ROOT / "train.py", f"experiment={experiment}", f"data.root={args.data}", fold,
           f"hydra.run.dir={run_dir}", f"paths.cache_dir={args.work / 'cache'}", "logger=csv", *overrides)  # fmt: skip
    return run_dir if complete(run_dir) else None


def evaluate(args, masks: Path, subject: str) -> pd.DataFrame:
    metrics = masks / "metrics.csv"
    if not metrics.is_file():
        discnet("evaluate", "--pred", masks, "--truth", args.data / f"{subject}_discs.nii.gz",
                "--levels", args.data / "levels.csv", "-o", metrics)  # fmt: skip
    return pd.read_csv(metrics)


def predict(args, ckpts: list[Path], subject: str, out: Path, *flags: str) -> pd.DataFrame:
    """Predict one scan with ``ckpts`` and score it: without test-time augmentation unless ``flags`` ask
    for it (``--tta none`` explicit, whatever the checkpoint records: the few_scans presets record flip)."""
    if not (out / "volumes.csv").is_file():
        models = [x for ckpt in ckpts for x in ("--ckpt", ckpt)]
        discnet("predict", *models, args.data / f"{subject}_T2w.nii.gz", "--levels", args.data / "levels.csv",
                "--out-dir", out, *NO_TTA, *flags)  # fmt: skip
    return evaluate(args, out, subject)


def score_run(args, variant: str, held: str, run_dir: Path, tta: bool | None = None) -> list[pd.DataFrame]:
    """``last.ckpt`` of ``run_dir`` on the held-out scan: orphan removal on, off, and (``tta``; by default
    for the recipe only) on with test-time mirroring."""
    ckpt = RunFolder(run_dir).checkpoint("last")
    summary = read_summary(run_dir)
    out = args.work / "predict" / variant / held
    tables = [
        predict(args, [ckpt], held, out / "orphans_removed", "--qc", *LARGEST).assign(orphan_removal=True, tta="none"),
        predict(args, [ckpt], held, out / "raw_mask", "--no-orphan-removal", *LARGEST).assign(
            orphan_removal=False, tta="none"
        ),
    ]
    if variant == "recipe" if tta is None else tta:
        tables.append(
            predict(args, [ckpt], held, out / "tta_flip", "--tta", "flip", *LARGEST).assign(
                orphan_removal=True, tta="flip"
            )
        )
    return [
        t.assign(method=f"discnet {variant}", held_out=held, epochs=summary["epochs"], train_s=summary["wall_time_s"])
        for t in tables
    ]


def baseline(args, held: str, steps: int = BASELINE_STEPS, name: str = "monai", seed: int = 0) -> list[pd.DataFrame]:
    """The MONAI peer (``seed``) on fold ``held`` after ``steps`` optimizer steps (folder ``work/<name>/<held>``),
    scored."""
    out = args.work / name / held
    if not (out / "summary.json").is_file():
        if args.score_only:
            return []
        sh(sys.executable, HERE / "monai_baseline.py", "--held-out", held, "--steps", steps, "--size", 192,
           "--data", args.data, "--seed", seed, "-o", out)  # fmt: skip
    summary = pd.read_json(out / "summary.json", typ="series")
    return [
        evaluate(args, folder, held).assign(
            orphan_removal=orphans,
            tta="none",
            method="MONAI BasicUNet",
            held_out=held,
            epochs=summary["epochs"],
            train_s=summary["train_s"],
        )  # fmt: skip
        for folder, orphans in ((out, False), (out / "orphans_removed", True))
    ]


#: Each ensemble's three seeds, trained on every fold (the other variants on ABLATION_FOLD only).
ENSEMBLES = {
    "recipe": ("recipe", "recipe_seed1", "recipe_seed2"),
    "augmented": ("augmented", "augmented_seed1", "augmented_seed2"),
}
EVERY_FOLD = tuple(v for seeds in ENSEMBLES.values() for v in seeds)


def ensemble(
    args, name: str, held: str, members: tuple[str, ...] | None = None
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The three seeds of ``ENSEMBLES[name]`` (or ``members``) on fold ``held`` as one: its scores, its
    uncertainty rows."""
    seeds = [args.work / "train" / v / held for v in members or ENSEMBLES[name]]
    if not all(complete(s) for s in seeds):
        return None, None
    out = args.work / "predict" / f"{name}_ensemble" / held
    ckpts = [RunFolder(s).checkpoint("last") for s in seeds]
    table = predict(args, ckpts, held, out, "--reference", args.reference, *LARGEST).assign(
        orphan_removal=True, tta="none", method=f"discnet {name}, 3-seed ensemble", held_out=held
    )
    return table, pd.read_csv(out / "uncertainty.csv")


def volume_agreement(args, rows: pd.DataFrame, method: str, name: str) -> Path | None:
    """``discnet agreement --volumes`` of ``method``'s held-out disc volumes against the manual ones.

    The rows scored with orphan removal and without TTA, every level of every held-out subject.
    Writes ``volume_agreement_<name>.csv`` (ICC, Bland-Altman, errors per level and overall) and its
    Bland-Altman plot into ``--results``; the two volume tables it compares beside them in ``--work``.
    """
    chosen = rows[(rows["method"] == method) & rows["orphan_removal"] & (rows["tta"] == "none")]
    chosen = chosen[chosen["level"].astype(str) != "all"]
    if chosen["held_out"].nunique() < 2:
        return None
    tables = args.work / "volumes" / name
    tables.mkdir(parents=True, exist_ok=True)
    for column, file in (("pred_mm3", "predicted.csv"), ("true_mm3", "manual.csv")):
        chosen.rename(columns={column: "volume_mm3"})[["held_out", "level", "volume_mm3"]].rename(
            columns={"held_out": "subject"}
        ).to_csv(tables / file, index=False)
    out = args.results / f"volume_agreement_{name}.csv"
    discnet("agreement", "--volumes", tables / "predicted.csv", tables / "manual.csv", "-o", out)
    return out


def final_model(
    args, variant: str = "recipe", volumes_csv: str = "final_volumes.csv", rule: tuple[str, ...] = LARGEST
) -> dict | None:
    """Train ``variant`` on all three scans, predict the first (level labelling by ``rule``; empty: the one
    the checkpoint records; test-time augmentation: the checkpoint's), check geometry and volumes against
    ivd-volumes; the predicted volumes go to ``results/volumes_csv``."""
    import nibabel as nib

    run_dir = train(args, variant, "all")
    if run_dir is None:
        return None
    summary, scan, ckpt = (
        read_summary(run_dir),
        args.data / f"{SUBJECTS[0]}_T2w.nii.gz",
        RunFolder(run_dir).checkpoint("last"),
    )
    out = args.work / "predict" / ("final" if variant == "recipe" else f"final_{variant}")
    if not (out / "volumes.csv").is_file():
        discnet("predict", "--ckpt", ckpt, scan, "--levels", args.data / "levels.csv",
                "--out-dir", out, "--qc", "--reference", args.reference, *rule)  # fmt: skip
    image, mask = nib.load(scan), nib.load(out / f"{SUBJECTS[0]}_T2w_discs.nii.gz")
    volumes = pd.read_csv(out / "volumes.csv")
    volumes.to_csv(args.results / volumes_csv, index=False)
    experiment, overrides = VARIANTS[variant]
    settings = model_settings(ckpt, read_checkpoint(ckpt))  # what predict applied where no flag said otherwise
    return {
        "command": shlex.join(["python", "train.py", f"experiment={experiment}", "data.train_on_val=true", *overrides])
        + f"  (then discnet predict on {scan.name})",
        "train_s": summary["wall_time_s"],
        "epochs": summary["epochs"],
        "training_fit_dsc": summary["last_val_dsc"],
        "surplus": "largest" if rule == LARGEST else settings.surplus,
        "tta": settings.tta,
        "same_geometry": bool(image.shape == mask.shape and (image.affine == mask.affine).all()),
        "volumes_mm3": dict(zip(volumes["level"], volumes["volume_mm3"].round(0), strict=True)),
    }


def final_preset(args, variant: str) -> None:
    """:func:`final_model` of the lumbar_t2 preset (``variant``), labelled by the rule its checkpoint records,
    written to ``results/final_preset.json`` and ``results/final_preset_volumes.csv``."""
    if final := final_model(args, variant, "final_preset_volumes.csv", rule=()):
        (args.results / "final_preset.json").write_text(json.dumps(final, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(final, indent=2))


def main() -> None:
    from report_tables import write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lumbar-t2")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--work", type=Path, default=ROOT / "experiments" / "lumbar_t2" / "work")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    default = [v for v in VARIANTS if v not in X2_VARIANTS and v != "preset"]  # those are seeds_x2.py's
    parser.add_argument("--variants", nargs="+", default=default, choices=list(VARIANTS))
    parser.add_argument("--score-only", action="store_true", help="score the runs that exist; train nothing")
    parser.add_argument("--no-final", action="store_true", help="skip the final model on all subjects")
    args = parser.parse_args()
    args.data, args.work = args.data.resolve(), args.work.resolve()
    args.results.mkdir(parents=True, exist_ok=True)
    tables, ensembles, uncertainty = [], [], []
    for held in SUBJECTS:
        if run_dir := train(args, "recipe", held):
            tables += score_run(args, "recipe", held, run_dir)
        tables += baseline(args, held)
    for variant in [v for v in args.variants if v != "recipe"]:
        for held in SUBJECTS if variant in EVERY_FOLD else (ABLATION_FOLD,):
            if run_dir := train(args, variant, held):
                tables += score_run(args, variant, held, run_dir)
    for name in ENSEMBLES:
        for held in SUBJECTS:
            table, members = ensemble(args, name, held)
            if table is not None:
                tables.append(table)
                if name == "recipe":  # the QC flags are scored on the recipe's ensembles
                    ensembles.append(table)
                    uncertainty.append(members)
    hits = None
    if ensembles:
        from discnet.inference.uncertainty import flag_hit_rate

        hits = flag_hit_rate(pd.concat(uncertainty), pd.concat(ensembles)).assign(folds=len(ensembles))
    rows = pd.concat(tables, ignore_index=True)
    for method, name in (("discnet recipe", "recipe"), ("discnet recipe, 3-seed ensemble", "ensemble"),
                         ("discnet augmented", "augmented"), ("MONAI BasicUNet", "monai")):  # fmt: skip
        volume_agreement(args, rows, method, name)
    final = None if args.no_final else final_model(args)
    write_results(rows, hits, final, args, ABLATION_FOLD)


if __name__ == "__main__":
    main()
