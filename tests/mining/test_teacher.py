"""Teacher-scored mining for cross-encoders: each false-negative filter by hand, teacher runs and models as teachers."""

import numpy as np
import pytest

from hf_rerank.data.collection import IRCollection
from hf_rerank.mining.teacher import (
    NegativeFilters,
    dense_candidates,
    filter_with_teacher,
    mine_with_teacher,
    select_negatives,
    union_candidates,
)
from tests.mining.test_dense import ranked_collection

# One query's teacher scores. Teacher ranks: p1 1, n1 2, j1 3, n2 4, n3 5, n4 6, n5 7.
# p1 (grade 2) is the reference positive; j1 (grade 1) is another judged positive.
SCORES = {"n1": 1.75, "p1": 2.0, "n2": 1.5, "j1": 1.6, "n3": 1.0, "n4": 0.5, "n5": -0.5}
REFERENCE = ("p1", 2.0)


def decide(**filters):
    return select_negatives(SCORES, judged={"p1", "j1"}, positive=REFERENCE, filters=NegativeFilters(**filters))


def test_without_filters_every_candidate_but_the_reference_positive_is_a_negative():
    decided = decide(exclude_judged=False)
    assert decided == dict.fromkeys(["n1", "j1", "n2", "n3", "n4", "n5"])
    assert list(decided) == ["n1", "j1", "n2", "n3", "n4", "n5"]  # teacher order


def test_each_filter_by_hand():
    keep = dict.fromkeys(["n1", "j1", "n2", "n3", "n4", "n5"])
    assert decide() == {**keep, "j1": "judged"}
    assert decide(exclude_judged=False, window=(3, 5)) == {**keep, "n1": "window", "n4": "window", "n5": "window"}
    assert decide(exclude_judged=False, max_score=1.5) == {**keep, "n1": "max-score", "j1": "max-score"}  # 1.5 stays
    # threshold 2.0 - |2.0| x 0.25 = 1.5: above it are n1 and j1; n2 at exactly 1.5 stays (strict >)
    assert decide(exclude_judged=False, relative_margin=0.25) == {
        **keep,
        "n1": "relative-margin",
        "j1": "relative-margin",
    }
    assert decide(exclude_judged=False, relative_margin=0.0) == keep  # nothing is scored above the positive


def test_filters_combine_and_a_removal_counts_under_the_first_that_applies():
    decided = decide(window=(3, 5), max_score=1.2, relative_margin=0.25)
    assert decided == {"n1": "window", "j1": "judged", "n2": "max-score", "n3": None, "n4": "window", "n5": "window"}


def test_relative_margin_below_a_negative_positive_score_follows_sentence_transformers():
    # s+ = -2: threshold -2 - |-2| x 0.25 = -2.5 (a naive (1 - m) x s+ = -1.5 would keep x, scored above the positive)
    scores = {"pos": -2.0, "x": -2.25, "y": -2.5, "z": -3.0}
    decided = select_negatives(
        scores, judged={"pos"}, positive=("pos", -2.0), filters=NegativeFilters(relative_margin=0.25)
    )
    assert decided == {"x": "relative-margin", "y": None, "z": None}


def test_no_positive_means_no_relative_margin():
    decided = select_negatives(
        {"a": 5.0, "b": 1.0}, positive=None, filters=NegativeFilters(relative_margin=0.5, max_score=4)
    )
    assert decided == {"a": "max-score", "b": None}


@pytest.mark.parametrize(
    "filters, problem",
    [
        ({"window": (0, 5)}, "--window must be two ranks 1 <= FIRST <= LAST, got \\(0, 5\\)"),
        ({"window": (5, 2)}, "--window must be two ranks"),
        ({"max_score": float("inf")}, "--max-score must be a finite number"),
        ({"relative_margin": -0.1}, "--relative-margin must be a finite number >= 0"),
        ({"relative_margin": float("nan")}, "--relative-margin must be a finite number >= 0"),
    ],
)
def test_bad_filters_are_refused(filters, problem):
    with pytest.raises(ValueError, match=problem):
        NegativeFilters(**filters)


TEACHER = {  # float32-exact values, as a model's scores are
    "q1": {"far": 2.5, "p1": 2.0, "n1": 1.75, "j1": 1.625, "n2": 1.5},
    "q2": {"m1": 0.375, "m2": 0.125},
}
QRELS = {"q1": {"far": 3, "p1": 2, "j1": 1, "lost": 2, "n2": 0}}
CANDIDATES = {"q1": ["n1", "p1", "n2", "j1", "ghost"], "q2": ["m1", "m2"], "q3": ["z"]}


