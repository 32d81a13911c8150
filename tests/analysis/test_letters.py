"""Compact letters against known outputs of R's multcompView::multcompLetters and multcomp::cld.

Known outputs: multcompView's documented examples (its help page, rendered with R: the logical vector,
the p-value vector and the 43-judge ``dist(USJudgeRatings)`` display, data in
``fixtures/letters/us_judge_ratings.csv``), and cases worked by hand step by step through each R
function (multcompLetters' insert/absorb/sortCols; cld's insert_absorb with sweepLetters).
"""

from __future__ import annotations

import csv
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from discnet.analysis.letters import check_letters, compact_letters, letter_name, split_letters
from discnet.cli import main
from tests.analysis.test_runs import write_sweep
from tests.paths import FIXTURES

JUDGES = FIXTURES / "letters" / "us_judge_ratings.csv"
TWO_PAIRS = [("A", "B"), ("C", "D")]  # five groups A-E, only A-B and C-D significant


def test_multcompview_documented_examples():
    # multcompLetters(c("A-B" = FALSE, "A-C" = FALSE, "B-C" = TRUE)) -> "ab" "a" "b"
    assert compact_letters(list("ABC"), [("B", "C")]) == {"A": "ab", "B": "a", "C": "b"}
    # multcompLetters(c("a-b" = .01, "a-c" = .02, "b-d" = .03, "a-d" = 1)) -> "a" "b" "bc" "ac"
    assert compact_letters(list("abcd"), [("a", "b"), ("a", "c"), ("b", "d")]) == {
        "a": "a",
        "b": "b",
        "c": "bc",
        "d": "ac",
    }


def _judge_distance(a: list[float], b: list[float]) -> float:
    total = 0.0
    for x, y in zip(a, b, strict=True):  # summed in order, as R's dist()
        total += (x - y) * (x - y)
    return math.sqrt(total)


def test_multcompview_us_judge_ratings():
    """multcompLetters(dist(USJudgeRatings), compare = ">", threshold = median(dist)): R's 43 displays."""
    with JUDGES.open(newline="") as f:
        rows = list(csv.DictReader(f))
    names = [r["judge"] for r in rows]
    ratings = [[float(v) for k, v in r.items() if k not in ("judge", "multcompLetters")] for r in rows]
    distances = {(i, j): _judge_distance(ratings[i], ratings[j]) for i, j in itertools.combinations(range(43), 2)}
    median = sorted(distances.values())[len(distances) // 2]
    pairs = [(names[i], names[j]) for (i, j), d in distances.items() if d > median]
    assert compact_letters(names, pairs) == {r["judge"]: r["multcompLetters"] for r in rows}


def test_multcompview_does_not_sweep():
    """Issue example: E keeps all four letters in multcompView (hand-worked insert/absorb/sortCols)."""
    letters = compact_letters(list("ABCDE"), TWO_PAIRS)
    assert letters == {"A": "ab", "B": "cd", "C": "ac", "D": "bd", "E": "abcd"}


def test_cld_sweeps_redundant_letters():
    """multcomp::cld (hand-worked through insert_absorb and sweepLetters): E keeps two letters."""
    letters = compact_letters(list("ABCDE"), TWO_PAIRS, method="cld")
    assert letters == {"A": "ab", "B": "cd", "C": "ad", "D": "bc", "E": "bd"}


def test_cld_orders_groups_by_mean():
    """cld puts the groups in order of their mean before sweeping and naming (here reversed)."""
    letters = compact_letters(list("ABCDE"), TWO_PAIRS, method="cld", means=[5, 4, 3, 2, 1])
    assert letters == {"A": "bd", "B": "ac", "C": "ad", "D": "bc", "E": "ab"}
    # multcompView ignores the means
    assert compact_letters(list("ABCDE"), TWO_PAIRS, means=[5, 4, 3, 2, 1])["E"] == "abcd"


@pytest.mark.parametrize("method", ["multcompView", "cld"])
def test_letters_simple_cases(method):
    assert compact_letters(list("ABCD"), [], method) == dict.fromkeys("ABCD", "a")
    assert compact_letters(list("ABC"), [("A", "C")], method) == {"A": "a", "B": "ab", "C": "b"}
    chain = compact_letters(list("ABCD"), [("A", "C"), ("A", "D"), ("B", "D")], method)
    assert chain == {"A": "a", "B": "ab", "C": "bc", "D": "c"}
    pairs = [("A", "C"), ("A", "D"), ("B", "C"), ("B", "D")]
    assert compact_letters(list("ABCD"), pairs, method) == {"A": "a", "B": "a", "C": "b", "D": "b"}
    assert compact_letters(["C", "A"], [("A", "C")], method) == {"C": "a", "A": "b"}
    with pytest.raises(ValueError):
        compact_letters(["A"], [("A", "Z")], method)


def test_letter_names_past_52_use_leading_dots_as_r():
    assert [letter_name(i) for i in (0, 25, 26, 51, 52, 104)] == ["a", "z", "A", "Z", ".a", "..a"]
    assert split_letters("ab.c..d") == {"a", "b", ".c", "..d"}
    with pytest.raises(ValueError, match="letters method"):
        compact_letters(["A"], [], method="sweep")


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.booleans(), min_size=28, max_size=28))),
    st.sampled_from(["multcompView", "cld"]),
)
def test_letters_are_always_a_valid_display(case, method):
    n, flags = case
    groups = [f"g{i}" for i in range(n)]
    pairs = [p for p, flag in zip(itertools.combinations(groups, 2), flags, strict=False) if flag]
    letters = compact_letters(groups, pairs, method, means=[(7 * i) % 5 for i in range(n)])
    assert check_letters(letters, pairs) and all(letters.values())


def test_stats_cli_letters_option(tmp_path, capsys):
    sweep = write_sweep(tmp_path, {"v1": 0.90, "v2": 0.80, "v3": 0.85})
    assert main(["stats", str(sweep), "--letters", "cld", "--out-dir", str(tmp_path / "out")]) == 0
    assert "multcomp::cld" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main(["stats", str(sweep), "--letters", "nope"])
    assert refused.value.code == 2
