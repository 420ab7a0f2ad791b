"""Dense retrieval: exact top-k against brute force, chunking, ties, the embedding cache, and
reranking from cached embeddings (EmbeddingScorer)."""

import logging

import numpy as np
import pytest
import torch

from hf_rerank.data.collection import IRCollection
from hf_rerank.evaluation.rerank import rerank
from hf_rerank.inference.dense import CorpusEmbeddings, EmbeddingScorer, dense_retrieve, encode_corpus
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
