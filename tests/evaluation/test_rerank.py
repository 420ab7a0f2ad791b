"""Reranking a run: candidates, order, the first-stage tail, and the report around it."""

import json

import numpy as np
import pytest

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import read_run, write_run
from hf_rerank.evaluation.metrics import evaluate_run
from hf_rerank.evaluation.report import evaluate_reranking, write_report
from hf_rerank.evaluation.rerank import merge_scores, rerank
from hf_rerank.inference.scoring import NonFiniteScoresError
from tests.scorers import LengthScorer


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
    assert list(result.run["q2"]) == ["d", "ghost"]  # ghost has no text: kept, below the scored passages
    assert result.pairs == 4 and result.pairs_per_second > 0


def test_unscorable_queries_and_passages_keep_their_first_stage_places(collection):
    collection.runs["bm25"]["q3"] = {"c": 2.0, "b": 1.0}  # a run query with no text
    collection.qrels["q3"] = {"b": 2}
    report, run = evaluate_reranking(collection, "bm25", LengthScorer(), model_name="length", depth=4)
    assert run["q3"] == {"c": 2.0, "b": 1.0}  # not scored: the first stage's ranking, so its metrics do not move
    assert report.per_query["mrr@10-l2"]["q3"] == 0.5 and report.significance["mrr@10-l2"]["delta"] == 0.0
    assert any("1 run queries have no text and keep their first-stage ranking: q3" in w for w in report.warnings)
    assert any("1 of the top-4 candidates have no passage text" in w for w in report.warnings)
    assert {qid: set(ranked) for qid, ranked in run.items()} == {q: set(r) for q, r in collection.runs["bm25"].items()}


def test_tied_model_scores_keep_first_stage_order_for_every_reader(tmp_path):
    # first stage a, b, c, d; the model scores a, b, c alike: trec_eval's own rule would give c, b, a
    first = {"q": {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}}
    run, tied = merge_scores(first, [("q", "a"), ("q", "b"), ("q", "c")], np.array([0.25, 0.25, 0.25]), depth=3)
    assert tied == 2 and list(run["q"]) == ["a", "b", "c", "d"]
    assert run["q"]["a"] == 0.25 and 0.25 > run["q"]["b"] > run["q"]["c"] > 0.25 - 1e-15  # moved by ulps only
    write_run(tmp_path / "r.run", run)
    assert list(read_run(tmp_path / "r.run")["q"]) == ["a", "b", "c", "d"]  # trec_eval's rule reads the same order
    qrels = {"q": {"a": 2}}
    assert evaluate_run(qrels, run, "trec-dl").means["mrr@10-l2"] == 1.0


def test_the_report_says_ties_were_broken(collection):
    class Constant(LengthScorer):
        def score_pairs(self, queries, passages, *, batch_size, show_progress):
            return np.ones(len(passages), dtype=np.float32)

    report, run = evaluate_reranking(collection, "bm25", Constant(), model_name="constant", depth=3)
    assert list(run["q1"]) == ["a", "b", "c", "e"]  # the first stage's order, as the first stage ranked them
    assert any("2 model score(s) tied" in warning for warning in report.warnings)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_model_scoring_nan_or_inf_is_refused_and_nothing_is_written(collection, tmp_path, bad):
    class Broken(LengthScorer):
        def score_pairs(self, queries, passages, *, batch_size, show_progress):
            scores = np.ones(len(passages), dtype=np.float32)
            scores[1] = bad
            return scores

    with pytest.raises(
        NonFiniteScoresError,
        match=r"t/N2/checkpoint-1: the model scored 1 of 4 pairs NaN or infinite "
        r"\(first: query 'q1', passage 'b'\).*nothing was written",
    ):
        evaluate_reranking(collection, "bm25", Broken(), model_name="t/N2/checkpoint-1", depth=3)


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
    rows = {
        line.split()[0]: line
        for line in report.table().splitlines()
        if line.startswith("  ") and "@" in line.split()[0]
    }
    assert set(rows) == set(report.metrics)
    assert not any(mark in row for row in rows.values() for mark in "▲▼")  # nothing is significant on 2 queries


def test_first_stage_only(collection):
    report, run = evaluate_reranking(collection, "bm25", depth=2)
    assert report.model is None and report.pairs == 0 and report.significance == {}
    assert run is collection.runs["bm25"]
    # q1: b (grade 3) at rank 2 -> MRR 1/2; q2: d at rank 1 -> 1
    assert report.metrics["mrr@10-l2"] == pytest.approx(0.75)
