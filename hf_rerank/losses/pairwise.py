"""Pairwise losses: pairs of candidates of one query.

- ``ranknet``: logistic loss on every pair a grade orders (RankNet);
- ``margin``: hinge on the same pairs (margin ranking loss);
- ``margin_mse``: the student's margin ``s_0 - s_j`` regressed on the teacher's ``t_0 - t_j``
  (Hofstätter et al. 2020; sentence-transformers' cross-encoder ``MarginMSELoss``), distillation.

Inputs: ``scores``, ``targets`` ``(B, G)`` and an optional boolean ``mask`` of real candidates
(:mod:`hf_rerank.losses.checks`). For ``margin_mse`` column 0 is each row's anchor (the positive,
or the teacher's best candidate) and columns ``1..`` its negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hf_rerank.losses.base import Loss
from hf_rerank.losses.checks import check_scores, ordered_pairs


def pairwise_ranknet(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """RankNet over the set P of real same-row pairs ``(b, i, j)`` with ``labels[b,i] > labels[b,j]``::

        loss = 1/|P| * sum_P  log(1 + exp(-(s_bi - s_bj)))

    The mean is over all pairs of the batch, so rows with more pairs weigh more (grades 3,2,0,0
    give 5 pairs). Ties give no pair. Raises ``ValueError`` if the batch has no ordered pair.
    """
    labels, mask = check_scores("ranknet", scores, labels, mask, grouped=True)
    diffs, pairs = ordered_pairs(scores, labels, mask)
    if not bool(pairs.any()):
        raise ValueError("ranknet: no pair with different labels in the batch; loss undefined")
    return F.softplus(-diffs[pairs]).mean()


def pairwise_margin(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, *, margin: float = 1.0
) -> torch.Tensor:
    """Hinge over the same pair set P as :func:`pairwise_ranknet`::

        loss = 1/|P| * sum_P  max(0, margin - (s_bi - s_bj))

    Pairs separated by at least ``margin`` give 0 (they still count in ``|P|``).
    """
    labels, mask = check_scores("margin", scores, labels, mask, grouped=True)
    diffs, pairs = ordered_pairs(scores, labels, mask)
    if not bool(pairs.any()):
        raise ValueError("margin: no pair with different labels in the batch; loss undefined")
    return (margin - diffs[pairs]).clamp(min=0.0).mean()


def margin_mse(
    scores: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None, *, scale: float = 1.0
) -> torch.Tensor:
    """MarginMSE over every real candidate ``j >= 1`` of each row, anchored at column 0::

        loss = mean_{b, j >= 1 real} ( (s_b0 - s_bj) - scale * (t_b0 - t_bj) ) ** 2

    With ``scale=1`` and full rows this is sentence-transformers' ``MarginMSELoss`` given the
    teacher's scores ``[t_pos, t_neg_1, ...]``. Column 0 must be real in every row.
    """
    teacher, mask = check_scores("margin_mse", scores, teacher, mask, grouped=True)
    if not bool(mask[:, 0].all()):
        raise ValueError("margin_mse: column 0 (each row's anchor) must be a real candidate in every row")
    student_margins = scores[:, :1] - scores[:, 1:]
    teacher_margins = scale * (teacher[:, :1] - teacher[:, 1:])
    real = mask[:, 1:]
    return F.mse_loss(student_margins[real], teacher_margins[real])


@dataclass(frozen=True)
class RankNet(Loss):
    """:func:`pairwise_ranknet`."""

    name = "ranknet"
    summary = "pairwise logistic loss on every pair the grades order (RankNet)"
    grouped = True
    target = "labels"

    def compute(self, scores, targets, mask):
        return pairwise_ranknet(scores, targets, mask)


@dataclass(frozen=True)
class MarginRanking(Loss):
    """:func:`pairwise_margin`; option ``margin``."""

    name = "margin"
    summary = "pairwise hinge: better candidates must outscore worse ones by margin"
    grouped = True
    target = "labels"
    margin: float = 1.0

    def compute(self, scores, targets, mask):
        return pairwise_margin(scores, targets, mask, margin=self.margin)


@dataclass(frozen=True)
class MarginMSE(Loss):
    """:func:`margin_mse`; option ``scale``."""

    name = "margin_mse"
    summary = "MarginMSE: student margins s_0 - s_j regressed on scale x the teacher's (distillation)"
    grouped = True
    target = "teacher"
    scale: float = 1.0

    def compute(self, scores, targets, mask):
        return margin_mse(scores, targets, mask, scale=self.scale)
