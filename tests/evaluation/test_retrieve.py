"""Dense retrieval: exact top-k against brute force, chunking, ties, the embedding cache,
reranking from cached embeddings, the retrieval report, and the union of collections."""

import json
import logging

import numpy as np
import pytest
import torch

from hf_rerank.data.collection import IRCollection
from hf_rerank.evaluation.report import write_report
from hf_rerank.evaluation.rerank import rerank
from hf_rerank.evaluation.retrieve import (
    CorpusEmbeddings,
    EmbeddingScorer,
    dense_retrieve,
    encode_corpus,
    evaluate_retrieval,
)
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.precision import native_bf16


class TableEncoder:
    """A stand-in bi-encoder: each text has a fixed vector; counts the texts it encodes."""

    device = torch.device("cpu")

    def __init__(self, vectors):
        self.vectors = {text: list(map(float, vector)) for text, vector in vectors.items()}
        self.encoded = 0

    def encode(self, texts, *, batch_size, show_progress, description):
        self.encoded += len(texts)
        return torch.tensor([self.vectors[text] for text in texts], dtype=torch.float32)


@pytest.fixture
def random_table():
    """40 passages ``p0..p39`` and 5 queries ``q0..q4`` with random 8-dim vectors."""
    generator = np.random.default_rng(0)
    passages = {f"p{i}": generator.normal(size=8) for i in range(40)}
    queries = {f"q{i}": generator.normal(size=8) for i in range(5)}
    return passages, queries, TableEncoder({**passages, **queries})


def brute_force(passages, queries, k):
    """``{qid: [pid, ...]}`` by a float64 numpy argsort of cosines (stable: ties in corpus order)."""
    pids = list(passages)
    corpus = np.array([passages[p] for p in pids])
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    ranked = {}
    for qid, vector in queries.items():
        scores = corpus @ (vector / np.linalg.norm(vector))
        ranked[qid] = [pids[i] for i in np.argsort(-scores, kind="stable")[:k]]
    return ranked


def retrieve(table, k, **options):
    passages, queries, encoder = table
    embeddings = encode_corpus(encoder, {p: p for p in passages}, show_progress=False)
    return dense_retrieve(encoder, {q: q for q in queries}, embeddings, k=k, show_progress=False, **options)


def test_top_k_equals_brute_force_with_float32_cosines(random_table):
    run = retrieve(random_table, k=7, precision="fp32")
    assert {qid: list(ranked) for qid, ranked in run.items()} == brute_force(*random_table[:2], k=7)
    passages, queries, _ = random_table
    q, p = queries["q3"], passages[list(run["q3"])[0]]
    assert run["q3"][list(run["q3"])[0]] == pytest.approx(q @ p / np.linalg.norm(q) / np.linalg.norm(p), abs=1e-6)
    assert all(isinstance(score, float) for score in run["q3"].values())


def test_k_larger_than_the_corpus_returns_every_passage(random_table):
    run = retrieve(random_table, k=1000, precision="fp32")
    assert all(len(ranked) == 40 for ranked in run.values())
    assert {qid: list(ranked) for qid, ranked in run.items()} == brute_force(*random_table[:2], k=40)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 40])
def test_chunking_changes_nothing(random_table, chunk_size):
    whole = retrieve(random_table, k=10, precision="fp32", chunk_size=1 << 20)
    chunked = retrieve(random_table, k=10, precision="fp32", chunk_size=chunk_size)
    assert chunked == whole
    assert {qid: list(ranked) for qid, ranked in chunked.items()} == {
        qid: list(ranked) for qid, ranked in whole.items()
    }


@pytest.mark.skipif(
    not native_bf16("cpu"), reason="this CPU has no native bf16 (tests/test_precision.py covers the refusal)"
)
def test_bf16_products_give_the_float32_run(random_table):
    assert retrieve(random_table, k=5, precision="bf16", chunk_size=6) == retrieve(random_table, k=5, precision="fp32")


def test_emulated_precisions_are_refused(random_table, monkeypatch):
    from hf_rerank import precision

    monkeypatch.setattr(precision, "native_bf16", lambda device_type: False)
    for asked in ("fp16", "bf16"):
        with pytest.raises(precision.PrecisionError, match="Use --precision auto"):
            retrieve(random_table, k=5, precision=asked)


