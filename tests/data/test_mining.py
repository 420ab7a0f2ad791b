"""Hard-negative mining: the rank window, every positive left out, per-query seeding, the TSV file; teacher-scored
mining for cross-encoders: each false-negative filter by hand, teacher runs and models as teachers."""

import logging
import math

import numpy as np
import pytest
import torch

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import DataFormatError
from hf_rerank.data.mining import mine_hard_negatives, read_negatives, write_negatives
from hf_rerank.data.teacher_mining import (
    NegativeFilters,
    dense_candidates,
    filter_with_teacher,
    mine_with_teacher,
    select_negatives,
    union_candidates,
)


class TableEncoder:
    """A stand-in bi-encoder: each text has a fixed vector."""

    device = torch.device("cpu")

    def __init__(self, vectors):
        self.vectors = {text: list(map(float, vector)) for text, vector in vectors.items()}

    def encode(self, texts, *, batch_size, show_progress, description):
        return torch.tensor([self.vectors[text] for text in texts], dtype=torch.float32)


def ranked_collection(qrels):
    """Query ``q`` = (1, 0); passage ``pNN`` at angle NN/10 rad, so it is the NN-th ranked.

    The corpus is stored in a scrambled order, so ranks cannot come from corpus order.
    """
    order = [7, 2, 11, 4, 9, 1, 12, 5, 3, 10, 6, 8]
    vectors = {"q": [1, 0], **{f"p{i:02d}": [math.cos(i / 10), math.sin(i / 10)] for i in order}}
    collection = IRCollection("ranked", {"q": "q"}, {f"p{i:02d}": f"p{i:02d}" for i in order}, qrels)
    return collection, TableEncoder(vectors)


def mine(encoder, collection, **options):
    return mine_hard_negatives(encoder, collection, show_progress=False, precision="fp32", **options)


def test_every_positive_in_the_window_is_left_out(caplog):
    # ranks 4..8 hold p04..p08; p05 (grade 2) and p06 (grade 1) are positives there, p07 is judged non-relevant
    collection, encoder = ranked_collection({"q": {"p02": 3, "p05": 2, "p06": 1, "p07": 0}})
    everything = mine(encoder, collection, window=(4, 8), per_query=10)
    assert sorted(everything["q"]) == ["p04", "p07", "p08"]
    assert "1 of 1 queries have fewer than 10 candidates at ranks 4-8" in caplog.text
    graded_two = mine(encoder, collection, window=(4, 8), per_query=10, positive_grade=2)
    assert sorted(graded_two["q"]) == ["p04", "p06", "p07", "p08"]


def test_ranks_outside_the_window_are_never_chosen():
    collection, encoder = ranked_collection({"q": {"p01": 1}})
    chosen = {mine(encoder, collection, window=(3, 5), seed=seed)["q"][0] for seed in range(60)}
    assert chosen == {"p03", "p04", "p05"}  # both ends included, nothing beyond
    assert mine(encoder, collection, window=(12, 12))["q"] == ["p12"]
    assert mine(encoder, collection, window=(1, 1), per_query=1) == {}  # rank 1 is the positive


@pytest.fixture
def many():
    """20 queries and 60 passages with random vectors; each query's positive is passage ``p{i}``."""
    generator = np.random.default_rng(1)
    passages = {f"p{i}": generator.normal(size=6) for i in range(60)}
    queries = {f"q{i}": generator.normal(size=6) for i in range(20)}
    collection = IRCollection(
        "many",
        {q: q for q in queries},
        {p: p for p in passages},
        {f"q{i}": {f"p{i}": 2, f"p{i + 20}": 0} for i in range(20)},
    )
    return collection, TableEncoder({**passages, **queries}), passages, queries


def test_negatives_come_from_the_brute_force_window(many):
    collection, encoder, passages, queries = many
    negatives = mine(encoder, collection, window=(5, 30), per_query=3)
    pids = list(passages)
    corpus = np.array([passages[p] / np.linalg.norm(passages[p]) for p in pids])
    for qid, chosen in negatives.items():
        ranked = [pids[i] for i in np.argsort(-(corpus @ queries[qid]), kind="stable")]
        assert len(chosen) == 3 and len(set(chosen)) == 3
        assert set(chosen) <= set(ranked[4:30]) - set(k for k, g in collection.qrels[qid].items() if g >= 1)


def test_seeded_per_query_whatever_the_other_queries(many):
    collection, encoder, _, _ = many
    first = mine(encoder, collection, window=(5, 30), per_query=2, seed=42)
    assert mine(encoder, collection, window=(5, 30), per_query=2, seed=42) == first
    assert list(first) == list(collection.queries)
    other_seed = mine(encoder, collection, window=(5, 30), per_query=2, seed=43)
    assert sum(first[q] != other_seed[q] for q in first) >= 10
    subset = ["q17", "q3", "q9"]
    alone = mine(encoder, collection, window=(5, 30), per_query=2, seed=42, queries=subset)
    assert list(alone) == subset and alone == {q: first[q] for q in subset}


def test_queries_without_positives_and_bad_arguments(many, caplog):
    collection, encoder, _, _ = many
    collection.qrels["q0"] = {"p0": 0}
    with caplog.at_level(logging.INFO, logger="hf_rerank"):
        negatives = mine(encoder, collection, window=(5, 30))
    assert "q0" not in negatives and len(negatives) == 19
    assert "1 of 20 queries have no judged passage of grade >= 1" in caplog.text
    with pytest.raises(ValueError, match="none of the 1 queries has a judged passage of grade >= 1"):
        mine(encoder, collection, queries=["q0"])
    with pytest.raises(KeyError, match="no text for queries nope"):
        mine(encoder, collection, queries=["q1", "nope"])
    for window in [(0, 10), (20, 10), (1.5, 10)]:
        with pytest.raises(ValueError, match="window must be two ranks"):
            mine(encoder, collection, window=window)
    with pytest.raises(ValueError, match="per_query must be >= 1"):
        mine(encoder, collection, per_query=0)


def test_negatives_file_round_trip_and_errors(tmp_path):
    negatives = {"19335": ["p1", "msmarco_passage_08_24643970"], "q2": ["p3"]}
    path = write_negatives(negatives, tmp_path / "out" / "negatives.tsv")
    assert path.read_text() == "19335\tp1\n19335\tmsmarco_passage_08_24643970\nq2\tp3\n"
    assert read_negatives(path) == negatives
    bad = tmp_path / "bad.tsv"
    for text, problem in [
        ("q1\tp1\n\nq1 p2\n", ":3: expected 'qid<TAB>pid', found 1 tab-separated fields"),
        ("q1\tp1\tp2\n", ":1: expected 'qid<TAB>pid', found 3"),
        ("q1\t \n", ":1: empty passage id"),
        ("q1\tp1\nq1\tp1\n", ":2: duplicate (query 'q1', passage 'p1'): already on line 1"),
    ]:
        bad.write_text(text)
        with pytest.raises(DataFormatError) as error:
            read_negatives(bad)
        assert str(error.value).startswith(f"{bad}:") and problem in str(error.value)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_negatives(tmp_path / "missing.tsv")


# Teacher-scored mining for cross-encoders (hf_rerank.data.teacher_mining).

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
