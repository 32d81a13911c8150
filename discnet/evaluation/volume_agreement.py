"""Agreement of disc volumes between two measurements (prediction vs manual, reader vs reader, session vs
session): intraclass correlation, Bland-Altman, absolute and relative error, within-subject CV.

The two tables are paired on subject (as :func:`discnet.evaluation.evaluate.subject_key` names it, so ``sub11_T2w``
is ``sub11``), level and session. For each level and for all discs together (``level = "all"``; the
targets are then subject-level pairs):

- ``icc21`` / ``icc31`` with 95% CIs: ICC(2,1) (two-way random effects, absolute agreement, single
  measurement; pingouin's ``ICC(A,1)``) and ICC(3,1) (two-way mixed, consistency; ``ICC(C,1)``), Shrout
  and Fleiss 1979, computed by pingouin (its CIs come rounded to 2 decimals);
- ``bias_mm3``, ``sd_diff_mm3``, ``loa_low_mm3``, ``loa_high_mm3``: Bland-Altman mean difference A - B
  and its 95% limits of agreement, bias -/+ 1.96 SD of the differences;
- ``mae_mm3``: mean |A - B|; ``mean_relative_error``: mean |A - B| / B (B is the reference);
- ``wcv``: within-subject coefficient of variation, root mean square of each pair's SD / mean
  (:func:`within_subject_cv`; test-retest precision when A and B are two sessions).

Example:
    >>> a = pd.DataFrame({"subject": ["s1", "s2", "s3"], "level": "L5-S1", "volume_mm3": [10.0, 20.0, 30.0]})
    >>> b = a.assign(volume_mm3=[11.0, 19.0, 33.0])
    >>> row = agreement_stats(paired_volumes(a, b)).iloc[-1].to_dict()
    >>> row["level"], row["n"], row["bias_mm3"], round(row["mae_mm3"], 3)
    ('L5-S1', 3, -1.0, 1.667)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from discnet.errors import InputError
from discnet.spine import LEVELS, level_sort_key

KEYS = ["subject", "session", "level"]
STATS = ["n", "mean_a_mm3", "mean_b_mm3", "icc21", "icc21_low", "icc21_high", "icc31", "icc31_low", "icc31_high"]
STATS += ["bias_mm3", "sd_diff_mm3", "loa_low_mm3", "loa_high_mm3", "mae_mm3", "mean_relative_error", "wcv"]
#: pingouin's names of the two ICC forms (new and old spellings).
_ICC_TYPES = {"icc21": ("ICC(A,1)", "ICC2"), "icc31": ("ICC(C,1)", "ICC3")}


def read_volume_table(path: str | Path) -> pd.DataFrame:
    """Disc volumes (columns :data:`KEYS` + ``volume_mm3``) of a table.

    Long: ``subject``, ``level`` and ``volume_mm3`` or ``volume_cm3`` (``discnet volumes``/``predict``
    output), ``session`` optional (1). Wide: ``subject`` and one column per level name, in cm^3 (as
    ``../shared/data/ivd-volumes/reference_volumes_cm3.csv``).
    """
    from discnet.evaluation.evaluate import subject_key

    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"subject": str})
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot be read as a CSV table ({err})", "give a volume table") from err
    if "subject" not in table.columns:
        raise InputError(path, "has no 'subject' column", "give discnet volumes output or subject + level columns")
    if "level" in table.columns and {"volume_mm3", "volume_cm3"} & set(table.columns):
        mm3 = table["volume_mm3"] if "volume_mm3" in table.columns else table["volume_cm3"] * 1000.0
        long = pd.DataFrame({"subject": table["subject"], "level": table["level"].astype(str), "volume_mm3": mm3})
        long["session"] = table["session"] if "session" in table.columns else 1
    else:
        levels = [level for level in LEVELS if level in table.columns]
        if not levels:
            raise InputError(
                path, "has neither level,volume_mm3 columns nor one column per level", "give a volume table"
            )
        long = table[["subject", *levels]].melt(id_vars="subject", var_name="level", value_name="volume_mm3")
        long["volume_mm3"] = pd.to_numeric(long["volume_mm3"], errors="coerce") * 1000.0
        long["session"] = 1
    long["volume_mm3"] = pd.to_numeric(long["volume_mm3"], errors="coerce")
    long["session"] = pd.to_numeric(long["session"], errors="coerce").fillna(1).astype(int)
    long["subject"] = long["subject"].astype(str).map(subject_key)
    long = long.dropna(subset=["volume_mm3"])
    if long.duplicated(KEYS).any():
        first = long[long.duplicated(KEYS)].iloc[0]
        raise InputError(path, f"gives subject {first['subject']} level {first['level']} twice", "keep one row each")
    return long[[*KEYS, "volume_mm3"]].reset_index(drop=True)


def paired_volumes(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Rows of two volume tables measured on the same subject, session and level: :data:`KEYS`, ``a``, ``b``."""
    a, b = (t.assign(session=t["session"] if "session" in t.columns else 1) for t in (a, b))
    pairs = a.merge(b, on=KEYS, suffixes=("_a", "_b"))
    pairs = pairs.rename(columns={"volume_mm3_a": "a", "volume_mm3_b": "b"})
    return pairs[[*KEYS, "a", "b"]]


