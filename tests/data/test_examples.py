"""Training examples: positives by threshold, negative sources, seeding, groups, warnings, DL20."""

import logging
from collections import Counter

import pytest

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.examples import (
    NEGATIVE_SOURCES,
    GroupExample,
    PairExample,
    make_groups,
    make_judged_pairs,
    make_pairs,
    make_teacher_groups,
)

LONG_PID = "msmarco_passage_08_24643970"


def run(*pids):
    return {pid: float(100 - rank) for rank, pid in enumerate(pids)}


@pytest.fixture
def tiny():
    """Query 19335: positives LONG_PID (3) and p2 (2); p1 grade 1; n1, n2 grade 0; nt (3) has no text.
    Runs add unjudged u1..u3 and ghost (no text). Query 1037798 has only a grade-1 passage;
    q_norun has a positive but is in no run."""
    corpus = {pid: f"text of {pid}" for pid in (LONG_PID, "p2", "p1", "n1", "n2", "u1", "u2", "u3", "x1", "x2")}
    return IRCollection(
        name="tiny",
        queries={
            "19335": "anthropological definition of environment",
            "1037798": "who is robert gray",
            "q_norun": "lonely",
        },
        corpus=corpus,
        qrels={
            "19335": {LONG_PID: 3, "p2": 2, "p1": 1, "n1": 0, "n2": 0, "nt": 3},
            "1037798": {"x1": 1},
            "q_norun": {"x2": 2},
        },
        runs={
            "bm25": {"19335": run("n1", LONG_PID, "u1", "ghost", "p1", "u2"), "1037798": run("x1", "u3")},
            "tasb": {"19335": run("u3", "n2", "p2", "n1")},
        },
    )


def by_query(examples):
    grouped = {}
    for example in examples:
        grouped.setdefault(example.qid, {})[example.pid] = example.label
    return grouped


def test_positive_threshold_excludes_grade_one_at_two_and_includes_it_at_one(tiny):
    at_two = by_query(make_pairs(tiny, negatives="unjudged"))
    assert {pid for pid, label in at_two["19335"].items() if label == 1.0} == {LONG_PID, "p2"}
    assert "1037798" not in at_two  # its only judged passage is grade 1
    at_one = by_query(make_pairs(tiny, negatives="unjudged", positive_grade=1))
    assert {pid for pid, label in at_one["19335"].items() if label == 1.0} == {LONG_PID, "p2", "p1"}
    assert at_one["1037798"] == {"x1": 1.0, "u3": 0.0}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("judged", {"n1", "n2", "p1"}),  # grade 1 is below the threshold of 2: a negative
        ("unjudged", {"u1", "u2", "u3"}),
        ("any", {"n1", "n2", "p1", "u1", "u2", "u3"}),
    ],
)
def test_negative_sources(tiny, source, expected):
    pairs = by_query(make_pairs(tiny, negatives=source))["19335"]
    assert {pid for pid, label in pairs.items() if label == 0.0} == expected
    assert {LONG_PID, "p2"} <= set(pairs)  # positives kept, never labelled as negatives
    assert not {"ghost", "nt"} & set(pairs)  # passages without text are never used


def test_depth_and_run_choice_limit_the_candidates(tiny):
    pairs = by_query(make_pairs(tiny, runs=["bm25"], depth=2, negatives="any"))["19335"]
    assert pairs == {LONG_PID: 1.0, "p2": 1.0, "n1": 0.0}


def test_graded_labels(tiny):
    pairs = by_query(make_pairs(tiny, negatives="any", graded=True))["19335"]
    assert pairs == {LONG_PID: 3.0, "p2": 2.0, "n1": 0.0, "n2": 0.0, "p1": 1.0, "u1": 0.0, "u2": 0.0, "u3": 0.0}


def test_negatives_per_query_and_seeding(tiny):
    first = make_pairs(tiny, negatives="any", negatives_per_query=3, seed=1)
    assert first == make_pairs(tiny, negatives="any", negatives_per_query=3, seed=1)
    assert all(isinstance(example, PairExample) for example in first)
    counts = Counter((example.qid, example.label) for example in first)
    assert counts[("19335", 0.0)] == 3 and counts[("19335", 1.0)] == 2
    orders = {tuple(make_pairs(tiny, negatives="any", negatives_per_query=3, seed=seed)) for seed in range(5)}
    assert len(orders) > 1
    samples = {
        frozenset(by_query(make_pairs(tiny, negatives="any", negatives_per_query=3, seed=seed))["19335"])
        for seed in range(10)
    }
    assert len(samples) > 1


