"""Metric sets checked against hand computations, and against real TREC DL data."""

from __future__ import annotations

import dataclasses
import json
import logging
from math import log2

import pytest

from hf_rerank.data.formats import read_qrels, read_run
from hf_rerank.evaluation.metrics import (
    METRIC_SETS,
    MetricSet,
    RunEvaluation,
    evaluate_run,
    get_metric_set,
)

# --------------------------------------------------------------------------------------------
# A tiny collection, computed by hand.
#
# Query "19335" (grades 0..3; "8412684" is judged relevant but never retrieved):
#   rank  pid                              score  grade
#   1     109063                           9.0    0
#   2     1017759                          8.0    1
#   3     msmarco_passage_08_24643970      7.0    3
#   4     5555555                          6.0    unjudged -> 0
#   5     msmarco_passage_11_53120477      5.0    2
#   relevant at grade >= 1: 4 (grades 3, 2, 2, 1); at grade >= 2: 3 (grades 3, 2, 2)
#
# Query "1037798" (12 retrieved; only two judged relevant):
#   rank 3  "7187157"  grade 1
#   rank 4  "7187156"  grade 0
#   rank 11 "4725910"  grade 3           every other retrieved pid is unjudged
#   relevant at grade >= 1: 2; at grade >= 2: 1
#
# Query "47923": judged, but missing from the run -> 0 on every metric (trec_eval -c).
# Query "1121402": in the run, not judged -> left out with a warning.
# --------------------------------------------------------------------------------------------

QRELS = {
    "19335": {
        "109063": 0,
        "1017759": 1,
        "msmarco_passage_08_24643970": 3,
        "msmarco_passage_11_53120477": 2,
        "8412684": 2,
    },
    "1037798": {"7187157": 1, "7187156": 0, "4725910": 3},
    "47923": {"2257231": 1, "3331": 0},
}

_Q2_RANKING = [
    "900001", "900002", "7187157", "7187156", "900005", "900006",
    "900007", "900008", "900009", "900010", "4725910", "900012",
]  # fmt: skip

# Insertion order deliberately differs from the qrels' and from sorted order.
RUN = {
    "1121402": {"1": 1.0},
    "1037798": {pid: 100.0 - rank for rank, pid in enumerate(_Q2_RANKING, start=1)},
    "19335": {
        "msmarco_passage_11_53120477": 5.0,
        "109063": 9.0,
        "5555555": 6.0,
        "1017759": 8.0,
        "msmarco_passage_08_24643970": 7.0,
    },
}

# nDCG, linear gains, discount log2(rank + 1):
# "19335": DCG = 1/log2(3) + 3/log2(4) + 2/log2(6) (ranks 2, 3, 5; nothing after rank 5)
#          IDCG = 3/log2(2) + 2/log2(3) + 2/log2(4) + 1/log2(5) (ideal order 3, 2, 2, 1)
#          nDCG@10 = nDCG (full) = 2.904636 / 5.692537 = 0.510251
_DCG_1 = 1 / log2(3) + 3 / log2(4) + 2 / log2(6)
_IDCG_1 = 3 / log2(2) + 2 / log2(3) + 2 / log2(4) + 1 / log2(5)
# "1037798": DCG@10 = 1/log2(4) = 0.5 (rank 3); the grade-3 passage at rank 11 counts only
#            for full-depth nDCG: DCG = 0.5 + 3/log2(12)
#            IDCG = 3/log2(2) + 1/log2(3) = 3.630930 (ideal order 3, 1)
_DCG10_2 = 1 / log2(4)
_DCG_2 = 1 / log2(4) + 3 / log2(12)
_IDCG_2 = 3 / log2(2) + 1 / log2(3)

EXPECTED = {  # metric -> qid -> hand-computed value
    "ndcg@10": {"19335": _DCG_1 / _IDCG_1, "1037798": _DCG10_2 / _IDCG_2, "47923": 0.0},
    "ndcg": {"19335": _DCG_1 / _IDCG_1, "1037798": _DCG_2 / _IDCG_2, "47923": 0.0},
    # AP, grade >= 2 (-l2): "19335" hits at 3, 5 of 3 relevant: (1/3 + 2/5) / 3;
    #                       "1037798" hit at 11 of 1 relevant: (1/11) / 1
    "map@100-l2": {"19335": (1 / 3 + 2 / 5) / 3, "1037798": 1 / 11, "47923": 0.0},
    # AP, grade >= 1, full depth: "19335" hits at 2, 3, 5 of 4: (1/2 + 2/3 + 3/5) / 4;
    #                             "1037798" hits at 3, 11 of 2: (1/3 + 2/11) / 2
    "map": {"19335": (1 / 2 + 2 / 3 + 3 / 5) / 4, "1037798": (1 / 3 + 2 / 11) / 2, "47923": 0.0},
    # RR, grade >= 2, cut at 10: "19335" first grade >= 2 at rank 3;
    #                            "1037798" first grade >= 2 at rank 11 -> beyond the cut -> 0
    "mrr@10-l2": {"19335": 1 / 3, "1037798": 0.0, "47923": 0.0},
    # RR, grade >= 1: "19335" rank 2 (the grade-1 passage), "1037798" rank 3
    "mrr@10": {"19335": 1 / 2, "1037798": 1 / 3, "47923": 0.0},
    "mrr": {"19335": 1 / 2, "1037798": 1 / 3, "47923": 0.0},
    # Recall, grade >= 2: 2 of 3 retrieved; 1 of 1.  Grade >= 1: 3 of 4; 2 of 2.
    "recall@100-l2": {"19335": 2 / 3, "1037798": 1.0, "47923": 0.0},
    "recall@100": {"19335": 3 / 4, "1037798": 1.0, "47923": 0.0},
    "recall@1000": {"19335": 3 / 4, "1037798": 1.0, "47923": 0.0},
    # P@10 divides by 10 even when fewer are retrieved: 3 relevant (>= 1) in "19335"'s top 10,
    # 1 in "1037798"'s (rank 3; rank 11 is past the cut).
    "precision@10": {"19335": 3 / 10, "1037798": 1 / 10, "47923": 0.0},
}

