"""Ranking losses for reranker training: score losses (cross-encoders) and embedding losses (bi-encoders).

Every loss takes raw model **scores** (logits, higher = more relevant) and **labels**
(relevance grades, e.g. 0/1 or graded 0..3) as float tensors of the same shape and returns
a scalar tensor. Losses never tokenise and never call a model; they only compare numbers.

Shapes:

- pointwise (``"bce"``): any shape, typically ``(N,)`` query-passage pairs or ``(B, G)``.
- grouped (:data:`GROUPED_LOSSES`): ``(B, G)``, one row per query, ``G >= 2`` candidates
  per row (all rows the same size; there is no padding mask). Candidates may be in any order:
  the positive need not be at index 0.

Validation (all raise ``ValueError`` / ``TypeError`` with a message naming the loss): tensors
only, floating-point scores, equal shapes, non-empty, 2-D for grouped losses, finite scores
and labels. The finiteness check reads one boolean back from the device per call.

Use :func:`get_loss` to look a loss up by name; extra options (``temperature``, ``margin``,
``max_grade``) are keyword arguments of the returned function.

Embedding losses (:data:`EMBEDDING_LOSSES`, bi-encoders) take **embeddings** instead: query
embeddings ``(B, d)``, their positives' ``(B, d)`` and optionally negatives; see
:func:`in_batch_infonce` and :func:`triplet_margin`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "EMBEDDING_LOSSES",
    "GROUPED_LOSSES",
    "LOSSES",
    "get_loss",
    "in_batch_infonce",
    "listwise_softmax_ce",
    "pairwise_margin",
    "pairwise_ranknet",
    "pointwise_bce",
    "triplet_margin",
]


# --------------------------------------------------------------------------- validation
def _check(name: str, scores: torch.Tensor, labels: torch.Tensor, *, grouped: bool) -> torch.Tensor:
    """Validate inputs and return ``labels`` as a detached tensor of the scores' dtype."""
    if not isinstance(scores, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"{name}: scores and labels must be torch.Tensor, got "
            f"{type(scores).__name__} and {type(labels).__name__}"
        )
    if not scores.is_floating_point():
        raise TypeError(f"{name}: scores must be a floating-point tensor (raw logits), got {scores.dtype}")
    if scores.shape != labels.shape:
        raise ValueError(
            f"{name}: scores and labels must have the same shape, got "
            f"{tuple(scores.shape)} and {tuple(labels.shape)}"
        )
    if scores.numel() == 0:
        raise ValueError(f"{name}: got empty tensors of shape {tuple(scores.shape)}")
    if grouped:
        if scores.dim() != 2:
            raise ValueError(
                f"{name}: expects (B, G) tensors (one row per query group), got "
                f"{scores.dim()}-D shape {tuple(scores.shape)}"
            )
        if scores.shape[1] < 2:
            raise ValueError(f"{name}: each group needs at least 2 candidates, got G={scores.shape[1]}")
    if not bool(torch.isfinite(scores).all()):
        raise ValueError(f"{name}: scores contain NaN or Inf")
    labels = labels.detach().to(dtype=scores.dtype)
    if not bool(torch.isfinite(labels).all()):
        raise ValueError(f"{name}: labels contain NaN or Inf")
    return labels