def test_ties_follow_corpus_order_whatever_the_chunking():
    encoder = TableEncoder({"q": [1, 0], "a": [0, 1], "b": [1, 1], "c": [0, 1], "d": [1, 1], "e": [-1, 0]})
    embeddings = encode_corpus(encoder, {pid: pid for pid in "abcde"}, show_progress=False)
    for chunk_size in (1, 2, 5):
        run = dense_retrieve(
            encoder, {"q": "q"}, embeddings, k=4, chunk_size=chunk_size, precision="fp32", show_progress=False
        )
        assert list(run["q"]) == ["b", "d", "a", "c"]


def test_bad_arguments_are_named(random_table):
    with pytest.raises(ValueError, match="k and chunk_size must be >= 1"):
        retrieve(random_table, k=0)
    with pytest.raises(ValueError, match="corpus is empty"):
        encode_corpus(random_table[2], {}, show_progress=False)
    with pytest.raises(ValueError, match="embeddings of shape"):
        CorpusEmbeddings(["a", "b"], torch.zeros(3, 4))


# --- the embedding cache, with a real (tiny, random) BERT -----------------------------------

CORPUS = {"p1": "cats live for fifteen years", "p2": "dogs bark at night", "p3": "water boils at 100 C"}


@pytest.fixture(scope="module")
def tiny(tiny_encoder_dir):
    return BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp32")


def test_cache_hit_returns_the_same_embeddings_without_encoding(tiny, tmp_path, monkeypatch, caplog):
    first = encode_corpus(tiny, CORPUS, cache_dir=tmp_path, show_progress=False)
    assert len(list(tmp_path.glob("corpus-*.pt"))) == 1
    torch.testing.assert_close(first.embeddings.norm(dim=-1), torch.ones(3))

    def no_encoding(*args, **kwargs):
        raise AssertionError("a cache hit must not encode")

    monkeypatch.setattr(tiny, "encode", no_encoding)
    with caplog.at_level(logging.INFO, logger="hf_rerank"):
        again = encode_corpus(tiny, CORPUS, cache_dir=tmp_path, show_progress=False)
    assert again.pids == ["p1", "p2", "p3"] and torch.equal(again.embeddings, first.embeddings)
    assert "loaded 3 embeddings from cache" in caplog.text and str(tmp_path) in caplog.text


def test_changed_text_weights_or_length_miss_the_cache(tiny, tiny_encoder_dir, tmp_path):
    encode_corpus(tiny, CORPUS, cache_dir=tmp_path, show_progress=False)
    encode_corpus(tiny, {**CORPUS, "p2": "dogs bark at dawn"}, cache_dir=tmp_path, show_progress=False)
    assert len(list(tmp_path.glob("corpus-*.pt"))) == 2
    same = BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp32")
    encode_corpus(same, CORPUS, cache_dir=tmp_path, show_progress=False)  # same weights loaded again: a hit
    assert len(list(tmp_path.glob("corpus-*.pt"))) == 2
    shorter = BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp32", max_length=16)
    encode_corpus(shorter, CORPUS, cache_dir=tmp_path, show_progress=False)
    assert len(list(tmp_path.glob("corpus-*.pt"))) == 3
    tuned = BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp32")
    with torch.no_grad():
        tuned.model.encoder.layer[1].output.dense.bias[0] += 1e-3  # one fine-tuning step's worth
    embeddings = encode_corpus(tuned, CORPUS, cache_dir=tmp_path, show_progress=False)
    assert len(list(tmp_path.glob("corpus-*.pt"))) == 4
    assert not torch.equal(embeddings.embeddings, encode_corpus(tiny, CORPUS, show_progress=False).embeddings)


def test_unreadable_cache_file_is_replaced(tiny, tmp_path, caplog):
    first = encode_corpus(tiny, CORPUS, cache_dir=tmp_path, show_progress=False)
    (path,) = tmp_path.glob("corpus-*.pt")
    path.write_bytes(b"not a torch file")
    again = encode_corpus(tiny, CORPUS, cache_dir=tmp_path, show_progress=False)
    assert "unreadable embedding cache" in caplog.text
    torch.testing.assert_close(again.embeddings, first.embeddings)
    assert encode_corpus(tiny, CORPUS, cache_dir=tmp_path, show_progress=False).pids == first.pids


# --- reranking from the same embeddings --------------------------------------------------------