JUDGED = ["1037798", "19335", "47923"]  # sorted as strings


def test_registry_is_exactly_the_three_sets():
    assert set(METRIC_SETS) == {"trec-dl", "msmarco-dev", "paper"}
    assert METRIC_SETS["trec-dl"].metrics == ("ndcg@10", "map@100-l2", "mrr@10-l2", "recall@100-l2")
    assert METRIC_SETS["msmarco-dev"].metrics == ("mrr@10", "recall@1000")
    assert METRIC_SETS["paper"].metrics == (
        "ndcg@10", "map", "mrr", "precision@10", "recall@100", "recall@1000", "ndcg",
    )  # fmt: skip
    for name, mset in METRIC_SETS.items():
        assert mset.name == name
        assert mset.convention.endswith(".")
    with pytest.raises(dataclasses.FrozenInstanceError):
        METRIC_SETS["paper"].name = "other"  # type: ignore[misc]


def test_get_metric_set():
    assert get_metric_set("trec-dl") is METRIC_SETS["trec-dl"]
    with pytest.raises(ValueError, match="msmarco-dev, paper, trec-dl"):
        get_metric_set("trec_dl")


@pytest.mark.parametrize("set_name", ["trec-dl", "msmarco-dev", "paper"])
def test_every_metric_against_hand_computation(set_name, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        result = evaluate_run(QRELS, RUN, set_name)

    mset = METRIC_SETS[set_name]
    assert isinstance(result, RunEvaluation)
    assert result.queries == JUDGED
    assert result.convention == mset.convention
    assert list(result.means) == list(mset.metrics)
    for metric in mset.metrics:
        expected = EXPECTED[metric]
        assert result.per_query[metric] == pytest.approx(expected, abs=1e-12), metric
        assert list(result.per_query[metric]) == JUDGED
        assert result.means[metric] == pytest.approx(sum(expected.values()) / 3, abs=1e-12)

    # one counted warning per problem, also logged on the "hf_rerank" logger
    assert result.warnings == [
        "run has 1 queries with no judgments in qrels; they are not evaluated: 1121402",
        "qrels has 1 judged queries with no results in the run; they score 0 on every metric: 47923",
    ]
    logged = [r.getMessage() for r in caplog.records if r.name == "hf_rerank"]
    assert logged == result.warnings


def test_trec_dl_rounded_values():
    # The hand values above, rounded, as a reader of a results table would check them.
    means = evaluate_run(QRELS, RUN, "trec-dl").means
    # ndcg@10: (0.510251 + 0.137706 + 0) / 3
    assert means["ndcg@10"] == pytest.approx(0.215986, abs=1e-6)
    # map@100-l2: (0.244444 + 0.090909 + 0) / 3
    assert means["map@100-l2"] == pytest.approx(0.111785, abs=1e-6)
    # mrr@10-l2: (0.333333 + 0 + 0) / 3
    assert means["mrr@10-l2"] == pytest.approx(0.111111, abs=1e-6)
    # recall@100-l2: (0.666667 + 1 + 0) / 3
    assert means["recall@100-l2"] == pytest.approx(0.555556, abs=1e-6)


@pytest.mark.parametrize("tied", [3, 16, 100])
def test_tied_scores_are_ranked_as_trec_eval_ranks_them(tied):
    """Every passage scores 1.0; trec_eval ranks them by docno descending (p099 ... p000), whatever
    the run's order. ranx's own sort kept input order for a few ties but not for 16 or 100."""
    pids = [f"p{i:03d}" for i in range(tied)]
    first_in_file = {pid: 1.0 for pid in pids}  # p000 first, as a file in rank order would give it
    qrels = {"q": {"p000": 2, pids[-1]: 1}}  # the lowest id (ranked last by trec_eval) and the highest (first)
    result = evaluate_run(
        qrels, {"q": first_in_file}, MetricSet("m", ("mrr", "mrr-l2", "map-l2", "ndcg@10", "ndcg"), "t.")
    )
    means = result.means
    # by hand with trec_eval's order: pids[-1] (grade 1) at rank 1, p000 (grade 2) at rank `tied`
    assert means["mrr"] == 1.0
    assert means["mrr-l2"] == pytest.approx(1 / tied)
    assert means["map-l2"] == pytest.approx(1 / tied)
    idcg = 2 + 1 / log2(3)
    assert means["ndcg@10"] == pytest.approx((1 + (2 / log2(tied + 1) if tied <= 10 else 0)) / idcg)
    assert means["ndcg"] == pytest.approx((1 + 2 / log2(tied + 1)) / idcg)
    reversed_file = {"q": dict(reversed(list(first_in_file.items())))}
    assert (
        evaluate_run(qrels, reversed_file, "trec-dl").means
        == evaluate_run(qrels, {"q": first_in_file}, "trec-dl").means
    )


def test_l2_convention_differs_from_grade_1():
    both = MetricSet("both", ("mrr@10", "mrr@10-l2", "recall@100", "recall@100-l2"), "test.")
    result = evaluate_run(QRELS, RUN, both)
    # "19335": the grade-1 passage at rank 2 counts at grade >= 1 but not with -l2
    assert result.per_query["mrr@10"]["19335"] == pytest.approx(1 / 2)
    assert result.per_query["mrr@10-l2"]["19335"] == pytest.approx(1 / 3)
    # the -l2 denominator drops the grade-1 passage: 2/3 vs 3/4
    assert result.per_query["recall@100-l2"]["19335"] == pytest.approx(2 / 3)
    assert result.per_query["recall@100"]["19335"] == pytest.approx(3 / 4)


def test_single_metric_set_and_query_alignment():
    # ranx returns a bare array (not a dict) for one metric, ordered by its internal query
    # order; per-query values must still land on the right qids.  Ids chosen so that string
    # order ("10" < "2") differs from numeric and insertion order.
    qrels = {"2": {"a": 1}, "10": {"b": 1}, "1": {"c": 1}}
    run = {
        "1": {"x": 3.0, "y": 2.0, "c": 1.0},  # rank 3
        "10": {"x": 2.0, "b": 1.0},  # rank 2
        "2": {"a": 1.0},  # rank 1
    }
    result = evaluate_run(qrels, run, MetricSet("one", ("mrr",), "test."))
    assert result.queries == ["1", "10", "2"]
    assert result.per_query["mrr"] == pytest.approx({"1": 1 / 3, "10": 1 / 2, "2": 1.0})
    assert result.warnings == []


def test_query_with_no_documents_counts_as_missing():
    run = {**RUN, "47923": {}}
    result = evaluate_run(QRELS, run, "msmarco-dev")
    assert result.per_query["mrr@10"]["47923"] == 0.0
    assert any("1 judged queries with no results" in w for w in result.warnings)


def test_warning_lists_are_abbreviated():
    qrels = {"1": {"a": 1}}
    run = {"1": {"a": 1.0}, **{str(1000 + i): {"a": 1.0} for i in range(25)}}
    (message,) = evaluate_run(qrels, run, "msmarco-dev").warnings
    assert message.startswith("run has 25 queries with no judgments in qrels")
    assert message.endswith("1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, ... (15 more)")


def test_result_is_plain_python_and_json_serialisable():
    result = evaluate_run(QRELS, RUN, "paper")
    assert all(type(v) is float for v in result.means.values())
    assert all(type(v) is float for per in result.per_query.values() for v in per.values())
    json.dumps(dataclasses.asdict(result))


@pytest.mark.parametrize(
    ("qrels", "run", "message"),
    [
        ({}, RUN, "qrels is empty"),
        ({"19335": {}}, RUN, "qrels is empty"),
        (QRELS, {}, "run is empty"),
        (QRELS, {"19335": {}}, "run is empty"),
        (QRELS, {"1121402": {"1": 1.0}}, "share no query id"),
    ],
)
def test_empty_or_disjoint_inputs_raise(qrels, run, message):
    with pytest.raises(ValueError, match=message):
        evaluate_run(qrels, run, "trec-dl")


def test_non_string_query_ids_raise():
    with pytest.raises(TypeError, match="query ids must be str"):
        evaluate_run({19335: {"a": 1}}, {19335: {"a": 1.0}}, "trec-dl")  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------
# Real data: TREC DL 2019/2020 passage qrels and the BM25 top-100 run.
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("year", "expected"),
    [
        ("dl19", {"ndcg@10": 0.5058, "map@100-l2": 0.2476, "mrr@10-l2": 0.7024, "recall@100-l2": 0.4910}),
        ("dl20", {"ndcg@10": 0.4796, "map@100-l2": 0.2685}),
    ],
)
def test_bm25_reference_figures(year, expected, trec_dl):
    qrels = read_qrels(trec_dl / year / "qrels.txt")
    run = read_run(trec_dl / year / "runs" / "bm25.run")
    result = evaluate_run(qrels, run, "trec-dl")
    assert result.warnings == []
    assert len(result.queries) == {"dl19": 43, "dl20": 54}[year]
    for metric, value in expected.items():
        assert round(result.means[metric], 4) == value, metric