def _pairs(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Score differences ``s_i - s_j`` of all same-row pairs with ``labels_i > labels_j``.

    Returns ``(diffs, mask)``: ``diffs`` is ``(B, G, G)`` with ``diffs[b, i, j] = s_bi - s_bj``
    and ``mask`` marks the pairs that count. Memory is ``O(B * G**2)``.
    """
    diffs = scores.unsqueeze(2) - scores.unsqueeze(1)
    mask = labels.unsqueeze(2) > labels.unsqueeze(1)
    return diffs, mask


# --------------------------------------------------------------------------- losses
def pointwise_bce(scores: torch.Tensor, labels: torch.Tensor, max_grade: float = 1.0) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged over all items (monoBERT-style pointwise loss).

    Inputs:

    =========  ======================  ==================================================
    argument   shape                   meaning
    =========  ======================  ==================================================
    scores     any, e.g. (N,), (B, G)  raw logits, one per query-passage pair
    labels     same as ``scores``      relevance grades (0/1, or graded 0..max_grade)
    max_grade  float > 0               grade that maps to target 1.0 (default 1.0)
    =========  ======================  ==================================================

    Formula, with ``t = clip(label / max_grade, 0, 1)`` and ``sigma`` the logistic function::

        loss = mean_k  -[ t_k * log sigma(s_k) + (1 - t_k) * log(1 - sigma(s_k)) ]

    Graded labels become soft targets: with ``max_grade=3`` grade 2 is target 2/3. Grades above
    ``max_grade`` clip to 1 and negative grades clip to 0. With the default ``max_grade=1`` and
    0/1 labels this is plain BCE on relevant/non-relevant pairs.
    """
    labels = _check("pointwise_bce", scores, labels, grouped=False)
    if not max_grade > 0:
        raise ValueError(f"pointwise_bce: max_grade must be > 0, got {max_grade}")
    targets = (labels / max_grade).clamp(0.0, 1.0)
    return F.binary_cross_entropy_with_logits(scores, targets, reduction="mean")


def listwise_softmax_ce(scores: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax cross-entropy over each group (InfoNCE / "localized contrastive estimation").

    Inputs:

    ===========  ========  ==============================================================
    argument     shape     meaning
    ===========  ========  ==============================================================
    scores       (B, G)    raw logits; row b holds the G candidates of query b
    labels       (B, G)    grades >= 0; the target distribution is each row normalised
    temperature  float > 0 scores are divided by it before the softmax (default 1.0)
    ===========  ========  ==============================================================

    Formula, per row b with ``y_b = labels[b] / sum_j labels[b, j]``::

        loss_b = - sum_j  y_bj * log_softmax(scores[b] / temperature)_j
        loss   = mean over rows whose labels are not all zero

    With one positive of label 1 and the rest 0, ``loss_b = -log softmax(s / T)_pos``, the usual
    softmax CE over the group; two positives of grades 2 and 1 get weights 2/3 and 1/3.
    Rows whose labels are all 0 carry no target and are skipped; if every row is all-zero the
    loss is undefined and a ``ValueError`` is raised. Negative labels are rejected.
    """
    labels = _check("listwise_softmax_ce", scores, labels, grouped=True)
    if not temperature > 0:
        raise ValueError(f"listwise_softmax_ce: temperature must be > 0, got {temperature}")
    if bool((labels < 0).any()):
        raise ValueError("listwise_softmax_ce: labels must be >= 0 (they are normalised into a distribution)")
    totals = labels.sum(dim=1)
    keep = totals > 0
    if not bool(keep.any()):
        raise ValueError("listwise_softmax_ce: every row has all-zero labels; no row has a target")
    log_probs = F.log_softmax(scores[keep] / temperature, dim=1)
    targets = labels[keep] / totals[keep].unsqueeze(1)
    return -(targets * log_probs).sum(dim=1).mean()


def pairwise_ranknet(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """RankNet logistic pairwise loss over all correctly-orderable pairs within each group.

    Inputs:

    ========  ======  ============================================================
    argument  shape   meaning
    ========  ======  ============================================================
    scores    (B, G)  raw logits; row b holds the G candidates of query b
    labels    (B, G)  grades; only their order within a row matters
    ========  ======  ============================================================

    Formula, over the set P of ordered pairs (b, i, j) with ``labels[b,i] > labels[b,j]``::

        loss = 1/|P| * sum_{(b,i,j) in P}  log(1 + exp(-(s_bi - s_bj)))     (= softplus)

    The mean is over all pairs of the batch (not per row first), so rows with more pairs
    weigh more; graded labels give more pairs (grades 3,2,0,0 -> 5 pairs). Ties give no pair.
    Raises ``ValueError`` if the batch has no pair with different labels.
    """
    labels = _check("pairwise_ranknet", scores, labels, grouped=True)
    diffs, mask = _pairs(scores, labels)
    if not bool(mask.any()):
        raise ValueError("pairwise_ranknet: no pair with different labels in the batch; loss undefined")
    return F.softplus(-diffs[mask]).mean()


def pairwise_margin(scores: torch.Tensor, labels: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Pairwise hinge (margin ranking) loss over all correctly-orderable pairs within each group.

    Inputs:

    ========  ======  ============================================================
    argument  shape   meaning
    ========  ======  ============================================================
    scores    (B, G)  raw logits; row b holds the G candidates of query b
    labels    (B, G)  grades; only their order within a row matters
    margin    float   required score gap between better and worse (default 1.0)
    ========  ======  ============================================================

    Formula, over the same pair set P as :func:`pairwise_ranknet`::

        loss = 1/|P| * sum_{(b,i,j) in P}  max(0, margin - (s_bi - s_bj))

    Pairs already separated by at least ``margin`` contribute 0 (and no gradient); they still
    count in ``|P|``. Raises ``ValueError`` if the batch has no pair with different labels.
    """
    labels = _check("pairwise_margin", scores, labels, grouped=True)
    diffs, mask = _pairs(scores, labels)
    if not bool(mask.any()):
        raise ValueError("pairwise_margin: no pair with different labels in the batch; loss undefined")
    return (margin - diffs[mask]).clamp(min=0.0).mean()


# --------------------------------------------------------------------------- embedding losses
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
    queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None = None, *,
    temperature: float = 0.05, query_offset: int = 0,
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
        raise ValueError(f"in_batch_infonce: temperature must be > 0, got {temperature}")
    if positives.shape[0] < query_offset + queries.shape[0]:
        raise ValueError(f"in_batch_infonce: {positives.shape[0]} positives for {queries.shape[0]} queries at offset {query_offset}")
    candidates = positives if negatives is None else torch.cat([positives, negatives])
    scores = F.normalize(queries, dim=-1) @ F.normalize(candidates, dim=-1).T / temperature
    targets = torch.arange(queries.shape[0], device=queries.device) + query_offset
    return F.cross_entropy(scores, targets)


DISTANCES = ("euclidean", "cosine")


def triplet_margin(
    anchors: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, *, distance: str = "euclidean", margin: float = 5.0,
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
        raise ValueError(f"triplet_margin: shapes differ: {tuple(anchors.shape)}, {tuple(positives.shape)}, {tuple(negatives.shape)}")
    if distance == "euclidean":
        positive_distance = (anchors - positives).norm(dim=-1)
        negative_distance = (anchors - negatives).norm(dim=-1)
    elif distance == "cosine":
        positive_distance = 1 - F.cosine_similarity(anchors, positives, dim=-1)
        negative_distance = 1 - F.cosine_similarity(anchors, negatives, dim=-1)
    else:
        raise ValueError(f"triplet_margin: distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
    return (positive_distance - negative_distance + margin).clamp(min=0.0).mean()


#: Embedding loss name -> function; ``mnrl`` needs (query, positive) pairs, ``triplet`` triplets.
EMBEDDING_LOSSES: dict[str, Callable[..., torch.Tensor]] = {"mnrl": in_batch_infonce, "triplet": triplet_margin}


# --------------------------------------------------------------------------- registry
LossFn = Callable[..., torch.Tensor]

#: Loss name -> function ``(scores, labels, **options) -> scalar tensor``.
LOSSES: dict[str, LossFn] = {
    "bce": pointwise_bce,
    "listwise": listwise_softmax_ce,
    "ranknet": pairwise_ranknet,
    "margin": pairwise_margin,
}

#: Losses that need ``(B, G)`` groups (one query per row) rather than independent pairs.
GROUPED_LOSSES: frozenset[str] = frozenset({"listwise", "ranknet", "margin"})


def get_loss(name: str) -> LossFn:
    """Return the loss function registered as ``name`` (see :data:`LOSSES`)."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(sorted(LOSSES))}") from None
