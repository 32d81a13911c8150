"""Write the analysis: leaderboards (CSV, PNG), statistics (markdown, CSV) and the paper's figures.

- :func:`write_leaderboards`: ``leaderboard.csv`` (top N runs), ``leaderboard_versions.csv`` (per version:
  mean ± SD across runs) and ``leaderboard.png``; the same with ``_orphan_removed`` when runs have
  orphan-removed Dice (paper Fig 4B, 5C, 5D).
- :func:`write_stats`: ``stats.md``, ``lmm.csv``, ``pairwise.csv``, ``letters.csv`` and ``kruskal.csv``
  from a :class:`discnet.analysis.stats.Analysis`.
- :func:`write_report`: both, plus the figures (Fig 3, 4A, 5A/B, 7 and the effect of orphan removal),
  ``runs.csv`` (the long table), ``final_model.json`` (:func:`discnet.analysis.leaderboard.final_model`) and
  ``epochs.csv`` (every epoch's Dice per run and subject, from the runs' ``val_scores.csv``).

Every title, and the ``score`` column of every table, says which epoch the runs were scored at.

Example:
    >>> fmt_p(0.0004), fmt_p(0.0321), fmt_p(float("nan"))
    ('4.0e-04', '0.032', 'n/a')

Over 300 lines because it is the one writer of a report folder: every table, markdown file and figure
of one analysis, named and captioned consistently in one place.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.analysis.leaderboard import final_model, leaderboard_tables
from discnet.analysis.runs import (
    RESPONSES,
    has_response,
    run_means,
    score_name,
)
from discnet.analysis.stats import ALPHA, Analysis, Comparison
from discnet.evaluation.evaluate import mean_sd
from discnet.io.atomic import atomic_path
from discnet.spine import natural_key
from discnet.training.run_scores import epoch_table

NAMES = {
    "dsc": "validation Dice",
    "dsc_orphan_removed": "validation Dice with orphan removal",
    "dice": "Dice",
    "volume_ratio": "volume ratio",
}
SOURCES = {"versions": "Model versions", "discs": "Predicted discs", "agreement": "Inter-reader agreement"}
SUFFIX = {"dsc": "", "dsc_orphan_removed": "_orphan_removed"}
MAX_LISTED = 15


def fmt_p(p: float) -> str:
    """p-value for reading: 3 decimals, scientific below 0.001, "< 1e-16" below that (as R)."""
    if p is None or math.isnan(p):
        return "n/a"
    if p < 1e-16:
        return "< 1e-16"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def p_text(p: float) -> str:
    """``p = 0.032`` or ``p < 1e-16``."""
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def write_text(text: str, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_leaderboards(long: pd.DataFrame, out: Path, n: int = 20) -> list[Path]:
    """Leaderboard CSVs and PNGs in ``out`` for Dice and, when present, orphan-removed Dice."""
    from discnet.analysis.figures import colours, leaderboard_figure
    from discnet.io.pictures import save

    palette = colours(sorted(long["version"].astype(str).unique(), key=natural_key))
    written = []
    for response in (r for r in RESPONSES if has_response(long, r)):
        board, versions = leaderboard_tables(long, n, response)
        total = run_means(long, response).shape[0]
        suffix = SUFFIX[response]
        written.append(write_csv(board, out / f"leaderboard{suffix}.csv"))
        written.append(write_csv(versions, out / f"leaderboard_versions{suffix}.csv"))
        title = f"Top {len(board)} of {total} runs: {NAMES[response]} ({score_name(long)})"
        written.append(save(leaderboard_figure(board, response, title, palette), out / f"leaderboard{suffix}.png"))
    return written


def _row(values: Sequence) -> str:
    return "| " + " | ".join(str(v) for v in values) + " |"


def _table(header: Sequence[str], rows: list[Sequence]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def frame_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame (its index included) as a markdown table, numbers rounded to ``digits``.

    Example:
        >>> print(frame_markdown(pd.DataFrame({"dice": [0.91234]}, index=pd.Index(["sub11"], name="subject"))))
        | subject | dice |
        | --- | --- |
        | sub11 | 0.9123 |
    """
    flat = table.round(digits).reset_index()
    header = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in flat.columns]
    return "\n".join(_table(header, flat.itertuples(index=False)))


