"""Longer training, side by side: the recipe and the MONAI peer given the same multiple of steps.

The same leave-one-out folds, scoring and checkpoint (``last.ckpt``; the peer's last step) as ``run.py``,
one seed per fold; the question is whether the recipe's margin over the peer and its distance to the
issue's targets change with more steps on a machine where both fit the 30-minute budget.

By default, twice the steps: the earlier recipe at 36 epochs (396 steps) and the peer at 396 steps,
written to ``results/longer.csv`` (per fold and level, orphan removal off and on) and ``results/longer.md``.
With ``--preset-epochs N``, the ``lumbar_t2`` preset as shipped but for ``trainer.max_epochs=N`` (also
scored with flip TTA, ``--surplus anchor`` and both; with several ``--seeds``, also their ensemble under
both rules) and the peer at the same steps (N x 11 on a two-scan
fold), written to ``results/longer_preset_<N>ep.{csv,md}``, each seed's val/dsc per epoch on sub25 beside
the paper's preset in ``results/curves_preset_<N>ep.png``; ``--final`` then trains the preset as shipped
on all three scans (``results/final_preset.json``, ``results/final_preset_volumes.csv``):

    python experiments/lumbar_t2/longer.py --work experiments/lumbar_t2/work
    python experiments/lumbar_t2/longer.py --work experiments/lumbar_t2/work --preset-epochs 108 --seeds 0 1 2 --final
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from report_tables import curves, plot_curves, side_by_side
from run import (
    BASELINE_STEPS,
    HERE,
    REFERENCE,
    ROOT,
    SUBJECTS,
    VARIANTS,
    RunFolder,
    baseline,
    ensemble,
    final_preset,
    predict,
    score_run,
    train,
)
from seeds_x2 import CURVES_FOLD, anchor_rule

STEPS_PER_EPOCH = BASELINE_STEPS // 18  # batches of 8 of a two-scan fold
STEPS = 2 * BASELINE_STEPS


def _variant(epochs: int, seed: int) -> str:
    return f"preset_{epochs}ep" + (f"_seed{seed}" if seed else "")


def _ensemble(args, epochs: int, held: str, seeds: list[int]) -> list[pd.DataFrame]:
    """The seeds of the preset at ``epochs`` on fold ``held`` as one ensemble: the five-largest rule, the anchor
    rule (the preset's); nothing unless every seed is trained."""
    name, members = f"preset_{epochs}ep", tuple(_variant(epochs, seed) for seed in seeds)
    table, _ = ensemble(args, name, held, members)
    if table is None:
        return []
    table = table.assign(method=f"discnet {name}, {len(seeds)}-seed ensemble")
    ckpts = [RunFolder(args.work / "train" / v / held).checkpoint("last") for v in members]
    out = args.work / "predict" / f"{name}_ensemble" / held
    return [table, anchor_rule(args, ckpts, held, out, table["method"].iloc[0]).assign(tta="none")]


def _preset(args, epochs: int, held: str, seed: int = 0) -> list[pd.DataFrame]:
    """The preset at ``epochs`` (``seed``) on fold ``held``: orphan removal on, off, flip TTA, the anchor rule
    (the preset's own), the anchor rule with flip TTA."""
    variant = _variant(epochs, seed)
    VARIANTS[variant] = ("lumbar_t2", [f"trainer.max_epochs={epochs}", *([f"seed={seed}"] if seed else [])])
    run_dir = train(args, variant, held)
    if run_dir is None:
        return []
    tables = score_run(args, variant, held, run_dir, tta=True)
    ckpt = RunFolder(run_dir).checkpoint("last")
    out = args.work / "predict" / variant / held
    anchor = anchor_rule(args, [ckpt], held, out, f"discnet {variant}")
    flip = predict(args, [ckpt], held, out / "tta_flip_anchor", "--tta", "flip", "--surplus", "anchor").assign(
        orphan_removal=True, held_out=held, method=anchor["method"].iloc[0]
    )
    first = tables[0]
    tables += [t.assign(tta=tta, epochs=first["epochs"].iloc[0], train_s=first["train_s"].iloc[0])
               for t, tta in ((anchor, "none"), (flip, "flip"))]  # fmt: skip
    return [t.assign(method=t["method"] + t["tta"].map({"none": "", "flip": ", flip TTA"})) for t in tables]


def seed_means(wide: pd.DataFrame) -> pd.DataFrame | None:
    """Whole-volume Dice per fold averaged over the seeds of each scoring (``preset_108ep_seed1, flip TTA``
    counts with ``preset_108ep, flip TTA``), with the seeds' count; None when no method has two seeds.

    Example:
        >>> idx = pd.MultiIndex.from_tuples([("discnet p", True), ("discnet p_seed1", True)])
        >>> seed_means(pd.DataFrame({"sub11": [0.8, 0.9], "mean": [0.8, 0.9]}, index=idx)).to_dict("records")
        [{'sub11': 0.85, 'mean': 0.85, 'seeds': 2}]
    """
    method = wide.index.get_level_values(0).str.replace(r"_seed\d+", "", regex=True)
    keys = [method, wide.index.get_level_values(1)]
    means = wide.groupby(keys).mean().round(4).assign(seeds=wide.groupby(keys).size())
    means = means[means["seeds"] > 1]
    return None if means.empty else means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "lumbar-t2")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--preset-epochs", type=int, help="the lumbar_t2 preset at this many epochs")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="with --preset-epochs: train and score these seeds"
    )
    parser.add_argument("--final", action="store_true", help="then the preset as shipped on all three scans")
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--score-only", action="store_true", help="score the runs that exist; train nothing")
    args = parser.parse_args()
    epochs = args.preset_epochs
    steps = STEPS if epochs is None else epochs * STEPS_PER_EPOCH
    stem = "longer" if epochs is None else f"longer_preset_{epochs}ep"
    rows = []
    for held in SUBJECTS:
        if epochs is None:
            run_dir = train(args, "recipe_x2", held)
            if run_dir is not None:
                rows += [t.drop(columns=["tta"]) for t in score_run(args, "recipe_x2", held, run_dir)[:2]]
        else:
            rows += [t.drop(columns=["tta"]) for seed in args.seeds for t in _preset(args, epochs, held, seed)]
            if len(args.seeds) > 1:
                rows += [t.drop(columns=["tta"]) for t in _ensemble(args, epochs, held, args.seeds)]
        rows += [
            t.drop(columns=["tta"])
            for t in baseline(args, held, steps, "monai_x2" if epochs is None else f"monai_{steps}steps")
        ]
        table = pd.concat(rows, ignore_index=True)
        table.to_csv(args.results / f"{stem}.csv", index=False)
    wide, per_level, seconds = side_by_side(table)
    seeds = seed_means(wide)
    l5 = table[(table["level"] == "L5-S1") & table["orphan_removal"]].groupby("method")["dice"].mean().round(4)
    text = [
        f"# Longer training: {'recipe (36 epochs)' if epochs is None else f'lumbar_t2 preset ({epochs} epochs)'}"
        f" and MONAI peer ({steps} steps), `last.ckpt` (generated by longer.py)",
        "",
        "Whole-volume Dice of the held-out subject (rows not marked *--surplus anchor* keep, of more than five",
        "components, the five largest; the lumbar_t2 preset's own rule is the anchor one):",
        "",
        wide.reset_index().to_markdown(index=False),
        "",
        *(
            [
                "Mean over the seeds (each seed's `last.ckpt` scored alone, then averaged):",
                "",
                seeds.reset_index().to_markdown(index=False),
                "",
            ]
            if seeds is not None
            else []
        ),
        "L5-S1 Dice (orphan removal on, mean over the folds): "
        + ", ".join(f"{method} {value}" for method, value in l5.items()),
        "",
        "Per level, mean over the folds (orphan removal on; volume_ratio: predicted / manual volume):",
        "",
        per_level.reset_index().to_markdown(index=False),
        "",
        "Training seconds per fold:",
        "",
        seconds.reset_index().to_markdown(index=False),
        "",
    ]
    (args.results / f"{stem}.md").write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))
    if epochs is not None:
        _curves(args, f"preset_{epochs}ep")
    variant = f"preset_{epochs}ep" if epochs is not None else "preset"  # the epochs in the folder's name
    if args.final:
        final_preset(args, variant)


def _curves(args, variant: str) -> None:
    """val/dsc per epoch of every seed of ``variant`` on sub25 beside the paper's preset (results/epochs)."""
    history = curves(args, CURVES_FOLD)
    history = history[history["variant"].str.match(rf"{variant}(_seed\d+)?$")] if not history.empty else history
    paper = args.results / "epochs" / f"paper_{CURVES_FOLD}.csv"
    if paper.is_file():
        history = pd.concat([history, pd.read_csv(paper).assign(variant="paper")], ignore_index=True)
    if not history.empty:
        plot_curves(history, CURVES_FOLD, args.results / f"curves_{variant}.png",
                    bold=(variant, "paper"))  # fmt: skip


if __name__ == "__main__":
    main()
