"""The paper's statistics against statsmodels/scipy computed directly, and ``discnet stats`` (letters:
``test_letters.py``)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from discnet.analysis.stats import (
    disc_comparisons,
    disc_rows,
    holm,
    kruskal_test,
    lmm_lrt,
    pairwise_t,
    pairwise_wilcoxon,
    rank_sum,
)
from discnet.cli import main
from discnet.errors import InputError
from tests.analysis.test_runs import write_sweep

# ---- model comparison -------------------------------------------------------------------------------


def runs_table(seed=0) -> pd.DataFrame:
    """Round-1-like long table: params x input, 3 runs each, 6 subjects with their own offsets."""
    rng = np.random.default_rng(seed)
    subject_effect = rng.normal(0, 0.03, 6)
    rows = []
    for version, params, input_ in [("m1", 1.0, "raw"), ("m2", 1.0, "str"), ("m3", 0.5, "raw"), ("m4", 0.5, "str")]:
        for seed_ in range(3):
            for s, effect in enumerate(subject_effect):
                dsc = 0.85 + (0.04 if input_ == "str" else 0) + effect + rng.normal(0, 0.01)
                rows.append(
                    {
                        "version": version,
                        "params": params,
                        "input": input_,
                        "seed": seed_,
                        "subject": f"s{s}",
                        "dsc": dsc,
                    }
                )
    return pd.DataFrame(rows)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_lmm_lrt_matches_statsmodels_formula_fits():
    import statsmodels.formula.api as smf

    data = runs_table()
    table, notes = lmm_lrt(data, ["params", "input"])
    d = data.assign(P=data["params"].astype(str), I=data["input"])

    def llf(formula: str) -> float:
        return smf.mixedlm(formula, d, groups=d["subject"]).fit(reml=False).llf

    full = llf("dsc ~ C(P) + C(I)")
    expected = {"params": 2 * (full - llf("dsc ~ C(I)")), "input": 2 * (full - llf("dsc ~ C(P)"))}
    rows = table.set_index("factor")
    for factor, lr in expected.items():
        assert rows.loc[factor, "lr"] == pytest.approx(lr, abs=1e-4)
        assert rows.loc[factor, "df"] == 1
        assert rows.loc[factor, "p"] == pytest.approx(sps.chi2.sf(lr, 1), rel=1e-3, abs=1e-12)
    assert rows.loc["input", "p"] < 1e-6 < rows.loc["params", "p"]
    assert rows.loc["input", "n_obs"] == 72 and rows.loc["input", "n_groups"] == 6
    assert rows.loc["input", "group_sd"] > 0.01


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_lmm_lrt_single_factor_against_intercept_only():
    import statsmodels.formula.api as smf

    data = runs_table(1)
    table, _ = lmm_lrt(data, ["version"])
    fit = lambda f: smf.mixedlm(f, data, groups=data["subject"]).fit(reml=False).llf  # noqa: E731
    assert table["df"].item() == 3
    assert table["lr"].item() == pytest.approx(2 * (fit("dsc ~ C(version)") - fit("dsc ~ 1")), abs=1e-4)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_lmm_lrt_falls_back_to_nelder_mead_when_the_default_optimiser_fails(monkeypatch):
    import statsmodels.formula.api as smf
    from statsmodels.regression.mixed_linear_model import MixedLM

    rng = np.random.default_rng(5)
    rows = [
        {"version": v, "subject": f"s{s}", "dsc": m + rng.normal(0, 0.1 if v == "c" else 0.01)}
        for v, m in [("a", 0.9), ("b", 0.88), ("c", 0.5)]
        for _ in range(3)
        for s in range(4)
    ]
    data = pd.DataFrame(rows)
    original = MixedLM.fit

    def default_fails(model, *args, method=None, **kwargs):
        """The default optimiser fails as statsmodels' does on some CPUs (a singular Hessian); whether it
        fails on its own with these data varies by machine, so the failure is made certain."""
        if method is None:
            raise np.linalg.LinAlgError("Singular matrix")
        return original(model, *args, method=method, **kwargs)

    monkeypatch.setattr(MixedLM, "fit", default_fails)
    table, notes = lmm_lrt(data, ["version"])
    monkeypatch.undo()
    fit = lambda f: smf.mixedlm(f, data, groups=data["subject"]).fit(reml=False, method="nm").llf  # noqa: E731
    assert table["lr"].item() == pytest.approx(2 * (fit("dsc ~ C(version)") - fit("dsc ~ 1")), abs=1e-3)
    assert not notes


def test_lmm_lrt_confounded_and_single_level_factors():
    data = runs_table()
    with pytest.raises(InputError, match="confounded"):
        lmm_lrt(data, ["version", "input"])
    table, notes = lmm_lrt(data.assign(round=1), ["round"])
    assert table.empty and "single level" in notes[0]


def test_pairwise_t_welch_and_pooled_against_scipy():
    runs = pd.DataFrame(
        {"version": list("aaaabbbbccc"), "dsc": [0.90, 0.91, 0.93, 0.92, 0.80, 0.85, 0.83, 0.86, 0.9, 0.7, 0.8]}
    )
    groups = {v: g["dsc"].to_numpy() for v, g in runs.groupby("version")}
    welch = pairwise_t(runs, "version", "dsc", ["a", "b", "c"])
    assert welch[["group_a", "group_b"]].values.tolist() == [["a", "b"], ["a", "c"], ["b", "c"]]
    raw = [sps.ttest_ind(groups[a], groups[b], equal_var=False).pvalue for a, b in [("a", "b"), ("a", "c"), ("b", "c")]]
    assert welch["p"].to_numpy() == pytest.approx(raw)
    assert welch["p_holm"].to_numpy() == pytest.approx(multipletests(raw, method="holm")[1])
    pooled = pairwise_t(runs, "version", "dsc", ["a", "b", "c"], pooled=True)
    ss = sum(((v - v.mean()) ** 2).sum() for v in groups.values())
    s2, df = ss / (11 - 3), 11 - 3
    t = (groups["a"].mean() - groups["c"].mean()) / np.sqrt(s2 * (1 / 4 + 1 / 3))
    assert pooled.loc[1, "statistic"] == pytest.approx(t) and pooled.loc[1, "df"] == df
    assert pooled.loc[1, "p"] == pytest.approx(2 * sps.t.sf(abs(t), df))
    two = runs[runs["version"] != "c"]
    student = sps.ttest_ind(groups["a"], groups["b"], equal_var=True).pvalue
    assert pairwise_t(two, "version", "dsc", ["a", "b"], pooled=True)["p"].item() == pytest.approx(student)


def test_pairwise_t_single_run_is_not_tested():
    runs = pd.DataFrame({"version": ["a", "a", "b"], "dsc": [0.9, 0.91, 0.5]})
    assert np.isnan(pairwise_t(runs, "version", "dsc", ["a", "b"])["p_holm"].item())


def test_holm_leaves_nan_out():
    assert holm([0.01, np.nan, 0.04, 0.03]) == pytest.approx([0.03, np.nan, 0.06, 0.06], nan_ok=True)


# ---- disc level -------------------------------------------------------------------------------------


def test_rank_sum_exact_as_r_and_asymptotic_with_ties():
    assert rank_sum([1, 2, 3], [4, 5, 6]) == (0.0, pytest.approx(0.1))  # R: W = 0, p-value = 0.1
    x, y = [1, 2, 2, 3, 5], [2, 4, 6, 7, 8]
    expected = sps.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert rank_sum(x, y) == (expected.statistic, pytest.approx(expected.pvalue))


def disc_table() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for s in range(12):
        for level in ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]:
            grade = int(rng.integers(1, 6))
            dice = 0.92 - (0.25 if grade == 5 else 0.0) + rng.normal(0, 0.02)
            rows.append(
                {
                    "subject": f"s{s}",
                    "level": level,
                    "dice": dice,
                    "volume_ratio": 1 + rng.normal(0, 0.05),
                    "grade": grade,
                }
            )
        rows.append({"subject": f"s{s}", "level": "all", "dice": 0.9, "volume_ratio": 1.0, "grade": None})
    return pd.DataFrame(rows)


def test_kruskal_and_pairwise_wilcoxon_against_scipy():
    discs = disc_rows(disc_table(), "metrics.csv", ("dice", "volume_ratio"))
    assert len(discs) == 60 and set(discs["grade"]) <= {"I", "II", "III", "IV", "V"}
    order = ["I", "II", "III", "IV", "V"]
    groups = [discs.loc[discs["grade"] == g, "dice"].to_numpy() for g in order]
    kw = kruskal_test(discs, "grade", "dice", order).iloc[0]
    assert kw["statistic"] == pytest.approx(sps.kruskal(*groups).statistic) and kw["df"] == 4 and kw["n"] == 60
    pairs = pairwise_wilcoxon(discs, "grade", "dice", order)
    # no ties and fewer than 50 values per group: exact p-values, as R's wilcox.test
    exact = [sps.mannwhitneyu(a, b, method="exact") for a, b in itertools.combinations(groups, 2)]
    raw = [r.pvalue for r in exact]
    assert pairs["statistic"].tolist() == [r.statistic for r in exact]
    assert pairs["p"].to_numpy() == pytest.approx(raw)
    assert pairs["p_holm"].to_numpy() == pytest.approx(multipletests(raw, method="holm")[1])


def test_disc_comparisons_letters_single_out_grade_v():
    discs = disc_rows(disc_table(), "metrics.csv", ("dice", "volume_ratio"))
    result = disc_comparisons(discs, "discs", ("dice", "volume_ratio"))
    assert [(c.response, c.by) for c in result.comparisons] == [
        ("dice", "level"),
        ("dice", "grade"),
        ("volume_ratio", "level"),
        ("volume_ratio", "grade"),
    ]
    by_grade = result.comparisons[1].groups.set_index("group")["letters"]
    assert set(by_grade.drop("V")) == {"a"} and "a" not in by_grade["V"]
    assert result.comparisons[0].groups["group"].tolist() == ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"]


def test_disc_rows_average_reader_pairs_and_roman_grades():
    agreement = pd.DataFrame(
        {
            "reader_a": ["A", "A", "B", "A"],
            "reader_b": ["B", "C", "C", "B"],
            "subject": ["s1", "s1", "s1", "s1"],
            "level": ["L4-L5", "L4-L5", "L4-L5", "all"],
            "dice": [0.9, 0.8, 0.7, 0.85],
            "grade": ["IV", "IV", "IV", None],
        }
    )
    discs = disc_rows(agreement, "agreement.csv")
    assert discs.to_dict("records") == [{"subject": "s1", "level": "L4-L5", "grade": "IV", "dice": pytest.approx(0.8)}]
    with pytest.raises(InputError, match="no column"):
        disc_rows(pd.DataFrame({"subject": ["s"]}), "x.csv")


# ---- discnet stats ----------------------------------------------------------------------------------


def test_stats_cli_writes_markdown_and_tables(tmp_path, capsys):
    sweep = write_sweep(
        tmp_path / "sweep", {"v1": 0.80, "v2": 0.90, "v3": 0.905}, orphan_gain=dict.fromkeys(["v1", "v2", "v3"], 0.01)
    )
    metrics = tmp_path / "metrics.csv"
    disc_table().to_csv(metrics, index=False)
    out = tmp_path / "stats"
    assert main(["stats", str(sweep), "--metrics", str(metrics), "--out-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "# discnet statistics" in text and "Linear mixed model" in text
    lmm = pd.read_csv(out / "lmm.csv")
    assert lmm.columns.tolist()[:8] == ["analysis", "response", "by", "score", "factor", "df", "lr", "p"]
    assert set(lmm["score"]) == {"last epoch"}
    assert lmm["response"].tolist() == ["dsc", "dsc_orphan_removed"] and (lmm["df"] == 2).all()
    letters = pd.read_csv(out / "letters.csv")
    versions = letters[(letters["analysis"] == "versions") & (letters["response"] == "dsc")].set_index("group")
    assert versions.loc["v1", "letters"] != versions.loc["v2", "letters"]
    pairwise = pd.read_csv(out / "pairwise.csv")
    assert {"group_a", "group_b", "p", "p_holm", "significant", "test"} <= set(pairwise.columns)
    assert set(pd.read_csv(out / "kruskal.csv")["by"]) == {"level", "grade"}
    md = (out / "stats.md").read_text()
    assert "Welch t-tests" in md and "Kruskal-Wallis across grades" in md and "| v1 |" in md


def test_stats_cli_errors(tmp_path, capsys):
    table = tmp_path / "runs.csv"
    table.write_text("version,seed,subject,dsc\nv1,0,s1,0.9\nv1,0,s2,0.8\nv2,0,s1,0.95\nv2,0,s2,0.9\n")
    assert main(["stats"]) == 2
    assert "nothing to analyse" in capsys.readouterr().err
    assert main(["stats", "--table", str(table), "--factors", "params,input"]) == 2
    assert "no factor params, input" in capsys.readouterr().err
    assert main(["stats", "--table", str(table), "--pooled-sd"]) == 0
    assert "pooled over all versions" in capsys.readouterr().out
