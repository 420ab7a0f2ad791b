"""Pointwise losses: each (query, passage) score on its own.

- ``bce``: binary cross-entropy against relevance grades scaled to [0, 1] (monoBERT);
- ``mse``: squared error against a teacher's score (sentence-transformers' cross-encoder
  ``MSELoss``), for distillation.

Inputs: ``scores`` and ``targets`` of any equal shape, ``(N,)`` pairs or ``(B, G)`` lists; with a
``mask`` only the real positions count. Conventions in :mod:`hf_rerank.losses.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hf_rerank.errors import UsageError
from hf_rerank.losses.base import Loss
from hf_rerank.losses.checks import check_scores


def pointwise_bce(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, *, max_grade: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged over the real items.

    Formula, with ``t = clip(label / max_grade, 0, 1)`` and ``sigma`` the logistic function::

        loss = mean_k  -[ t_k * log sigma(s_k) + (1 - t_k) * log(1 - sigma(s_k)) ]

    Graded labels become soft targets: with ``max_grade=3`` grade 2 is target 2/3 (train with
    ``--graded_labels`` and the run sets ``max_grade`` to the highest grade of its labels, so every
    grade keeps its own target). Grades above ``max_grade`` clip to 1, negative ones to 0. With
    ``max_grade=1`` and 0/1 labels this is plain BCE.
    """
    labels, mask = check_scores("bce", scores, labels, mask, grouped=False)
    if not max_grade > 0:
        raise UsageError(f"bce: max_grade must be > 0, got {max_grade}")
    targets = (labels[mask] / max_grade).clamp(0.0, 1.0)
    return F.binary_cross_entropy_with_logits(scores[mask], targets, reduction="mean")


def pointwise_mse(
    scores: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None, *, scale: float = 1.0
) -> torch.Tensor:
    """Mean squared error between the student's scores and ``scale`` x the teacher's, over the real items::

        loss = mean_k (s_k - scale * t_k) ** 2

    ``scale`` maps the teacher's range onto logits (cosine teachers lie in [-1, 1]).
    """
    teacher, mask = check_scores("mse", scores, teacher, mask, grouped=False)
    return F.mse_loss(scores[mask], scale * teacher[mask])


@dataclass(frozen=True)
class BinaryCrossEntropy(Loss):
    """:func:`pointwise_bce`; option ``max_grade``."""

    name = "bce"
    summary = "pointwise binary cross-entropy on grades / max_grade (monoBERT; the first paper's)"
    grouped = False
    target = "labels"
    max_grade: float = 1.0

    def compute(self, scores, targets, mask):
        return pointwise_bce(scores, targets, mask, max_grade=self.max_grade)


@dataclass(frozen=True)
class MeanSquaredError(Loss):
    """:func:`pointwise_mse`; option ``scale``."""

    name = "mse"
    summary = "pointwise MSE to scale x the teacher's score (distillation)"
    grouped = False
    target = "teacher"
    scale: float = 1.0

    def compute(self, scores, targets, mask):
        return pointwise_mse(scores, targets, mask, scale=self.scale)
