"""The paper's statistics: model comparison (sections 2.5.2-2.5.3) and disc-level comparison (2.2, 2.7).

Model comparison, on the long table of :mod:`discnet.analysis.runs` (one Dice per run and validation subject):

- :func:`lmm_lrt`: linear mixed model ``Dice ~ factors + (1 | subject)`` (statsmodels ``MixedLM``, every
  factor categorical, treatment coding). Each factor's p-value comes from a likelihood-ratio test of
  maximum-likelihood fits (``reml=False``) with and without it: ``LR = 2 (llf_full - llf_reduced)``,
  chi-squared with df = the number of fixed-effect columns the factor adds.
- :func:`pairwise_t`: pairwise comparisons of versions on the runs' mean Dice across subjects (one value
  per run, so n = runs per version): Welch t-tests (``scipy.stats.ttest_ind(equal_var=False)``) or, with
  ``pooled=True``, t-tests with the SD pooled over all versions (R's ``pairwise.t.test`` default),
  p-values Holm-corrected over all pairs (``statsmodels multipletests(method="holm")``).

Disc-level comparison, on per-disc rows of ``discnet evaluate`` (or ``discnet agreement``, averaged over
reader pairs per disc): :func:`kruskal_test` across grades or levels (``scipy.stats.kruskal``), then
:func:`pairwise_wilcoxon`: two-sided Wilcoxon rank-sum tests (``scipy.stats.mannwhitneyu``; exact when
both groups have fewer than 50 values and there are no ties, else the normal approximation with
continuity correction, as R's ``wilcox.test``), Holm-corrected. Letters: :mod:`discnet.analysis.letters` (R's
``multcompView::multcompLetters`` by default, ``multcomp::cld`` with ``letters="cld"``).

Example:
    >>> runs = pd.DataFrame({"version": list("aaabbb"), "dsc": [0.90, 0.91, 0.92, 0.80, 0.82, 0.81]})
    >>> pairwise_t(runs, "version", "dsc", ["a", "b"])["p_holm"].round(4).tolist()
    [0.0003]

Over 300 lines because the paper's tests (Kruskal-Wallis, pairwise Wilcoxon/t with Holm, linear mixed
models) share one ``Analysis``/``Comparison`` model and its letters; split, each would re-declare it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from discnet.analysis.letters import METHODS, compact_letters
from discnet.analysis.runs import RESPONSES, has_response, run_means, score_name
from discnet.errors import InputError
from discnet.spine import GRADES, grade_name, natural_key, sorted_levels

ALPHA = 0.05
PAIRWISE = ["group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "test", "statistic", "df", "p", "p_holm"]
GROUPS = ["group", "n", "mean", "sd", "median", "letters"]


@dataclass
class Comparison:
    """One response compared across the groups of one factor: overall test, pairwise tests, letters."""

    analysis: str  # "versions", "discs" or "agreement"
    response: str
    by: str
    overall: pd.DataFrame  # LMM likelihood-ratio rows, or one Kruskal-Wallis row
    pairwise: pd.DataFrame
    groups: pd.DataFrame  # group, n, mean, sd, median, letters (display order)


@dataclass
class Analysis:
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    letters: str = "multcompView"  # the compact-letter algorithm (discnet.analysis.letters.METHODS)
    score: str = ""  # which epoch the runs' Dice are from (discnet.analysis.runs.score_name)


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values; NaN stays NaN and is left out of the correction.

    Example:
        >>> holm([0.01, 0.04, float("nan")]).round(3).tolist()
        [0.02, 0.04, nan]
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def _design(data: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    columns = {"Intercept": np.ones(len(data))}
    for factor in factors:
        levels = sorted(data[factor].unique(), key=natural_key)
        for level in levels[1:]:
            columns[f"{factor}[{level}]"] = (data[factor] == level).to_numpy(float)
    return pd.DataFrame(columns, index=data.index)


def _fit_ml(data: pd.DataFrame, exog: pd.DataFrame, response: str, group: str, notes: list[str]):
    """Maximum-likelihood fit; statsmodels' default optimisers first, Nelder-Mead and Powell when those
    fail to converge or give a non-finite likelihood (which happens at a zero random-intercept variance);
    the fit with the highest finite likelihood is kept."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    model = MixedLM(data[response].to_numpy(float), exog, groups=data[group].to_numpy())
    best = None
    for method in (None, "nm", "powell"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = model.fit(reml=False, method=method) if method else model.fit(reml=False)
            except (np.linalg.LinAlgError, ValueError):
                continue
        if np.isfinite(fit.llf) and (best is None or fit.llf > best.llf):
            best = fit
        if best is not None and best.converged:
            break
    if best is None:
        raise InputError(None, f"the mixed model of {response} could not be fitted", "check the runs' Dice values")
    if not best.converged:
        text = f"a mixed model fit ({', '.join(exog.columns)}) did not fully converge; its LR test is approximate"
        notes.append(text)
    return best


def lmm_lrt(
    data: pd.DataFrame, factors: Sequence[str], response: str = "dsc", group: str = "subject"
) -> tuple[pd.DataFrame, list[str]]:
    """Likelihood-ratio test of each fixed factor in ``response ~ factors + (1 | group)``.

    Returns rows ``factor, df, lr, p, n_obs, n_groups, group_sd, residual_sd`` (the last two: the full
    model's random-intercept and residual SD) and notes (skipped factors, fit warnings).
    """
    missing = [f for f in [*factors, response, group] if f not in data]
    if missing:
        raise InputError(None, f"no column(s) {', '.join(missing)} for the mixed model", "choose other --factors")
    data = data.dropna(subset=[*factors, response, group]).copy()
    for factor in factors:
        data[factor] = data[factor].astype(str)
    notes = []
    testable = [f for f in factors if data[f].nunique() > 1]
    notes += [f"factor {f} has a single level; not tested" for f in factors if f not in testable]
    columns = ["factor", "df", "lr", "p", "n_obs", "n_groups", "group_sd", "residual_sd"]
    if not testable or data[group].nunique() < 2:
        if testable:
            notes.append(f"mixed model needs at least two {group}s; not fitted")
        return pd.DataFrame(columns=columns), notes
    full = _design(data, testable)
    if np.linalg.matrix_rank(full.to_numpy()) < full.shape[1]:
        raise InputError(
            None,
            f"factors {', '.join(testable)} are confounded (some combination of levels is fully determined)",
            "test them separately (e.g. --factors version, or --factors params,input)",
        )
    full_fit = _fit_ml(data, full, response, group, notes)
    sds = [math.sqrt(max(float(full_fit.cov_re.iloc[0, 0]), 0.0)), math.sqrt(float(full_fit.scale))]
    rows = []
    for factor in testable:
        reduced = full[[c for c in full.columns if not c.startswith(f"{factor}[")]]
        reduced_fit = _fit_ml(data, reduced, response, group, notes)
        lr = max(2.0 * (full_fit.llf - reduced_fit.llf), 0.0)
        df = full.shape[1] - reduced.shape[1]
        rows.append([factor, df, lr, float(sps.chi2.sf(lr, df)), len(data), data[group].nunique(), *sds])
    return pd.DataFrame(rows, columns=columns), notes


def _groups(table: pd.DataFrame, by: str, response: str, order: Sequence) -> list[tuple[str, np.ndarray]]:
    data = table.dropna(subset=[by, response])
    values = {str(k): g[response].to_numpy(float) for k, g in data.groupby(data[by].astype(str), sort=False)}
    return [(str(g), values[str(g)]) for g in order if str(g) in values]


def _pair_row(a: str, b: str, x: np.ndarray, y: np.ndarray, test: str, stat: float, df: float, p: float) -> list:
    return [a, b, len(x), len(y), float(np.mean(x)), float(np.mean(y)), test, stat, df, p]


def pairwise_t(table: pd.DataFrame, by: str, response: str, order: Sequence, pooled: bool = False) -> pd.DataFrame:
    """Pairwise t-tests of ``response`` between the groups of ``by`` (Welch, or pooled SD), Holm-corrected."""
    groups = _groups(table, by, response, order)
    n_total, k = sum(len(v) for _, v in groups), len(groups)
    df_pooled = n_total - k
    ss = sum(float(((v - v.mean()) ** 2).sum()) for _, v in groups)
    rows = []
    for (a, x), (b, y) in combinations(groups, 2):
        if pooled:
            test = "t-test (pooled SD)"
            se = math.sqrt(ss / df_pooled * (1 / len(x) + 1 / len(y))) if df_pooled > 0 else math.nan
            diff = float(x.mean() - y.mean())
            stat = diff / se if se > 0 else (math.copysign(math.inf, diff) if diff else math.nan)
            p = float(2 * sps.t.sf(abs(stat), df_pooled)) if df_pooled > 0 and not math.isnan(stat) else math.nan
            rows.append(_pair_row(a, b, x, y, test, stat, float(df_pooled), p))
        elif len(x) < 2 or len(y) < 2 or (x.var() == 0 and y.var() == 0):
            rows.append(_pair_row(a, b, x, y, "Welch t-test", math.nan, math.nan, math.nan))
        else:
            res = sps.ttest_ind(x, y, equal_var=False)
            rows.append(_pair_row(a, b, x, y, "Welch t-test", float(res.statistic), float(res.df), float(res.pvalue)))
    out = pd.DataFrame(rows, columns=PAIRWISE[:-1])
    out["p_holm"] = holm(out["p"])
    return out


def rank_sum(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided Wilcoxon rank-sum test as R's ``wilcox.test``: (W = U of x, p).

    Example:
        >>> rank_sum([1, 2, 3], [4, 5, 6])
        (0.0, 0.1)
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ties = np.unique(np.concatenate([x, y])).size < x.size + y.size
    method = "exact" if x.size < 50 and y.size < 50 and not ties else "asymptotic"
    res = sps.mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=True)
    return float(res.statistic), float(res.pvalue)


def pairwise_wilcoxon(table: pd.DataFrame, by: str, response: str, order: Sequence) -> pd.DataFrame:
    """Pairwise two-sided Wilcoxon rank-sum tests of ``response`` between groups of ``by``, Holm-corrected."""
    rows = []
    for (a, x), (b, y) in combinations(_groups(table, by, response, order), 2):
        stat, p = rank_sum(x, y)
        rows.append(_pair_row(a, b, x, y, "Wilcoxon rank-sum", stat, math.nan, p))
    out = pd.DataFrame(rows, columns=PAIRWISE[:-1])
    out["p_holm"] = holm(out["p"])
    return out


def kruskal_test(table: pd.DataFrame, by: str, response: str, order: Sequence) -> pd.DataFrame:
    """One row: Kruskal-Wallis H, df, p and n of ``response`` across the groups of ``by``."""
    groups = [v for _, v in _groups(table, by, response, order)]
    n = sum(len(v) for v in groups)
    h = p = math.nan
    if len(groups) > 1 and np.unique(np.concatenate(groups)).size > 1:
        h, p = (float(v) for v in sps.kruskal(*groups))
    return pd.DataFrame([["Kruskal-Wallis", h, len(groups) - 1, p, n]], columns=["test", "statistic", "df", "p", "n"])


def group_table(
    table: pd.DataFrame,
    by: str,
    response: str,
    order: Sequence,
    pairwise: pd.DataFrame,
    alpha=ALPHA,
    letters=METHODS[0],
):
    """Per group (display order): n, mean, SD, median and the compact letters of ``pairwise``
    (``letters``: ``"multcompView"`` or ``"cld"``, which orders the groups by mean as R's ``cld``)."""
    groups = _groups(table, by, response, order)
    significant = pairwise.loc[pairwise["p_holm"] < alpha, ["group_a", "group_b"]].itertuples(index=False)
    means = [float(v.mean()) for _, v in groups]
    letters = compact_letters([g for g, _ in groups], [tuple(pair) for pair in significant], letters, means)
    rows = [
        [g, len(v), float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, float(np.median(v)), letters[g]]
        for g, v in groups
    ]
    return pd.DataFrame(rows, columns=GROUPS)


def disc_rows(table: pd.DataFrame, where, columns: Sequence[str] = ("dice",)) -> pd.DataFrame:
    """Per-disc rows (``level != "all"``) of an evaluate/agreement table, grades as roman numerals.

    Agreement tables (``reader_a`` column) are averaged over reader pairs per subject and level.
    """
    need = ["subject", "level", *columns[:1]]
    missing = [c for c in need if c not in table]
    if missing:
        raise InputError(where, f"has no column(s) {', '.join(missing)}", "give a discnet evaluate/agreement CSV")
    discs = table[table["level"].astype(str) != "all"].copy()
    discs["grade"] = [grade_name(g) for g in discs["grade"]] if "grade" in discs else None
    present = [c for c in columns if c in discs]
    for c in present:
        discs[c] = pd.to_numeric(discs[c], errors="coerce").replace([np.inf, -np.inf], np.nan)
    if "reader_a" in discs:
        discs = discs.groupby(["subject", "level"], as_index=False, sort=False).agg(
            {**{c: "mean" for c in present}, "grade": "first"}
        )
    if discs.empty:
        raise InputError(where, "has no per-disc rows", "give the per-level table written by discnet")
    return discs[["subject", "level", "grade", *present]].reset_index(drop=True)


def disc_comparisons(
    discs: pd.DataFrame, analysis: str, metrics: Sequence[str], alpha=ALPHA, letters=METHODS[0]
) -> Analysis:
    """Kruskal-Wallis + pairwise Wilcoxon + letters of each metric by level and by grade."""
    result = Analysis(letters=letters)
    orders = {"level": sorted_levels(discs["level"].dropna().unique())}
    grades = {g for g in discs["grade"] if g}
    if grades:
        orders["grade"] = [g for g in GRADES if g in grades]
    else:
        result.notes.append(f"{analysis}: no disc grades known; comparison by grade skipped")
    for metric in metrics:
        if metric not in discs or discs[metric].isna().all():
            continue
        for by, order in orders.items():
            pairs = pairwise_wilcoxon(discs, by, metric, order)
            groups = group_table(discs, by, metric, order, pairs, alpha, letters)
            result.comparisons.append(
                Comparison(analysis, metric, by, kruskal_test(discs, by, metric, order), pairs, groups)
            )
    return result


def version_comparisons(
    long: pd.DataFrame, factors: Sequence[str], pooled=False, alpha=ALPHA, letters=METHODS[0]
) -> Analysis:
    """Per response (Dice, and orphan-removed Dice when present): LMM tests and pairwise version tests."""
    result = Analysis(letters=letters)
    order = sorted(long["version"].dropna().astype(str).unique(), key=natural_key)
    for response in (r for r in RESPONSES if has_response(long, r)):
        lmm, notes = lmm_lrt(long, factors, response)
        result.notes += [f"{response}: {note}" for note in notes]
        runs = run_means(long, response)
        pairs = pairwise_t(runs, "version", response, order, pooled)
        if pairs["p"].isna().any() and not pooled:
            result.notes.append(f"{response}: versions with fewer than 2 runs (or constant Dice) are not tested")
        groups = group_table(runs, "version", response, order, pairs, alpha, letters)
        result.comparisons.append(Comparison("versions", response, "version", lmm, pairs, groups))
    return result


def analyse(
    long: pd.DataFrame | None = None,
    factors: Sequence[str] = ("version",),
    metrics: pd.DataFrame | None = None,
    agreement: pd.DataFrame | None = None,
    pooled: bool = False,
    alpha: float = ALPHA,
    letters: str = METHODS[0],
) -> Analysis:
    """All comparisons the inputs allow: versions (runs), discs (evaluate) and inter-reader agreement."""
    parts = []
    if long is not None:
        parts.append(version_comparisons(long, factors, pooled, alpha, letters))
    if metrics is not None:
        parts.append(disc_comparisons(metrics, "discs", ("dice", "volume_ratio"), alpha, letters))
    if agreement is not None:
        parts.append(disc_comparisons(agreement, "agreement", ("dice",), alpha, letters))
    score = score_name(long) if long is not None else ""
    return Analysis([c for p in parts for c in p.comparisons], [n for p in parts for n in p.notes], letters, score)
