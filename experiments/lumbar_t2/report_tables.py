"""The tables and the learning-curve figure of ``run.py``, from its scored rows and run folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from discnet.analysis.report import frame_markdown  # noqa: E402

MAIN = ("discnet recipe", "MONAI BasicUNet", "discnet augmented")
LEVELS = ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


def side_by_side(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """longer.py's and seeds_x2.py's tables of scored runs: whole-volume Dice per method and fold (with the
    mean), per-level Dice, precision, recall and volume ratio (orphan removal on), training seconds."""
    whole = table[table["level"].astype(str) == "all"]
    wide = whole.pivot_table(index=["method", "orphan_removal"], columns="held_out", values="dice").round(4)
    wide["mean"] = wide.mean(axis=1).round(4)
    levels = table[(table["level"].astype(str) != "all") & table["orphan_removal"]].assign(
        volume_ratio=lambda t: t["pred_mm3"] / t["true_mm3"]
    )
    per_level = levels.groupby(["method", "level"])[["dice", "precision", "recall", "volume_ratio"]].mean().round(3)
    seconds = whole.groupby(["method", "held_out"])["train_s"].first().round(0).unstack()
    return wide, per_level, seconds


def _whole(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["level"] == "all"]


def fold_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Whole-volume Dice per held-out subject of the recipe and the baseline, with the mean."""
    whole = _whole(
        rows[rows["method"].isin(MAIN) | rows["method"].str.startswith(("discnet recipe", "discnet augmented"))]
    )
    whole = whole[whole["held_out"].isin(whole.loc[whole["method"] == MAIN[0], "held_out"])]
    table = whole.pivot_table(index=["method", "tta", "orphan_removal"], columns="held_out", values="dice")
    table = table[[c for c in table.columns if table[c].notna().all()] or table.columns]
    table["mean"] = table.mean(axis=1)
    return table


def level_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per level, mean over folds (orphan removal on, no TTA): Dice, precision, recall, volumes."""
    main = rows[rows["method"].isin(MAIN) & rows["orphan_removal"] & (rows["tta"] == "none")]
    main = main[main["level"].isin(LEVELS)]
    agg = main.groupby(["method", "level"])[["dice", "precision", "recall", "true_mm3", "pred_mm3"]].mean()
    agg["pred/true volume"] = agg["pred_mm3"] / agg["true_mm3"]
    return agg


def ablation_table(rows: pd.DataFrame, fold: str) -> pd.DataFrame:
    """Dice on the ablation fold (orphan removal on) of every variant, and its change from the recipe."""
    on_fold = _whole(rows[(rows["held_out"] == fold) & rows["orphan_removal"]])
    table = on_fold.assign(
        variant=on_fold["method"] + on_fold["tta"].map(lambda t: "" if t == "none" else f" + TTA {t}")
    )
    table = table.set_index("variant")[["dice", "precision", "recall", "epochs", "train_s"]]
    seeds = [v for v in ("discnet recipe", "discnet recipe_seed1", "discnet recipe_seed2") if v in table.index]
    # a lever is one run of one seed: compare it with the spread of the recipe's own seeds on this fold
    table["change vs recipe seed mean"] = table["dice"] - table.loc[seeds, "dice"].mean()
    return table.sort_values("dice", ascending=False)


def seed_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per family (recipe, augmented) and fold: mean, SD, min and max over its three seeds (orphans removed)."""
    whole = _whole(rows[rows["orphan_removal"] & (rows["tta"] == "none")])
    families = {"discnet recipe": "recipe (augment=none)", "discnet augmented": "augmented (augment=few_scans)"}
    frames = []
    for prefix, family in families.items():
        runs = whole[whole["method"].isin([prefix, f"{prefix}_seed1", f"{prefix}_seed2"])]
        if runs["method"].nunique() < 3:
            continue
        per_fold = runs.groupby("held_out")["dice"].agg(["mean", "std", "min", "max"])
        per_fold.loc["all folds"] = runs["dice"].agg(["mean", "std", "min", "max"])
        frames.append(per_fold.assign(family=family).reset_index().set_index(["family", "held_out"]))
    return pd.concat(frames) if frames else pd.DataFrame()


