"""Empty-mask conventions and Dice agree across :mod:`discnet.evaluation.metrics`, :mod:`discnet.evaluation.evaluate` and
:mod:`discnet.evaluation.agreement` (issue 8, part 4).

The single-module properties (Dice symmetric, in [0, 1], 1 exactly for equal masks; volume ratio =
recall / precision; orphan removal idempotent and never adding voxels; resize-back keeping the grid) are
in tests/evaluation/test_metrics.py, tests/postprocess/test_orphans.py and tests/data/test_slices.py. The conventions are documented
in README.md ("Evaluation and measurement") and in the :mod:`discnet.evaluation.metrics` docstring.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from discnet.evaluation.agreement import agreement_rows
from discnet.evaluation.evaluate import evaluate_pair
from discnet.evaluation.metrics import (
    dice,
    overlap_table,
    precision,
    recall,
    scores_from_counts,
    volume_ratio,
    whole_scores,
)
from discnet.io import Volume

LEVELS = {1: "L5-S1", 2: "L4-L5"}
NAN = math.nan
SHAPE = (2, 3, 4)
ONE = np.zeros(SHAPE, np.uint8)
ONE[0, 1, 1:3] = 1

#: (prediction, truth) -> expected dice, precision, recall, volume ratio (the documented conventions).
CONVENTIONS = {
    "both empty": ((np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)), (1.0, NAN, NAN, NAN)),
    "prediction empty": ((np.zeros(SHAPE, np.uint8), ONE), (0.0, NAN, 0.0, 0.0)),
    "truth empty": ((ONE, np.zeros(SHAPE, np.uint8)), (0.0, 0.0, NAN, NAN)),
}


def same(values, expected) -> bool:
    return all((math.isnan(e) and math.isnan(v)) or v == e for v, e in zip(values, expected, strict=True))


@pytest.mark.parametrize("case", list(CONVENTIONS))
def test_empty_mask_conventions_are_the_same_everywhere(case):
    (pred, truth), expected = CONVENTIONS[case]
    keys = ("dice", "precision", "recall", "volume_ratio")
    functions = (dice(pred, truth), precision(pred, truth), recall(pred, truth), volume_ratio(pred, truth))
    assert same(functions, expected), "metrics functions"
    p, t = pred > 0, truth > 0
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    assert same([scores_from_counts(tp, fp, fn)[k] for k in keys], expected), "scores_from_counts"
    assert same([whole_scores(pred, truth, 1.0)[k] for k in keys], expected), "whole_scores"
    evaluated = evaluate_pair(Volume(pred, np.eye(4)), Volume(truth, np.eye(4)), LEVELS)[0]
    assert evaluated["level"] == "all" and same([evaluated[k] for k in keys], expected), "evaluate"
    reader = agreement_rows(pred, truth, LEVELS)[0]
    assert reader["level"] == "all" and same([reader["dice"]], expected[:1]), "agreement"
    if truth.any():  # a level the prediction missed: a per-level row with the same conventions
        row = overlap_table(pred, truth, (1, 1, 1), LEVELS)[0]
        assert same([row[k] for k in keys], expected), "overlap_table"


def test_a_level_neither_side_labels_gets_no_row():
    """evaluate drops levels absent from the truth and agreement levels absent from both readers."""
    assert [r["level"] for r in evaluate_pair(Volume(ONE, np.eye(4)), Volume(ONE, np.eye(4)), LEVELS)] == [
        "all",
        "L5-S1",
    ]
    assert [r["level"] for r in agreement_rows(ONE, ONE, LEVELS)] == ["all", "L5-S1"]


@st.composite
def label_pairs(draw):
    shape = draw(hnp.array_shapes(min_dims=3, max_dims=3, max_side=4))
    labels = st.integers(0, 2)
    return draw(hnp.arrays(np.uint8, shape, elements=labels)), draw(hnp.arrays(np.uint8, shape, elements=labels))


@settings(deadline=None, max_examples=60)
@given(label_pairs())
def test_dice_of_all_discs_is_the_same_in_every_module(pair):
    a, b = pair
    expected = dice(a > 0, b > 0)
    assert evaluate_pair(Volume(a, np.eye(4)), Volume(b, np.eye(4)), LEVELS)[0]["dice"] == expected
    rows_ab, rows_ba = agreement_rows(a, b, LEVELS), agreement_rows(b, a, LEVELS)
    assert rows_ab[0]["dice"] == expected
    assert [(r["level"], r["dice"]) for r in rows_ab] == [(r["level"], r["dice"]) for r in rows_ba]
    for row in rows_ab[1:]:
        assert row["dice"] == dice(a == row["label"], b == row["label"])
        assert 0.0 <= row["dice"] <= 1.0