def session_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Pairs of each subject's first two sessions (A = first, B = second) in one volume table.

    Example:
        >>> t = pd.DataFrame({"subject": "s", "level": "L5-S1", "session": [1, 2], "volume_mm3": [5.0, 6.0]})
        >>> session_pairs(t)[["a", "b"]].values.tolist()
        [[5.0, 6.0]]
    """
    rank = table.groupby(["subject", "level"])["session"].rank(method="dense")
    first, second = table[rank == 1], table[rank == 2]
    pairs = first.merge(second, on=["subject", "level"], suffixes=("_a", "_b"))
    pairs = pairs.rename(columns={"volume_mm3_a": "a", "volume_mm3_b": "b", "session_a": "session"})
    return pairs[[*KEYS, "a", "b"]]


def icc(values: np.ndarray) -> dict[str, float]:
    """ICC(2,1) and ICC(3,1) with 95% CIs of an (n targets, k raters) array, by pingouin.

    NaN when there are fewer than 3 targets or no variation.

    Example:
        >>> sf = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
        >>> {k: round(v, 2) for k, v in icc(sf).items() if k in ("icc21", "icc31")}  # Shrout & Fleiss 1979
        {'icc21': 0.29, 'icc31': 0.71}
    """
    values = np.asarray(values, float)
    out = {f"{name}{part}": float("nan") for name in _ICC_TYPES for part in ("", "_low", "_high")}
    if values.shape[0] < 3 or np.ptp(values) == 0:
        return out
    import pingouin

    n, k = values.shape
    long = pd.DataFrame({"target": np.repeat(np.arange(n), k), "rater": np.tile(np.arange(k), n)})
    long["value"] = values.ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="value")
    ci = next(c for c in table.columns if c.startswith("CI95"))
    for name, spellings in _ICC_TYPES.items():
        row = table[table["Type"].isin(spellings)].iloc[0]
        out[name] = float(row["ICC"])
        out[f"{name}_low"], out[f"{name}_high"] = (float(v) for v in row[ci])
    return out


def within_subject_cv(values: np.ndarray) -> float:
    """Root mean square of each row's SD / mean (rows: subjects, columns: repeated measurements).

    Example:
        >>> round(within_subject_cv(np.array([[9.0, 11.0], [18.0, 22.0]])), 4)
        0.1414
    """
    values = np.asarray(values, float)
    means = values.mean(axis=1)
    keep = means > 0
    if not keep.any() or values.shape[1] < 2:
        return float("nan")
    cv = values[keep].std(axis=1, ddof=1) / means[keep]
    return float(np.sqrt(np.mean(cv**2)))


def _stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = a - b
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
    bias = float(diff.mean())
    out = {"n": len(a), "mean_a_mm3": float(a.mean()), "mean_b_mm3": float(b.mean())}
    out |= icc(np.column_stack([a, b]))
    out |= {"bias_mm3": bias, "sd_diff_mm3": sd, "loa_low_mm3": bias - 1.96 * sd, "loa_high_mm3": bias + 1.96 * sd}
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.abs(diff) / b
    out |= {"mae_mm3": float(np.abs(diff).mean()), "mean_relative_error": float(np.mean(relative))}
    out["wcv"] = within_subject_cv(np.column_stack([a, b]))
    return out


def agreement_stats(pairs: pd.DataFrame) -> pd.DataFrame:
    """:data:`STATS` for all discs (``level = "all"``) and each level (superior to inferior) of paired volumes."""
    levels = sorted(pd.unique(pairs["level"]), key=lambda name: level_sort_key(str(name)))
    rows = []
    for level in ["all", *levels]:
        part = pairs if level == "all" else pairs[pairs["level"] == level]
        if len(part):
            rows.append({"level": level} | _stats(part["a"].to_numpy(float), part["b"].to_numpy(float)))
    return pd.DataFrame(rows, columns=["level", *STATS])