@pytest.fixture
def toy():
    return IRCollection(
        name="toy",
        queries={"q1": "how long do cats live", "q2": "why do dogs bark"},
        corpus={**CORPUS, "p4": "cats purr when content", "p5": "a dog barks to warn"},
        qrels={"q1": {"p1": 3, "p4": 1}, "q2": {"p5": 2}},
        runs={"bm25": {"q1": {"p4": 9.0, "p1": 8.0, "p2": 7.0, "p3": 6.0}, "q2": {"p2": 5.0, "p5": 4.0, "ghost": 3.0}}},
    )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_reranking_with_corpus_embeddings_scores_as_score_pairs(tiny_encoder_dir, toy, precision):
    if precision == "bf16" and not native_bf16("cpu"):
        pytest.skip("this CPU has no native bf16")
    model = BiEncoder.from_pretrained(tiny_encoder_dir, precision=precision)
    embeddings = encode_corpus(model, toy.corpus, batch_size=2, show_progress=False)
    reused = rerank(toy, "bm25", EmbeddingScorer(model, toy.corpus, embeddings), depth=3, show_progress=False)
    direct = rerank(toy, "bm25", model, depth=3, show_progress=False)
    assert reused.pairs == direct.pairs == 5
    tolerance = 1e-5 if precision == "fp32" else 2e-2  # bf16: passages padded in other batches round differently
    for qid, scored in direct.run.items():
        assert set(reused.run[qid]) == set(scored)
        np.testing.assert_allclose([reused.run[qid][p] for p in scored], list(scored.values()), atol=tolerance)
    if precision == "fp32":
        assert {q: list(r) for q, r in reused.run.items()} == {q: list(r) for q, r in direct.run.items()}


def test_embeddings_of_another_corpus_are_refused(tiny, toy):
    embeddings = encode_corpus(tiny, CORPUS, show_progress=False)  # lacks p4 and p5
    with pytest.raises(ValueError, match="have no precomputed embedding"):
        rerank(toy, "bm25", EmbeddingScorer(tiny, toy.corpus, embeddings), depth=3, show_progress=False)


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

#: sentence-transformers 5 (fp32) ``util.semantic_search`` top-1000 with all-MiniLM-L6-v2 over the 4,297
#: passages of DL19's BM25 top-100 (over all 10,852 passages: nDCG@10 0.6407, where ``search`` on the
#: same embeddings returned the same top-1000 sets and top-10 orders for all 43 queries, in fp32 and
#: with bf16 products).
POOL_DENSE = {"ndcg@10": 0.6424, "map@100-l2": 0.3104}


@pytest.mark.slow
def test_minilm_on_dl19_one_encoding_serves_retrieval_and_reranking(trec_dl, tmp_path):
    """all-MiniLM-L6-v2 over the BM25 pool of DL19: dense retrieval as sentence-transformers ranks it,
    and BM25's top-100 reranked from the same (cached) embeddings at sentence-transformers' nDCG@10
    of 0.6424 (as in tests/test_cli.py)."""
    from hf_rerank.evaluation.report import evaluate_reranking
    from hf_rerank.models.resolve import bundled_model_path

    dl19 = IRCollection.from_dir(trec_dl / "dl19")
    pool = {pid for ranked in dl19.runs["bm25"].values() for pid in ranked}
    collection = IRCollection(
        "dl19-bm25-pool",
        dl19.queries,
        {p: t for p, t in dl19.corpus.items() if p in pool},
        dl19.qrels,
        {"bm25": dl19.runs["bm25"]},
    )
    model = BiEncoder.from_pretrained(bundled_model_path())
    report, run = evaluate_retrieval(
        collection, model, model_name="minilm", k=1000, cache_dir=tmp_path, show_progress=False
    )
    assert report.corpus == 4297 and report.queries == 43 and all(len(r) == 1000 for r in run.values())
    assert {name: report.metrics[name] for name in POOL_DENSE} == pytest.approx(POOL_DENSE, abs=0.005)
    embeddings = encode_corpus(model, collection.corpus, cache_dir=tmp_path, show_progress=False)  # a cache hit
    reranked, _ = evaluate_reranking(
        collection, "bm25", EmbeddingScorer(model, collection.corpus, embeddings), depth=100
    )
    assert reranked.metrics["ndcg@10"] == pytest.approx(0.6424, abs=0.005)