LETTERS = {
    "multcompView": "R's multcompView::multcompLetters (insert-absorb)",
    "cld": "R's multcomp::cld (insert-absorb and sweep, groups ordered by mean)",
}


def _comparison_md(c: Comparison, pooled: bool, alpha: float, letters: str, score: str) -> list[str]:
    name = NAMES.get(c.response, c.response) + (f" ({score})" if c.analysis == "versions" and score else "")
    lines = [f"## {SOURCES[c.analysis]}: {name} by {c.by}", ""]
    if c.analysis == "versions":
        lines += _lmm_md(c)
        unit = "runs"
        what = "the runs' mean Dice across subjects (one value per run)"
        test = "t-tests with the SD pooled over all versions" if pooled else "Welch t-tests"
    else:
        row = c.overall.iloc[0]
        unit = "discs" if c.analysis == "discs" else "discs, each the mean over reader pairs"
        lines += [
            f"Kruskal-Wallis across {c.by}s: H = {row['statistic']:.2f}, df = {row['df']}, "
            f"{p_text(row['p'])} (n = {row['n']} {unit}).",
            "",
        ]
        what, test = f"per-disc {name}", "two-sided Wilcoxon rank-sum tests"
    lines += [
        f"Pairwise comparisons of {what}: {test}, Holm-corrected over {len(c.pairwise)} pair(s). "
        f"Groups that share no letter differ at p < {alpha:g} (letters: {LETTERS[letters]}).",
        "",
    ]
    rows = [[g.group, g.n, mean_sd(g.mean, g.sd), f"{g.median:.3f}", g.letters] for g in c.groups.itertuples()]
    lines += _table([c.by, unit.split(",")[0], "mean ± SD", "median", "letters"], rows) + [""]
    significant = c.pairwise[c.pairwise["p_holm"] < alpha]
    pairs = [f"{r.group_a} vs {r.group_b} ({p_text(r.p_holm)})" for r in significant.itertuples()]
    if len(pairs) > MAX_LISTED:
        pairs = pairs[:MAX_LISTED] + [f"and {len(pairs) - MAX_LISTED} more (pairwise.csv)"]
    lines += [f"Significant pairs (Holm): {', '.join(pairs) if pairs else 'none'}.", ""]
    return lines


def _lmm_md(c: Comparison) -> list[str]:
    if c.overall.empty:
        return ["No mixed model was fitted (see notes).", ""]
    first = c.overall.iloc[0]
    factors = " + ".join(c.overall["factor"])
    rows = [[r.factor, r.df, f"{r.lr:.2f}", fmt_p(r.p)] for r in c.overall.itertuples()]
    return [
        f"Linear mixed model `{c.response} ~ {factors} + (1 | subject)`, maximum likelihood, "
        f"{first['n_obs']} values of {first['n_groups']} subjects (random-intercept SD {first['group_sd']:.4f}, "
        f"residual SD {first['residual_sd']:.4f}). Each factor's p-value: likelihood-ratio test against the "
        "model without it (chi-squared, df = fixed-effect columns removed).",
        "",
        *_table(["factor", "df", "LR chi2", "p"], rows),
        "",
    ]


def stats_markdown(analysis: Analysis, intro: Sequence[str] = (), pooled=False, alpha=ALPHA) -> str:
    """The readable report of an analysis: data, notes, then one section per comparison."""
    lines = ["# discnet statistics", "", *intro]
    if intro:
        lines.append("")
    if analysis.notes:
        lines += ["Notes:", "", *(f"- {n}" for n in analysis.notes), ""]
    for comparison in analysis.comparisons:
        lines += _comparison_md(comparison, pooled, alpha, analysis.letters, analysis.score)
    return "\n".join(lines).rstrip() + "\n"


