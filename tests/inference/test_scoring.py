"""Pair scoring: a model's raw scores over a run's top-k (teacher runs), the same scores reranking ranks by."""

import numpy as np
import pytest

from hf_rerank.data.collection import IRCollection
from hf_rerank.evaluation.rerank import rerank
from hf_rerank.inference.scoring import NonFiniteScoresError, score_run
from tests.scorers import LengthScorer


@pytest.fixture
def collection():
    return IRCollection(
        name="toy",
        queries={"q1": "cats", "q2": "dogs"},
        corpus={"a": "x", "b": "xxx", "c": "xx", "d": "xxxx"},
        qrels={"q1": {"b": 2}},
        runs={
            "bm25": {
                "q1": {"a": 9.0, "b": 8.0, "c": 7.0, "ghost": 6.5, "d": 6.0},
                "q2": {"d": 1.0, "a": 0.5},
                "q3": {"a": 1.0},
            }
        },
    )


def test_score_run_holds_only_real_scores_of_the_top_k(collection):
    scorer = LengthScorer()
    teacher = score_run(collection, "bm25", scorer, depth=4, show_progress=False)
    assert teacher.run == {"q1": {"b": 3.0, "c": 2.0, "a": 1.0}, "q2": {"d": 4.0, "a": 1.0}}
    assert list(teacher.run["q1"]) == ["b", "c", "a"]  # trec_eval's order
    assert (teacher.pairs, teacher.skipped, teacher.queries_without_text) == (5, 1, ["q3"])  # ghost has no text
    assert scorer.pairs == [("cats", "x"), ("cats", "xxx"), ("cats", "xx"), ("dogs", "xxxx"), ("dogs", "x")]


def test_score_run_gives_the_scores_rerank_ranks_by(collection):
    teacher = score_run(collection, "bm25", LengthScorer(), depth=3, show_progress=False)
    reranked = rerank(collection, "bm25", LengthScorer(), depth=3, show_progress=False).run
    for qid, scores in teacher.run.items():
        assert list(reranked[qid])[: len(scores)] == list(scores)
        assert {pid: reranked[qid][pid] for pid in scores} == scores


def test_score_run_refuses_non_finite_scores(collection):
    class Broken:
        def score_pairs(self, queries, passages, *, batch_size, show_progress):
            return np.array([1.0, np.nan] + [0.0] * (len(passages) - 2), dtype=np.float32)

    with pytest.raises(NonFiniteScoresError, match="1 of 5 pairs NaN or infinite .first: query 'q1', passage 'b'"):
        score_run(collection, "bm25", Broken(), depth=4, show_progress=False)
