"""Figures in the paper's style, drawn on matplotlib's Agg canvas (no pyplot, no global state).

- :func:`box_figure`: box plots (median, quartiles, Tukey whiskers at 1.5 IQR) with every value as a
  jittered point (Tukey outliers as red open diamonds) and compact letters on the top margin (Fig 4A, 5A/B).
- :func:`leaderboard_figure`: the top runs as horizontal bars coloured by version (Fig 4B, 5C/D).
- :func:`paired_figure`: each run's Dice before and after orphan removal, joined by a line.
- :func:`panels_figure`: per-group mean ± SD with the values behind and letters on top (Fig 3B/C, Fig 7).
- :func:`bland_altman_figure`: two volume tables' differences against their means, by level.

Each takes ready-made numbers (see :mod:`discnet.analysis.report`) and returns a ``Figure``; :func:`save` writes
it atomically (:mod:`discnet.io.pictures`).

Example:
    >>> import numpy as np
    >>> fig = box_figure([("a", np.array([0.8, 0.9])), ("b", np.array([0.7, 0.75]))], {"a": "a", "b": "b"}, "t", "Dice")
    >>> float(fig.get_figwidth())
    4.5
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from discnet.spine import level_sort_key, natural_key

DPI = 150
Groups = Sequence[tuple[str, np.ndarray]]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def colours(names: Sequence[str]) -> dict[str, tuple]:
    """One colour per name (tab10, tab20 beyond 10 names), in the given order."""
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _draw_letters(ax, positions: Sequence[float], names: Sequence[str], letters: Mapping[str, str] | None) -> None:
    if not letters:
        return
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    for x, name in zip(positions, names, strict=True):
        ax.text(x, 1.015, letters.get(name, ""), transform=transform, ha="center", va="bottom", fontsize=11)


def _xticks(ax, names: Sequence[str], counts: Sequence[int] | None = None, labels: Mapping | None = None) -> None:
    names = [labels.get(n, n) for n in names] if labels else list(names)
    labels = [f"{n}\n(n={c})" for n, c in zip(names, counts, strict=True)] if counts else names
    rotate = len(names) > 5 or max((len(str(n)) for n in names), default=0) * len(names) > 60
    ax.set_xticks(range(1, len(names) + 1), labels, rotation=35 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(0.4, len(names) + 0.6)


def _title(ax, title: str) -> None:
    ax.set_title(title, pad=20, fontsize=10.5)


def box_axes(ax, groups: Groups, letters, title, ylabel, palette=None, jitter=0.12, counts=False, labels=None) -> bool:
    """Box plots with jittered points and letters on ``ax``; True when a Tukey outlier was drawn.

    ``labels`` maps group names to tick labels (default: the names).
    """
    rng = np.random.default_rng(0)
    names = [n for n, _ in groups]
    palette = palette or colours(names)
    boxes = ax.boxplot(
        [v for _, v in groups],
        positions=range(1, len(groups) + 1),
        widths=0.55,
        whis=1.5,
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "black", "linewidth": 1.4},
    )
    any_outlier = False
    for i, ((name, values), box) in enumerate(zip(groups, boxes["boxes"], strict=True), start=1):
        box.set(facecolor=(*palette[name][:3], 0.25), edgecolor="0.25")
        q1, q3 = np.percentile(values, [25, 75])
        out = (values < q1 - 1.5 * (q3 - q1)) | (values > q3 + 1.5 * (q3 - q1))
        any_outlier |= bool(out.any())
        x = i + rng.uniform(-jitter, jitter, len(values))
        ax.scatter(x[~out], values[~out], s=16, color=palette[name], edgecolor="black", linewidth=0.4, zorder=3)
        ax.scatter(x[out], values[out], s=30, marker="D", facecolor="none", edgecolor="red", linewidth=1.2, zorder=3)
    _xticks(ax, names, [len(v) for _, v in groups] if counts else None, labels)
    _draw_letters(ax, range(1, len(groups) + 1), names, letters)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    _title(ax, title)
    return any_outlier


def box_figure(groups: Groups, letters, title, ylabel, point="run", palette=None, labels=None) -> Figure:
    """Box plots per group with every value as a point and letters on the top margin (Fig 4A, 5A/B)."""
    fig = _figure(max(4.5, (1.0 if labels else 0.75) * len(groups) + 2.0), 6.2 if labels else 4.6)
    ax = fig.add_subplot()
    _legend(ax, point, box_axes(ax, groups, letters, title, ylabel, palette, labels=labels), outside=True)
    return fig


def leaderboard_figure(board: pd.DataFrame, response: str, title: str, palette=None) -> Figure:
    """Horizontal bars of the top runs (rank 1 on top), coloured by version, value at each bar's end."""
    versions = sorted(dict.fromkeys(board["version"]), key=natural_key)
    palette = palette or colours(versions)
    values = board[response].to_numpy(float)
    fig = _figure(7.0, 0.3 * len(board) + 1.6)
    ax = fig.add_subplot()
    y = np.arange(len(board))
    ax.barh(y, values, color=[palette[v] for v in board["version"]], height=0.7)
    span = max(values.max() - values.min(), 0.01)
    low = max(values.min() - 0.6 * span, 0.0)
    ax.set_xlim(low, values.max() + 0.25 * span)
    for yi, value in zip(y, values, strict=True):
        ax.text(value + 0.01 * span, yi, f"{value:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, [f"{r.rank}. {r.version}  seed {r.seed}" for r in board.itertuples()], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("mean validation Dice across subjects" + (f" (axis starts at {low:.3f})" if low else ""))
    ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], marker="s", ls="", color=palette[v], label=v) for v in versions]
    ax.legend(
        handles=handles, fontsize=8, title="version", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    ax.set_title(title, fontsize=10.5)
    return fig


def paired_figure(pairs: pd.DataFrame, order: Sequence[str], title: str, palette=None) -> Figure:
    """Each run's mean Dice without (left) and with (right) orphan removal, per version; mean gain on top.

    ``pairs`` has columns version, before, after (one row per run).
    """
    palette = palette or colours(order)
    fig = _figure(max(4.5, 0.9 * len(order) + 2.0), 4.6)
    ax = fig.add_subplot()
    gains = {}
    for i, version in enumerate(order, start=1):
        runs = pairs[pairs["version"] == version]
        for before, after in zip(runs["before"], runs["after"], strict=True):
            ax.plot([i - 0.18, i + 0.18], [before, after], color=palette[version], alpha=0.7, lw=1)
            ax.scatter([i - 0.18], [before], s=14, color="white", edgecolor=palette[version], zorder=3)
            ax.scatter([i + 0.18], [after], s=14, color=palette[version], edgecolor="black", lw=0.3, zorder=3)
        gain = runs["after"] - runs["before"]
        gains[version] = f"{gain.mean():+.3f}" + (f"\n±{gain.std():.3f}" if len(gain) > 1 else "")
    _xticks(ax, list(order))
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    for i, version in enumerate(order, start=1):
        ax.text(i, 1.015, gains[version], transform=transform, ha="center", va="bottom", fontsize=8)
    handles = [
        Line2D([], [], marker="o", ls="", mfc="white", mec="0.3", label="as trained"),
        Line2D([], [], marker="o", ls="", color="0.3", label="orphans removed"),
    ]
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    ax.set_ylabel("validation Dice (mean over subjects)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, pad=30, fontsize=10.5)
    return fig


def mean_sd_axes(ax, groups: Groups, letters, title: str, ylabel: str, reference: float | None = None) -> None:
    """Values (faint, jittered), mean ± SD per group, letters on the top margin."""
    rng = np.random.default_rng(0)
    for i, (_, values) in enumerate(groups, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=9, color="0.6", alpha=0.6, lw=0)
        sd = values.std(ddof=1) if len(values) > 1 else 0.0
        ax.errorbar(i, values.mean(), yerr=sd, fmt="o", color="black", ms=6, capsize=5, lw=1.4, zorder=3)
    if reference is not None:
        ax.axhline(reference, color="0.4", ls="--", lw=0.8)
    names = [n for n, _ in groups]
    _xticks(ax, names, [len(v) for _, v in groups])
    _draw_letters(ax, range(1, len(groups) + 1), names, letters)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    _title(ax, title)


def _legend(ax, point: str, outliers: bool, outside: bool = False) -> None:
    handles = [Line2D([], [], marker="o", ls="", color="0.5", markeredgecolor="black", label=point)]
    if outliers:
        handles.append(Line2D([], [], marker="D", ls="", mfc="none", mec="red", label="outlier (Tukey)"))
    if outside:
        ax.figure.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=len(handles), frameon=False)
    else:
        ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.8)