def test_warnings_count_left_out_queries(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        make_pairs(tiny)
    assert "1 judged positives (grade >= 2) have no passage text" in caplog.text
    assert "1 queries have no positive (grade >= 2) with text and are left out: 1037798" in caplog.text
    assert (
        "1 queries with positives are in none of the runs bm25, tasb (no negatives) and are left out: q_norun"
        in caplog.text
    )
    assert "bm25: 1 of the top-100 candidates name passages with no text" in caplog.text


def test_bad_options(tiny):
    with pytest.raises(ValueError, match=r"no run 'splade' \(runs: bm25, tasb\)"):
        make_pairs(tiny, runs=["bm25", "splade"])
    with pytest.raises(TypeError, match="list of run names"):
        make_pairs(tiny, runs="bm25")
    with pytest.raises(ValueError, match="negatives must be one of judged, unjudged, any"):
        make_pairs(tiny, negatives="hard")
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        make_groups(tiny, group_size=1)
    with pytest.raises(ValueError, match="negatives_per_query"):
        make_pairs(tiny, negatives_per_query=0)
    with pytest.raises(ValueError, match="depth"):
        make_groups(tiny, depth=0)
    assert NEGATIVE_SOURCES == ("judged", "unjudged", "any")


def test_groups_put_the_positive_first_with_distinct_negatives(tiny):
    groups = make_groups(tiny, negatives="any", group_size=4, seed=3)
    assert groups == make_groups(tiny, negatives="any", group_size=4, seed=3)
    assert all(isinstance(group, GroupExample) for group in groups)
    assert sorted(group.pids[0] for group in groups) == sorted([LONG_PID, "p2"])
    for group in groups:
        assert group.qid == "19335" and len(group.pids) == 4
        assert group.labels == (1.0, 0.0, 0.0, 0.0)
        assert len(set(group.pids[1:])) == 3
        assert set(group.pids[1:]) <= {"n1", "n2", "p1", "u1", "u2", "u3"}
    graded = make_groups(tiny, negatives="judged", group_size=4, graded=True)
    assert {group.labels[0] for group in graded} == {3.0, 2.0}
    assert all(sorted(group.labels[1:]) == [0.0, 0.0, 1.0] for group in graded)  # n1, n2, p1: all three


def test_groups_keep_queries_with_too_few_negatives_in_shorter_lists(tiny, caplog):
    # 19335 has 3 judged negatives (n1, n2, p1) for groups of 5: its two groups hold 4 passages each.
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        groups = make_groups(tiny, negatives="judged", group_size=5)
    assert sorted((group.qid, len(group.pids), group.pids[0]) for group in groups) == [
        ("19335", 4, LONG_PID),
        ("19335", 4, "p2"),
    ]
    assert all(set(group.pids[1:]) == {"n1", "n2", "p1"} for group in groups)
    assert (
        "1 queries have fewer than 4 judged negatives in the top-100 candidates; their groups are shorter: 19335"
        in caplog.text
    )
    with pytest.raises(ValueError, match="2 passages but 1 labels"):
        GroupExample("19335", ("a", "b"), (1.0,))
    with pytest.raises(ValueError, match="2 passages but 3 teacher scores"):
        GroupExample("19335", ("a", "b"), (1.0, 0.0), (0.5, 0.2, 0.1))


def test_groups_leave_out_queries_without_any_negative(tiny, caplog):
    lonely = IRCollection(
        "lonely", {"q": "a query"}, {"p": "pos", "n": "neg"}, {"q": {"p": 2, "n": 2}}, {"bm25": {"q": run("p", "n")}}
    )
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        assert make_groups(lonely, group_size=3) == []
    assert (
        "1 queries (2 positives) have no judged negatives in the top-100 candidates and are left out: q" in caplog.text
    )


def test_teacher_groups_start_at_the_teachers_best_and_carry_its_scores(tiny, caplog):
    teacher = {
        "19335": {"n1": 0.9, LONG_PID: 0.95, "u1": 0.1, "ghost": 0.99, "p1": 0.5, "u2": 0.2},  # ghost: no text
        "1037798": {"x1": 0.3, "u3": 0.4},
        "q_unknown": {"x1": 1.0, "x2": 0.5},  # no query text
        "q_norun": {"x2": 0.7},  # one candidate only
    }
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        groups = make_teacher_groups(tiny, teacher, group_size=3, groups_per_query=2, seed=5)
    assert groups == make_teacher_groups(tiny, teacher, group_size=3, groups_per_query=2, seed=5)
    by_qid = {}
    for group in groups:
        by_qid.setdefault(group.qid, []).append(group)
    assert sorted(by_qid) == ["1037798", "19335"] and all(len(v) == 2 for v in by_qid.values())
    for group in by_qid["19335"]:
        assert group.pids[0] == LONG_PID and len(group.pids) == 3 and len(set(group.pids)) == 3
        assert set(group.pids[1:]) <= {"n1", "u1", "p1", "u2"}
        assert group.teacher == tuple(teacher["19335"][pid] for pid in group.pids)
        # labels from qrels at positive_grade 2: LONG_PID (3) -> 1, p1 (1) -> 0, unjudged -> 0
        assert group.labels == tuple(1.0 if pid == LONG_PID else 0.0 for pid in group.pids)
    for group in by_qid["1037798"]:  # two candidates: a shorter list, best first
        assert group.pids == ("u3", "x1") and group.teacher == (0.4, 0.3) and group.labels == (0.0, 0.0)
    graded = make_teacher_groups(tiny, {"19335": teacher["19335"]}, group_size=6, graded=True)
    assert dict(zip(graded[0].pids, graded[0].labels)) == {LONG_PID: 3.0, "n1": 0.0, "p1": 1.0, "u1": 0.0, "u2": 0.0}
    assert "1 teacher queries have no text and are left out: q_unknown" in caplog.text
    assert "1 teacher queries have fewer than 2 candidates with text and are left out: q_norun" in caplog.text
    assert "1 teacher queries have fewer than 3 candidates; their groups are shorter: 1037798" in caplog.text
    top2 = make_teacher_groups(tiny, {"19335": teacher["19335"]}, group_size=8, depth=2)
    assert top2[0].pids == (LONG_PID, "n1")
    with pytest.raises(ValueError, match="no query with text and 2 candidates"):
        make_teacher_groups(tiny, {"q_norun": {"x2": 0.7}})


def test_judged_pairs_take_every_judgment_with_text(tiny, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        pairs = make_judged_pairs(tiny)
    assert by_query(pairs) == {
        "19335": {LONG_PID: 1.0, "p2": 1.0, "p1": 0.0, "n1": 0.0, "n2": 0.0},
        "1037798": {"x1": 0.0},
        "q_norun": {"x2": 1.0},
    }
    assert "1 of 8 judgments name a query or passage with no text" in caplog.text
    assert by_query(make_judged_pairs(tiny, graded=True))["19335"][LONG_PID] == 3.0
    assert by_query(make_judged_pairs(tiny, positive_grade=1))["1037798"] == {"x1": 1.0}


def test_dl20(trec_dl):
    dl20 = IRCollection.from_dir(trec_dl / "dl20")
    judged = make_judged_pairs(dl20)
    assert len(judged) == 5004  # sentence-transformers' baseline: 5,004 judged DL20 pairs with text
    assert Counter(pair.label for pair in judged) == {0.0: 3907, 1.0: 1097}
    assert Counter(pair.label for pair in make_judged_pairs(dl20, graded=True)) == {
        0.0: 2688,
        1.0: 1219,
        2.0: 623,
        3.0: 474,
    }

    groups = make_groups(dl20, runs=["bm25"])
    assert len(groups) == 1097  # one per positive (grade >= 2, with text)
    assert len({group.qid for group in groups}) == 54
    bm25 = dl20.runs["bm25"]
    for group in groups:
        assert len(group.pids) == 8 and len(set(group.pids)) == 8
        assert dl20.qrels[group.qid][group.pids[0]] >= 2
        assert all(dl20.qrels[group.qid][pid] < 2 and pid in bm25[group.qid] for pid in group.pids[1:])


# --------------------------------------------------------------------------- triplets (bi-encoders)
from hf_rerank.data.examples import TripletExample, make_triplets  # noqa: E402


def test_triplets_random_negatives_never_positive(tiny):
    examples = make_triplets(tiny, negatives="random", positive_grade=2, seed=3)
    # 19335 has positives LONG_PID and p2 (nt has no text); q_norun has x2 (runs are not needed)
    assert sorted((e.qid, e.positive) for e in examples) == [("19335", LONG_PID), ("19335", "p2"), ("q_norun", "x2")]
    for _ in range(20):
        for example in make_triplets(tiny, negatives="random", positive_grade=2, seed=_):
            judged = tiny.qrels[example.qid]
            assert example.negative in tiny.corpus and judged.get(example.negative, 0) < 2
    assert make_triplets(tiny, negatives="random", seed=3) == make_triplets(tiny, negatives="random", seed=3)


def test_triplets_without_negatives_and_positive_grade(tiny):
    examples = make_triplets(tiny, negatives=None, positive_grade=1)
    assert all(e.negative is None for e in examples)
    assert sorted((e.qid, e.positive) for e in examples) == sorted(
        [("19335", LONG_PID), ("19335", "p2"), ("19335", "p1"), ("1037798", "x1"), ("q_norun", "x2")]
    )


def test_triplets_mined_negatives(tiny, caplog):
    mined = {"19335": ["n1", "u2"]}
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        examples = make_triplets(tiny, negatives=mined, positive_grade=2, seed=0)
    assert {e.qid for e in examples} == {"19335"}
    assert all(e.negative in ("n1", "u2") for e in examples)
    assert "1 queries with positives have no mined negatives" in caplog.text
    with pytest.raises(ValueError, match="include judged positives: p2"):
        make_triplets(tiny, negatives={"19335": ["p2"]})
    with pytest.raises(ValueError, match="no passage text: ghost"):
        make_triplets(tiny, negatives={"19335": ["ghost"]})
    with pytest.raises(ValueError, match="negatives must be None"):
        make_triplets(tiny, negatives="bm25")
    assert isinstance(examples[0], TripletExample)