def _concat(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Row blocks stacked; the (empty) first block when all are empty."""
    full = [t for t in tables if not t.empty]
    return pd.concat(full, ignore_index=True) if full else tables[0]


def stats_tables(analysis: Analysis, alpha=ALPHA) -> dict[str, pd.DataFrame]:
    """``lmm``, ``kruskal``, ``pairwise`` and ``letters`` tables, one row block per comparison."""
    parts: dict[str, list] = {"lmm": [], "kruskal": [], "pairwise": [], "letters": []}
    for c in analysis.comparisons:
        keys = {"analysis": c.analysis, "response": c.response, "by": c.by}
        keys["score"] = analysis.score if c.analysis == "versions" else ""
        overall = "lmm" if c.analysis == "versions" else "kruskal"
        for name, table in ((overall, c.overall), ("pairwise", c.pairwise), ("letters", c.groups)):
            parts[name].append(table.assign(**keys)[[*keys, *table.columns]])
    tables = {k: _concat(v) for k, v in parts.items() if v}
    if "pairwise" in tables:
        tables["pairwise"]["significant"] = tables["pairwise"]["p_holm"] < alpha
    return tables


def write_stats(analysis: Analysis, out: Path, intro: Sequence[str] = (), pooled=False, alpha=ALPHA) -> list[Path]:
    """``stats.md`` and the CSV tables of :func:`stats_tables` in ``out``."""
    written = [write_csv(t, out / f"{name}.csv") for name, t in stats_tables(analysis, alpha).items()]
    return [write_text(stats_markdown(analysis, intro, pooled, alpha), out / "stats.md"), *written]


def describe_runs(long: pd.DataFrame, sources: Sequence[str]) -> list[str]:
    """One sentence on the runs analysed."""
    runs, versions = long["run"].nunique(), long["version"].nunique()
    where = f" from {', '.join(str(s) for s in sources)}" if sources else ""
    return [
        f"{runs} runs of {versions} version(s), {long['subject'].nunique()} validation subjects{where}; "
        f"each run scored at its {score_name(long)}.",
        "",
        final_model(long)["text"] + ".",
        "",
    ]


def _box_values(table: pd.DataFrame, by: str, response: str, order: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """Values of ``response`` per group of ``by``, in ``order``, empty for a group without any (one box each)."""
    data = table.dropna(subset=[by, response])
    return [(g, data.loc[data[by].astype(str) == g, response].to_numpy(float)) for g in order]


def _letters_by_group(c: Comparison) -> dict[str, str]:
    return dict(zip(c.groups["group"], c.groups["letters"], strict=True))


def _find(analysis: Analysis, kind: str, response: str, by: str) -> Comparison | None:
    return next((c for c in analysis.comparisons if (c.analysis, c.response, c.by) == (kind, response, by)), None)


def version_labels(long: pd.DataFrame) -> dict[str, str]:
    """``version (75%, stretched)`` when the runs' params and input differ between versions (round 1).

    Example:
        >>> version_labels(pd.DataFrame({"version": ["a", "b"], "params": [1.0, 0.5], "input": ["raw", "raw"]}))
        {'a': 'a (100%)', 'b': 'b (50%)'}
    """
    parts = {}
    for column, fmt in (("params", "{:.0%}"), ("input", "{}")):
        if column in long and long[column].notna().all():
            values = long.groupby("version")[column].first()
            if values.nunique() > 1:
                parts[column] = {v: fmt.format(x) for v, x in values.items()}
    if not parts:
        return {}
    return {v: f"{v} ({', '.join(p[v] for p in parts.values())})" for v in long["version"].unique()}


def version_figures(long: pd.DataFrame, analysis: Analysis, out: Path) -> list[Path]:
    """Dice box plots per version (Fig 4A, 5A/B) and the effect of orphan removal per run."""
    from discnet.analysis.figures import box_figure, colours, paired_figure
    from discnet.io.pictures import save

    order = sorted(long["version"].astype(str).unique(), key=natural_key)
    palette = colours(order)
    written = []
    for response in (r for r in RESPONSES if has_response(long, r)):
        c = _find(analysis, "versions", response, "version")
        runs = run_means(long, response)
        tests = ", ".join(f"{r.factor} {p_text(r.p)}" for r in c.overall.itertuples()) if c else ""
        title = f"{_cap(NAMES[response])} ({score_name(long)}) by version" + (
            f"\nmixed model: {tests}" if tests else ""
        )
        groups = [(g, v) for g, v in _box_values(runs, "version", response, order) if len(v)]
        letters = _letters_by_group(c) if c else None
        fig = box_figure(groups, letters, title, "Dice (mean over subjects)", "run", palette, version_labels(long))
        written.append(save(fig, out / f"dice_by_version{SUFFIX[response]}.png"))
    if has_response(long, "dsc_orphan_removed"):
        both = long.dropna(subset=["dsc", "dsc_orphan_removed"])
        pairs = run_means(both, "dsc")[["run", "version", "dsc"]].rename(columns={"dsc": "before"})
        after = run_means(both, "dsc_orphan_removed")[["run", "dsc_orphan_removed"]]
        pairs = pairs.merge(after.rename(columns={"dsc_orphan_removed": "after"}), on="run")
        present = [v for v in order if v in set(pairs["version"])]
        title = f"Effect of orphan removal per run ({score_name(long)}; gain: mean ± SD across runs)"
        written.append(save(paired_figure(pairs, present, title, palette), out / "orphan_removal.png"))
    return written


def _panel(analysis: Analysis, kind: str, table: pd.DataFrame, metric: str, by: str, style: str) -> dict | None:
    c = _find(analysis, kind, metric, by)
    if c is None:
        return None
    p = p_text(c.overall["p"].iloc[0])
    return {
        "kind": style,
        "groups": _box_values(table, by, metric, list(c.groups["group"])),
        "letters": _letters_by_group(c),
        "title": f"{_cap(NAMES[metric])} by {by}\n(Kruskal-Wallis {p})",
        "ylabel": NAMES[metric],
        "reference": 1.0 if metric == "volume_ratio" else None,
        "point": "disc (mean over reader pairs)" if kind == "agreement" else "disc",
        "counts": True,
    }


def disc_figure(discs: pd.DataFrame, analysis: Analysis, out: Path) -> list[Path]:
    """Dice and volume ratio by level and by grade, mean ± SD with letters (Fig 7)."""
    from discnet.analysis.figures import panels_figure
    from discnet.io.pictures import save

    specs = [(m, by) for m in ("dice", "volume_ratio") for by in ("level", "grade")]
    panels = [p for m, by in specs if (p := _panel(analysis, "discs", discs, m, by, "mean_sd"))]
    if not panels:
        return []
    fig = panels_figure(panels, suptitle="Predicted discs against ground truth (mean ± SD per group)")
    return [save(fig, out / "discs_by_level_grade.png")]


def agreement_figure(agreement: pd.DataFrame, discs: pd.DataFrame, analysis: Analysis, out: Path) -> list[Path]:
    """Inter-reader Dice per subject (whole spine, over reader pairs), by grade and by level (Fig 3)."""
    from discnet.analysis.figures import panels_figure
    from discnet.io.pictures import save

    whole = agreement[agreement["level"].astype(str) == "all"].dropna(subset=["dice"])
    subjects = sorted(whole["subject"].astype(str).unique(), key=natural_key)
    panels = []
    if subjects:
        groups = _box_values(whole.assign(subject=whole["subject"].astype(str)), "subject", "dice", subjects)
        title = "Whole-spine Dice per subject"
        panels.append({"kind": "box", "groups": groups, "title": title, "ylabel": "Dice", "point": "reader pair"})
    panels += [p for by in ("grade", "level") if (p := _panel(analysis, "agreement", discs, "dice", by, "box"))]
    if not panels:
        return []
    mosaic = {1: "A", 2: "AB", 3: "AA;BC"}[len(panels)]
    fig = panels_figure(panels, mosaic, suptitle="Inter-reader agreement")
    return [save(fig, out / "agreement.png")]


def write_report(
    out: Path,
    long: pd.DataFrame | None,
    analysis: Analysis,
    n: int = 20,
    intro: Sequence[str] = (),
    discs: pd.DataFrame | None = None,
    agreement: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    pooled: bool = False,
    alpha: float = ALPHA,
) -> list[Path]:
    """Statistics, leaderboards, the long table of runs (``runs.csv``, readable by ``--table``) and every
    figure the inputs allow, in ``out``.

    ``agreement`` is (the agreement table, its per-disc rows).
    """
    written = write_stats(analysis, out, intro, pooled, alpha)
    if long is not None:
        written.append(write_csv(long, out / "runs.csv"))
        written.append(write_text(json.dumps(final_model(long), indent=2) + "\n", out / "final_model.json"))
        epochs = epoch_table(long.drop_duplicates("run"))
        if not epochs.empty:
            written.append(write_csv(epochs, out / "epochs.csv"))
        written += write_leaderboards(long, out, n) + version_figures(long, analysis, out)
    if discs is not None:
        written += disc_figure(discs, analysis, out)
    if agreement is not None:
        written += agreement_figure(*agreement, analysis, out)
    return written