def curves(args, fold: str) -> pd.DataFrame:
    """Per-epoch validation Dice of every run on ``fold``; copies each val_scores.csv into results/epochs."""
    epochs = args.results / "epochs"
    epochs.mkdir(exist_ok=True)
    frames = []
    for scores in sorted((args.work / "train").glob(f"*/{fold}/val_scores.csv")):
        variant = scores.parents[1].name
        shutil.copyfile(scores, epochs / f"{variant}_{fold}.csv")
        frames.append(pd.read_csv(scores).assign(variant=variant))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_curves(history: pd.DataFrame, fold: str, out: Path, bold: tuple[str, ...] = ("recipe", "paper")) -> None:
    """val/dsc per epoch of each ``history["variant"]`` on held-out ``fold``; the ``bold`` ones drawn thick."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for variant, runs in history.groupby("variant"):
        style = {"linewidth": 2.5} if variant in bold else {"linewidth": 1, "alpha": 0.7}
        ax.plot(runs["epoch"] + 1, runs["val/dsc"], label=variant, **style)
    ax.set(xlabel="epoch", ylabel=f"val/dsc ({fold}, held out)", ylim=(0, 1))
    ax.set_title(f"Validation Dice per epoch on held-out {fold}, two training scans", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def write_results(rows: pd.DataFrame, hits: pd.DataFrame | None, final: dict | None, args, fold: str) -> None:
    """``results.md`` with every table, ``loo_metrics.csv``, ``ablation.csv``, ``curves.png``, ``final.json``."""
    rows.to_csv(args.results / "loo_metrics.csv", index=False)
    lines = ["# Leave-one-out on the lumbar T2 scans (generated by run.py)", ""]
    lines += ["Every score is that of `checkpoints/last.ckpt` (the baseline: its last step); no checkpoint is chosen",
              "on the held-out scan. Source: `loo_metrics.csv`.", ""]  # fmt: skip
    lines += ["## Whole-volume Dice of the held-out subject", "", frame_markdown(fold_table(rows)), ""]
    lines += ["## Per disc level (mean over the folds, orphan removal on)", "", frame_markdown(level_table(rows)), ""]
    seeds = seed_table(rows)
    if not seeds.empty:
        lines += [
            "## Three seeds per fold (whole-volume Dice, orphan removal on)",
            "",
            frame_markdown(seeds.round(4)),
            "",
        ]
        seeds.to_csv(args.results / "seeds.csv")
    ablation = ablation_table(rows, fold)
    lines += [f"## Ablation on held-out {fold} (whole-volume Dice, orphan removal on)", ""]
    lines += [frame_markdown(ablation), ""]
    ablation.to_csv(args.results / "ablation.csv")
    if hits is not None:
        hits.to_csv(args.results / "flag_hit_rate.csv", index=False)
        lines += ["## QC flags of the 3-seed ensembles, all folds pooled (a disc is wrong below Dice 0.8)", ""]
        lines += [frame_markdown(hits.set_index("rule")), ""]
    for name in ("recipe", "ensemble", "augmented", "monai"):
        stats = args.results / f"volume_agreement_{name}.csv"
        if stats.is_file():
            lines += [f"## Disc volume agreement, {name} vs manual (held-out subjects, orphan removal on)", ""]
            lines += [frame_markdown(pd.read_csv(stats).set_index("level").round(3)), ""]
            lines += [f"Source: `{stats.name}`; Bland-Altman plot `{stats.stem}_bland_altman.png`.", ""]
    history = curves(args, fold)
    if not history.empty:
        plot_curves(history, fold, args.results / "curves.png")
        lines += ["Learning curves: `curves.png` (per-epoch scores in `epochs/`).", ""]
    if final is not None:
        (args.results / "final.json").write_text(json.dumps(final, indent=2) + "\n", encoding="utf-8")
        lines += ["## Final model on all three scans", "", "```json", json.dumps(final, indent=2), "```"]
    (args.results / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
