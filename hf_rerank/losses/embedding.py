"""Embedding losses for bi-encoders: they take embeddings, not scores.

- ``mnrl``: in-batch negatives InfoNCE (sentence-transformers' MultipleNegativesRankingLoss);
- ``triplet``: triplet margin loss (sentence-transformers' TripletLoss).

Inputs are 2-D float tensors ``(rows, dim)``; see each function. Distilling an embedding model
from a teacher uses the score losses of this package on its cosine scores instead
(:mod:`hf_rerank.training.embedding`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from hf_rerank.errors import UsageError


def _check_embeddings(name: str, *tensors: torch.Tensor | None) -> None:
    present = [t for t in tensors if t is not None]
    for tensor in present:
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.dim() != 2:
            raise TypeError(f"{name}: embeddings must be 2-D floating-point tensors (rows, dim)")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name}: embeddings contain NaN or Inf")
    if len({t.shape[1] for t in present}) > 1:
        raise ValueError(f"{name}: embeddings have different dimensions {[t.shape[1] for t in present]}")
    if present[0].shape[0] == 0:
        raise ValueError(f"{name}: empty batch")


def in_batch_infonce(
    queries: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    *,
    temperature: float = 0.05,
    query_offset: int = 0,
) -> torch.Tensor:
    """In-batch negatives InfoNCE (sentence-transformers' MultipleNegativesRankingLoss).

    Inputs:

    ============  =========  ===========================================================
    argument      shape      meaning
    ============  =========  ===========================================================
    queries       (B, d)     query embeddings (any scale: they are L2-normalised here)
    positives     (P, d)     passage embeddings; row ``query_offset + i`` is query i's
                             positive, every other row is a negative for it (P >= B)
    negatives     (N, d)     optional extra (hard) negatives, shared by every query
    temperature   float > 0  cosine similarities are divided by it (0.05 = ST's scale 20)
    query_offset  int        where this batch's positives start in ``positives`` (under
                             DDP, ``rank * B`` when ``positives`` are gathered from all ranks)
    ============  =========  ===========================================================

    Formula, with ``c`` the cosine similarity and ``C = [positives; negatives]``::

        loss = mean_i  -log softmax_j( c(q_i, C_j) / temperature )_{query_offset + i}

    The same passage text appearing twice in a batch (two queries sharing a positive) is a
    false negative; batches without duplicate queries (:class:`~hf_rerank.data.samplers.NoDuplicateQuerySampler`)
    avoid the common case.
    """
    _check_embeddings("in_batch_infonce", queries, positives, negatives)
    if not temperature > 0:
        raise UsageError(f"in_batch_infonce: temperature must be > 0, got {temperature}")
    if positives.shape[0] < query_offset + queries.shape[0]:
        raise ValueError(
            f"in_batch_infonce: {positives.shape[0]} positives for {queries.shape[0]} queries at offset {query_offset}"
        )
    candidates = positives if negatives is None else torch.cat([positives, negatives])
    scores = F.normalize(queries, dim=-1) @ F.normalize(candidates, dim=-1).T / temperature
    targets = torch.arange(queries.shape[0], device=queries.device) + query_offset
    return F.cross_entropy(scores, targets)


DISTANCES = ("euclidean", "cosine")


def triplet_margin(
    anchors: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    *,
    distance: str = "euclidean",
    margin: float = 5.0,
) -> torch.Tensor:
    """Triplet loss (sentence-transformers' TripletLoss; arXiv 2506.18535 used Euclidean, margin 5).

    Inputs:

    =========  ======  ==============================================================
    argument   shape   meaning
    =========  ======  ==============================================================
    anchors    (B, d)  query embeddings (used as they are: not normalised)
    positives  (B, d)  row i is the positive of anchor i
    negatives  (B, d)  row i is the negative of anchor i
    distance   str     ``euclidean`` (``||a - b||``) or ``cosine`` (``1 - cos(a, b)``)
    margin     float   how much farther the negative must be than the positive
    =========  ======  ==============================================================

    Formula::

        loss = mean_i  max(0, dist(a_i, p_i) - dist(a_i, n_i) + margin)

    With normalised embeddings (all-MiniLM-L6-v2) Euclidean distances lie in [0, 2], so a margin
    of 5 can never be met: every triplet keeps contributing gradient.
    """
    _check_embeddings("triplet_margin", anchors, positives, negatives)
    if not anchors.shape == positives.shape == negatives.shape:
        raise ValueError(
            f"triplet_margin: shapes differ: {tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}"
        )
    if distance == "euclidean":
        positive_distance = (anchors - positives).norm(dim=-1)
        negative_distance = (anchors - negatives).norm(dim=-1)
    elif distance == "cosine":
        positive_distance = 1 - F.cosine_similarity(anchors, positives, dim=-1)
        negative_distance = 1 - F.cosine_similarity(anchors, negatives, dim=-1)
    else:
        raise UsageError(f"triplet_margin: distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
    return (positive_distance - negative_distance + margin).clamp(min=0.0).mean()


#: Embedding loss name -> function; ``mnrl`` needs (query, positive) pairs, ``triplet`` triplets.
EMBEDDING_LOSSES: dict[str, Callable[..., torch.Tensor]] = {"mnrl": in_batch_infonce, "triplet": triplet_margin}