def panels_figure(panels: Sequence[dict], mosaic: str | None = None, suptitle: str | None = None) -> Figure:
    """Panels A, B, ... laid out by ``mosaic`` (e.g. ``"AA;BC"``; default two per row).

    Each panel dict: kind ("mean_sd" or "box"), groups, letters, title, ylabel[, reference, point].
    """
    names = "ABCDEFGH"[: len(panels)]
    mosaic = mosaic or ";".join(names[i : i + 2].ljust(2, ".") for i in range(0, len(panels), 2))
    rows = mosaic.split(";")
    width = max(
        sum(max(3.2, 0.55 * len(panels[names.index(c)]["groups"]) + 1.4) for c in row if c != ".") for row in rows
    )
    fig = _figure(max(width, 2 * 3.6), 3.7 * len(rows) + (0.4 if suptitle else 0))
    axes = fig.subplot_mosaic(mosaic, empty_sentinel=".")
    for name, panel in zip(names, panels, strict=True):
        ax = axes[name]
        args = (ax, panel["groups"], panel.get("letters"), panel["title"], panel["ylabel"])
        if panel["kind"] == "box":
            _legend(ax, panel.get("point", "value"), box_axes(*args, jitter=0.08, counts=panel.get("counts", False)))
        else:
            mean_sd_axes(*args, panel.get("reference"))
        ax.text(-0.02, 1.0, name, transform=ax.transAxes, ha="right", va="bottom", fontweight="bold")
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def bland_altman_figure(pairs: pd.DataFrame, stats: pd.DataFrame, names: tuple[str, str] = ("A", "B")):
    """Bland-Altman plot of all discs: mean of A and B against A - B, coloured by level, with the bias and
    the 95% limits of agreement of ``stats``'s ``all`` row."""
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    levels = sorted(pd.unique(pairs["level"]), key=level_sort_key)
    palette = colours(levels)
    for level in levels:
        part = pairs[pairs["level"] == level]
        ax.scatter((part["a"] + part["b"]) / 2, part["a"] - part["b"], s=18, color=palette[level], label=level)
    whole = stats.set_index("level").loc["all"]
    for value, style, text in (
        (whole["bias_mm3"], "-", "bias"),
        (whole["loa_low_mm3"], "--", "-1.96 SD"),
        (whole["loa_high_mm3"], "--", "+1.96 SD"),
    ):
        if np.isfinite(value):
            ax.axhline(value, color="0.3", linestyle=style, linewidth=1)
            ax.annotate(
                f"{text} {value:.0f}", (1.0, value), xycoords=("axes fraction", "data"), ha="right", va="bottom"
            )
    ax.axhline(0.0, color="0.7", linewidth=0.8)
    ax.set_xlabel(f"mean of {names[0]} and {names[1]} (mm$^3$)")
    ax.set_ylabel(f"{names[0]} - {names[1]} (mm$^3$)")
    ax.set_title(f"Bland-Altman, {int(whole['n'])} discs (ICC(2,1) {whole['icc21']:.3f})", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="best")
    return fig
