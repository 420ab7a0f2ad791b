"""Reranking a run: candidates, order, the first-stage tail, and the report around it."""

import json

import numpy as np
import pytest

from hf_rerank.data.collection import IRCollection
from hf_rerank.evaluation.report import evaluate_reranking, write_report
from hf_rerank.evaluation.rerank import merge_scores, rerank


class LengthScorer:
    """A stand-in model: longer passages score higher; records what it was asked."""

    def __init__(self):
        self.calls = []

    def score_pairs(self, queries, passages, *, batch_size, show_progress):
        self.calls.append((list(queries), list(passages)))
        return np.array([len(p) for p in passages], dtype=np.float32)


@pytest.fixture
def collection():
    return IRCollection(
        name="toy",
        queries={"q1": "cats", "q2": "dogs"},
        corpus={"a": "x", "b": "xxx", "c": "xx", "d": "xxxx", "e": "xxxxxxxxxx"},
        qrels={"q1": {"b": 3, "c": 1, "e": 0}, "q2": {"d": 2}},
        runs={"bm25": {"q1": {"a": 9.0, "b": 8.0, "c": 7.0, "e": 6.0}, "q2": {"d": 1.0, "ghost": 0.5}}},
    )


def test_rerank_scores_top_k_and_keeps_the_tail_below(collection):
    scorer = LengthScorer()
    result = rerank(collection, "bm25", scorer, depth=3)
    assert scorer.calls == [(["cats", "cats", "cats", "dogs"], ["x", "xxx", "xx", "xxxx"])]
    assert list(result.run["q1"]) == ["b", "c", "a", "e"]  # top-3 by length, then e from rank 4
    assert result.run["q1"]["e"] < min(result.run["q1"][p] for p in "abc")
    assert list(result.run["q2"]) == ["d"]  # ghost has no text: left out
    assert result.pairs == 4 and result.pairs_per_second > 0


def test_merge_scores_orders_ties_stably():
    run = merge_scores({"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, [("q", "a"), ("q", "b")], np.array([1.0, 1.0]), depth=2)
    assert list(run["q"]) == ["a", "b", "c"]


def test_report_compares_with_the_first_stage(collection, tmp_path):
    report, run = evaluate_reranking(collection, "bm25", LengthScorer(), model_name="length", depth=4)
    # first stage q1: a(0) b(3) c(1) e(0) ; reranked q1: e(0) b(3) c(1) a(0)
    assert report.first_stage["mrr@10-l2"] == pytest.approx((1 / 2 + 1) / 2)
    assert report.metrics["mrr@10-l2"] == pytest.approx((1 / 2 + 1) / 2)
    assert report.metrics["ndcg@10"] == pytest.approx(report.first_stage["ndcg@10"])  # a and e are both grade 0
    assert set(report.significance) == {"ndcg@10", "map@100-l2", "mrr@10-l2", "recall@100-l2"}
    assert report.significance["mrr@10-l2"]["p_t_test"] == 1.0
    write_report(report, run, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("metrics", "first_stage", "model", "run", "depth", "convention", "pairs_per_second", "wall_seconds"):
        assert key in saved
    assert saved["model"] == "length" and saved["depth"] == 4 and saved["pairs"] == 5
    lines = (tmp_path / "out" / "run.trec").read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "e", "1"]
    rows = {line.split()[0]: line for line in report.table().splitlines() if line.startswith("  ") and "@" in line.split()[0]}
    assert set(rows) == set(report.metrics)
    assert not any(mark in row for row in rows.values() for mark in "▲▼")  # nothing is significant on 2 queries


def test_first_stage_only(collection):
    report, run = evaluate_reranking(collection, "bm25", depth=2)
    assert report.model is None and report.pairs == 0 and report.significance == {}
    assert run is collection.runs["bm25"]
    # q1: b (grade 3) at rank 2 -> MRR 1/2; q2: d at rank 1 -> 1
    assert report.metrics["mrr@10-l2"] == pytest.approx(0.75)
