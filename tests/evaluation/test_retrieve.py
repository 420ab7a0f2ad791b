"""Evaluating dense retrieval: the retrieval report by hand, the union of collections, and
all-MiniLM-L6-v2 on DL19 against sentence-transformers."""

import json

import pytest

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.ranking import trec_order
from hf_rerank.evaluation.report import write_report
from hf_rerank.evaluation.retrieve import evaluate_retrieval
from hf_rerank.inference.dense import EmbeddingScorer, encode_corpus
from hf_rerank.models.bi_encoder import BiEncoder
from tests.inference.test_dense import TableEncoder

# --- the retrieval report ------------------------------------------------------------------


def test_evaluate_retrieval_known_answer(tmp_path):
    # q1 = e0 ranks a (1.0), b (0.71), c (0), d (-1); q2 = e1 ranks c (1), b (0.71), then a and d tied at 0.
    encoder = TableEncoder({"q1": [1, 0], "q2": [0, 1], "a": [1, 0], "b": [1, 1], "c": [0, 1], "d": [-1, 0]})
    collection = IRCollection(
        name="toy",
        queries={"q1": "q1", "q2": "q2", "q3": "q3"},
        corpus={p: p for p in "abcd"},
        qrels={"q1": {"b": 2, "a": 0}, "q2": {"c": 3, "d": 1}},
    )
    report, run = evaluate_retrieval(
        collection, encoder, model_name="table", k=3, precision="fp32", show_progress=False
    )
    assert list(run) == ["q1", "q2"]  # only judged queries are retrieved for
    assert list(run["q1"]) == ["a", "b", "c"] and list(run["q2"]) == ["c", "b", "a"]
    assert report.metrics["mrr@10-l2"] == pytest.approx((1 / 2 + 1) / 2)
    assert report.metrics["recall@100-l2"] == pytest.approx(1.0)
    assert (report.run, report.depth, report.corpus, report.queries, report.first_stage) == (
        "dense",
        3,
        4,
        2,
        report.metrics,
    )
    assert "dense retrieval top-3 by table over 4 passages (2 queries)" in report.table()
    write_report(report, run, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["model"] == "table" and saved["corpus"] == 4 and saved["metrics"]["mrr@10-l2"] == pytest.approx(0.75)
    assert (tmp_path / "run.trec").read_text().splitlines()[0] == "q1 Q0 a 1 1.0 table"  # every digit of the score


# --- the union of collections -----------------------------------------------------------------


def make(name, queries, corpus, qrels=None, runs=None):
    return IRCollection(name, queries, corpus, qrels or {}, runs or {}, {"corpus": f"/data/{name}/collection.tsv"})


def test_union_combines_corpora_queries_qrels_and_runs():
    dl19 = make("dl19", {"1": "cats"}, {"a": "A", "shared": "S"}, {"1": {"a": 2}}, {"bm25": {"1": {"a": 1.0}}})
    dl20 = make(
        "dl20",
        {"2": "dogs"},
        {"shared": "S", "b": "B"},
        {"2": {"b": 1}},
        {"bm25": {"2": {"b": 1.0}}, "tasb": {"2": {"b": 2.0}}},
    )
    union = IRCollection.union(dl19, dl20)
    assert union.name == "dl19+dl20"
    assert union.corpus == {"a": "A", "shared": "S", "b": "B"}
    assert union.queries == {"1": "cats", "2": "dogs"} and union.qrels == {"1": {"a": 2}, "2": {"b": 1}}
    assert union.runs == {"bm25": {"1": {"a": 1.0}, "2": {"b": 1.0}}, "tasb": {"2": {"b": 2.0}}}
    assert union.sources["corpus"] == "/data/dl19/collection.tsv + /data/dl20/collection.tsv"
    assert IRCollection.union(dl19, name="alone").corpus == dl19.corpus


def test_union_conflicts_name_the_id_and_both_collections():
    dl19 = make("dl19", {"1": "cats"}, {"a": "A"})
    with pytest.raises(
        ValueError, match=r"passage 'a' has different texts in 'dl19' \(/data/dl19/collection.tsv\) and 'x'"
    ):
        IRCollection.union(dl19, make("x", {"2": "dogs"}, {"a": "other A"}))
    with pytest.raises(ValueError, match="query '1' is in both 'dl19'"):
        IRCollection.union(dl19, make("y", {"1": "cats"}, {"a": "A"}))
    with pytest.raises(ValueError, match="judged query '3' is in both"):
        IRCollection.union(make("u", {}, {}, {"3": {"a": 1}}), make("v", {}, {}, {"3": {"b": 1}}))
    with pytest.raises(ValueError, match="query of run 'bm25' '3' is in both"):
        IRCollection.union(
            make("u", {}, {}, runs={"bm25": {"3": {"a": 1.0}}}), make("v", {}, {}, runs={"bm25": {"3": {"b": 1.0}}})
        )
    with pytest.raises(ValueError, match="at least one"):
        IRCollection.union()


# --- real data ------------------------------------------------------------------------------

#: sentence-transformers 5 (fp32) with all-MiniLM-L6-v2 over the 860 passages of DL19's BM25 top-20:
#: ``util.semantic_search`` top-1000 (every passage) scored as DENSE_TOP20, and BM25's top-20
#: reranked by ``util.cos_sim`` at nDCG@10 0.5932 (measured once with sentence-transformers 5.x; the
#: top-100 pool, 4,297 passages, gives 0.6424 both ways, as in tests/test_cli.py, at five times the cost).
DENSE_TOP20 = {"ndcg@10": 0.5932, "map@100-l2": 0.2015}


@pytest.mark.slow
def test_minilm_on_dl19_one_encoding_serves_retrieval_and_reranking(trec_dl, tmp_path):
    """all-MiniLM-L6-v2 over the BM25 top-20 pool of DL19: dense retrieval as sentence-transformers
    ranks it, and BM25's top-20 reranked from the same (cached) embeddings at sentence-transformers'
    nDCG@10."""
    from hf_rerank.evaluation.report import evaluate_reranking
    from hf_rerank.models.resolve import bundled_model_path

    dl19 = IRCollection.from_dir(trec_dl / "dl19")
    pool = {pid for ranked in dl19.runs["bm25"].values() for pid in list(trec_order(ranked))[:20]}
    collection = IRCollection(
        "dl19-bm25-top20-pool",
        dl19.queries,
        {p: t for p, t in dl19.corpus.items() if p in pool},
        dl19.qrels,
        {"bm25": dl19.runs["bm25"]},
    )
    model = BiEncoder.from_pretrained(bundled_model_path())
    report, run = evaluate_retrieval(
        collection, model, model_name="minilm", k=1000, cache_dir=tmp_path, show_progress=False
    )
    assert report.corpus == 860 and report.queries == 43 and all(len(r) == 860 for r in run.values())
    assert {name: report.metrics[name] for name in DENSE_TOP20} == pytest.approx(DENSE_TOP20, abs=0.005)
    embeddings = encode_corpus(model, collection.corpus, cache_dir=tmp_path, show_progress=False)  # a cache hit
    reranked, _ = evaluate_reranking(
        collection, "bm25", EmbeddingScorer(model, collection.corpus, embeddings), depth=20
    )
    assert reranked.metrics["ndcg@10"] == pytest.approx(0.5932, abs=0.005)
