"""Embedding losses (mnrl, triplet) against hand-computed values."""

import math

import pytest
import torch

from hf_rerank.losses import EMBEDDING_LOSSES, in_batch_infonce, triplet_margin


def test_in_batch_infonce_hand_computed():
    queries = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # scale does not matter: cosine
    positives = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    c = 1 / math.sqrt(2)
    loss_1 = -math.log(math.exp(1) / (math.exp(1) + math.exp(c)))
    loss_2 = -math.log(math.exp(c) / (math.exp(0) + math.exp(c)))
    got = in_batch_infonce(queries, positives, temperature=1.0)
    assert got.item() == pytest.approx((loss_1 + loss_2) / 2, abs=1e-6)
    # temperature 0.5 doubles every similarity
    loss_1 = -math.log(math.exp(2) / (math.exp(2) + math.exp(2 * c)))
    loss_2 = -math.log(math.exp(2 * c) / (math.exp(0) + math.exp(2 * c)))
    assert in_batch_infonce(queries, positives, temperature=0.5).item() == pytest.approx(
        (loss_1 + loss_2) / 2, abs=1e-6
    )


def test_in_batch_infonce_hard_negatives_and_offset():
    queries = torch.tensor([[1.0, 0.0]])
    positives = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # query 0's positive is row 1 (offset 1)
    negatives = torch.tensor([[-1.0, 0.0]])
    expected = -math.log(math.exp(1) / (math.exp(0) + math.exp(1) + math.exp(-1)))
    got = in_batch_infonce(queries, positives, negatives, temperature=1.0, query_offset=1)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="positives for 1 queries at offset 2"):
        in_batch_infonce(queries, positives, query_offset=2)


def test_triplet_margin_euclidean_and_cosine_hand_computed():
    anchors = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    positives = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    negatives = torch.tensor([[6.0, 8.0], [0.0, 2.0]])
    # row 0: max(0, 5 - 10 + 5) = 0; row 1: max(0, 1 - 2 + 5) = 4
    assert triplet_margin(anchors, positives, negatives, margin=5.0).item() == pytest.approx(2.0)
    anchors = torch.tensor([[1.0, 0.0]])
    # cosine distance to positive 1 - 0 = 1, to negative 1 - 1 = 0: 1 - 0 + 0.5
    got = triplet_margin(anchors, torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 0.0]]), distance="cosine", margin=0.5)
    assert got.item() == pytest.approx(1.5)


def test_embedding_losses_reject_bad_input():
    good = torch.ones(2, 3)
    with pytest.raises(ValueError, match="distance must be"):
        triplet_margin(good, good, good, distance="manhattan")
    with pytest.raises(ValueError, match="shapes differ"):
        triplet_margin(good, good, torch.ones(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        in_batch_infonce(torch.full((2, 3), float("nan")), good)
    with pytest.raises(ValueError, match="temperature"):
        in_batch_infonce(good, good, temperature=0)
    with pytest.raises(TypeError, match="2-D"):
        in_batch_infonce(torch.ones(3), good)
    assert set(EMBEDDING_LOSSES) == {"mnrl", "triplet"}
