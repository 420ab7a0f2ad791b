"""Hard-negative mining from a dense ranking: the rank window, every positive left out, per-query seeding."""

import logging
import math

import numpy as np
import pytest
import torch

from hf_rerank.data.collection import IRCollection
from hf_rerank.mining.dense import mine_hard_negatives


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