def test_filter_with_a_teacher_run_by_hand():
    mined = filter_with_teacher(TEACHER, CANDIDATES, QRELS, filters=NegativeFilters(relative_margin=0.4))
    # q1: the reference positive is "far" (2.5, scored but not a candidate): threshold 2.5 - 1.0 = 1.5
    assert mined.decisions == {
        "q1": {"p1": "judged", "n1": "relative-margin", "j1": "judged", "n2": None},
        "q2": {"m1": None, "m2": None},
    }
    assert mined.positives == {"q1": {"far": 2.5, "p1": 2.0, "j1": 1.625}}
    assert mined.negatives == {"q1": {"n2": 1.5}, "q2": {"m1": 0.375, "m2": 0.125}}
    assert mined.run() == {"q1": {"far": 2.5, "p1": 2.0, "j1": 1.625, "n2": 1.5}, "q2": {"m1": 0.375, "m2": 0.125}}
    assert mined.queries_without_positive == ["q2"]  # no relative margin there: both kept
    assert (mined.unscored, mined.unscored_positives) == (2, 1)  # ghost and q3's z; "lost" has no teacher score
    assert mined.removed() == {"judged": 2, "relative-margin": 1}
    assert mined.summary() == [
        "3 negatives kept for 2 of 2 queries (filters: judged positives, relative margin 0.4); "
        "3 judged positives (grade >= 1) with teacher scores",
        "removed: 2 by judged, 1 by relative-margin",
        "1 queries have no scored judged positive: no relative margin for them (q2)",
        "left out without a teacher score (no text, or absent from the teacher run): 2 candidates, 1 judged positives",
    ]
    graded_two = filter_with_teacher(TEACHER, CANDIDATES, QRELS, positive_grade=2)
    assert graded_two.decisions["q1"] == {
        "p1": "judged",
        "n1": None,
        "j1": None,
        "n2": None,
    }  # j1 (grade 1) is a negative
    with pytest.raises(ValueError, match="--positive-grade must be >= 1, got 0"):
        filter_with_teacher(TEACHER, CANDIDATES, QRELS, positive_grade=0)


class TableScorer:
    """A stand-in teacher: each (query, passage) text pair has a fixed score; records what it scored."""

    def __init__(self, table):
        self.table, self.pairs = table, []

    def score_pairs(self, queries, passages, *, batch_size, show_progress):
        self.pairs += list(zip(queries, passages))
        return np.array([self.table[pair] for pair in zip(queries, passages)], dtype=np.float32)


def test_mine_with_a_model_scores_candidates_and_positives_once():
    collection = IRCollection(
        "toy",
        {"q1": "Q1", "q2": "Q2"},
        {pid: pid.upper() for pid in ["far", "p1", "n1", "j1", "n2", "m1", "m2"]},
        QRELS,
    )
    scorer = TableScorer(
        {("Q1", pid.upper()): score for pid, score in TEACHER["q1"].items()}
        | {("Q2", pid.upper()): score for pid, score in TEACHER["q2"].items()}
    )
    mined = mine_with_teacher(
        collection, CANDIDATES, scorer, filters=NegativeFilters(relative_margin=0.4), show_progress=False
    )
    expected = filter_with_teacher(TEACHER, CANDIDATES, QRELS, filters=NegativeFilters(relative_margin=0.4))
    assert mined.run() == expected.run() and mined.decisions == expected.decisions
    # every candidate with a text once, then the positives no candidate list holds ("far"; "lost" has no text)
    assert sorted(scorer.pairs) == sorted(
        [("Q1", "N1"), ("Q1", "P1"), ("Q1", "N2"), ("Q1", "J1"), ("Q1", "FAR"), ("Q2", "M1"), ("Q2", "M2")]
    )
    assert (mined.unscored, mined.unscored_positives) == (2, 1)


def test_union_and_dense_candidates():
    first = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}}
    second = {"q1": {"c": 5.0, "d": 4.0, "a": 3.0}, "q2": {"x": 1.0}}
    assert union_candidates([first, second], 2) == {"q1": ["a", "b", "c", "d"], "q2": ["x"]}
    with pytest.raises(ValueError, match="--depth must be >= 1"):
        union_candidates([first], 0)
    collection, encoder = ranked_collection({})
    assert dense_candidates(encoder, collection, 3, precision="fp32", show_progress=False) == {
        "q": ["p01", "p02", "p03"]
    }
