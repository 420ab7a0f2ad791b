"""Ranking losses: one registry of score losses, read by the trainers and the argument parser.

Score losses (cross-encoders, and embedding models scoring lists by cosine) are objects
(:class:`~hf_rerank.losses.base.Loss`) built by name with their options::

    loss = build_loss("kl", temperature=0.05)
    value = loss(scores, teacher_scores, mask)     # scores, targets, mask: (B, G)

One file per family, each documenting its inputs: :mod:`~hf_rerank.losses.pointwise` (``bce``,
``mse``), :mod:`~hf_rerank.losses.pairwise` (``ranknet``, ``margin``, ``margin_mse``),
:mod:`~hf_rerank.losses.listwise` (``listwise``, ``listnet``, ``kl``, ``lambdaloss``). Each loss
says whether it needs lists (``grouped``) and whether it learns from relevance grades or from a
teacher's scores (``target``). Embedding-only losses (``mnrl``, ``triplet``) take embeddings:
:mod:`~hf_rerank.losses.embedding`.
"""

from __future__ import annotations

from hf_rerank.errors import UsageError
from hf_rerank.losses.base import TARGETS, Loss
from hf_rerank.losses.embedding import DISTANCES, EMBEDDING_LOSSES, in_batch_infonce, triplet_margin
from hf_rerank.losses.listwise import (
    GAINS,
    KLDistillation,
    LambdaLoss,
    ListNet,
    SoftmaxCrossEntropy,
    kl_distillation,
    lambda_loss,
    listnet,
    listwise_softmax_ce,
)
from hf_rerank.losses.pairwise import MarginMSE, MarginRanking, RankNet, margin_mse, pairwise_margin, pairwise_ranknet
from hf_rerank.losses.pointwise import BinaryCrossEntropy, MeanSquaredError, pointwise_bce, pointwise_mse

__all__ = [
    "DISTANCES",
    "EMBEDDING_LOSSES",
    "GAINS",
    "LOSSES",
    "TARGETS",
    "Loss",
    "build_loss",
    "describe_losses",
    "in_batch_infonce",
    "kl_distillation",
    "lambda_loss",
    "listnet",
    "listwise_softmax_ce",
    "margin_mse",
    "pairwise_margin",
    "pairwise_ranknet",
    "pointwise_bce",
    "pointwise_mse",
    "triplet_margin",
]

#: Loss name -> class; ``build_loss`` instantiates it with options.
LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        BinaryCrossEntropy,
        MeanSquaredError,
        RankNet,
        MarginRanking,
        MarginMSE,
        SoftmaxCrossEntropy,
        ListNet,
        KLDistillation,
        LambdaLoss,
    )
}


def build_loss(name: str, **options) -> Loss:
    """The loss registered as ``name`` with ``options`` (only options that loss has; unset ones keep
    their defaults). Raises ``ValueError`` naming the valid losses or the loss's options."""
    cls = LOSSES.get(name)
    if cls is None:
        raise UsageError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    unknown = sorted(set(options).difference(cls.option_names()))
    if unknown:
        accepted = ", ".join(cls.option_names()) or "none"
        raise UsageError(f"loss {name!r} has no option {', '.join(unknown)} (its options: {accepted})")
    return cls(**options)


def describe_losses() -> str:
    """One line per registered loss, ``name: summary [options; target]``, for ``--help``."""
    lines = []
    for name, cls in LOSSES.items():
        options = ", ".join(cls.option_names()) or "no options"
        lines.append(
            f"{name}: {cls.summary} [{'lists' if cls.grouped else 'pairs or lists'}; learns from "
            f"{'a teacher' if cls.target == 'teacher' else 'grades'}; {options}]"
        )
    return "; ".join(lines)
