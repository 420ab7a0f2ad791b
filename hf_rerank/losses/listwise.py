"""Listwise losses: a query's whole list of candidates at once.

- ``listwise``: softmax cross-entropy to the grades normalised into a distribution (InfoNCE /
  localized contrastive estimation);
- ``listnet``: cross-entropy to the softmax of the grades (ListNet's top-one probabilities;
  sentence-transformers' ``ListNetLoss``);
- ``kl``: KL divergence from the teacher's softmax to the student's, both at a temperature
  (sentence-transformers' ``DistillKLDivLoss``), distillation;
- ``lambdaloss``: LambdaLoss with the NDCG-Loss2++ weighting (Wang et al. 2018;
  sentence-transformers' ``LambdaLoss``), with the gains of :mod:`hf_rerank.evaluation.metrics`
  (linear) by default.

Inputs: ``scores``, ``targets`` ``(B, G)`` and an optional boolean ``mask`` of real candidates;
padded positions take no part in any softmax, pair or normaliser (:mod:`hf_rerank.losses.checks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hf_rerank.errors import UsageError
from hf_rerank.losses.base import Loss
from hf_rerank.losses.checks import check_scores, masked_log_softmax

GAINS = ("linear", "exponential")


def listwise_softmax_ce(
    scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, *, temperature: float = 1.0
) -> torch.Tensor:
    """Softmax cross-entropy per row, ``y_b = labels[b] / sum_j labels[b, j]`` over real candidates::

        loss_b = - sum_j  y_bj * log_softmax(scores[b] / temperature)_j
        loss   = mean over rows whose labels are not all zero

    One positive of label 1 gives ``-log softmax(s / T)_pos``; grades 2 and 1 weigh 2/3 and 1/3.
    Rows with all-zero labels carry no target and are skipped; if every row is, ``ValueError``.
    Negative labels are rejected.
    """
    labels, mask = check_scores("listwise", scores, labels, mask, grouped=True)
    if not temperature > 0:
        raise UsageError(f"listwise: temperature must be > 0, got {temperature}")
    labels = labels.masked_fill(~mask, 0.0)
    if bool((labels < 0).any()):
        raise ValueError("listwise: labels must be >= 0 (they are normalised into a distribution)")
    totals = labels.sum(dim=1)
    keep = totals > 0
    if not bool(keep.any()):
        raise ValueError("listwise: every row has all-zero labels; no row has a target")
    log_probs = masked_log_softmax(scores[keep] / temperature, mask[keep])
    targets = labels[keep] / totals[keep].unsqueeze(1)
    return -(targets * log_probs.masked_fill(~mask[keep], 0.0)).sum(dim=1).mean()


def listnet(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """ListNet: cross-entropy from ``softmax(labels)`` to ``softmax(scores)`` per row, mean over rows::

    loss = mean_b  - sum_j softmax(labels[b])_j * log_softmax(scores[b])_j
    """
    labels, mask = check_scores("listnet", scores, labels, mask, grouped=True)
    targets = torch.softmax(labels.masked_fill(~mask, float("-inf")), dim=1)
    log_probs = masked_log_softmax(scores, mask).masked_fill(~mask, 0.0)
    return -(targets * log_probs).sum(dim=1).mean()


def kl_distillation(
    scores: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None, *, temperature: float = 1.0
) -> torch.Tensor:
    """KL(teacher || student) between the softmaxes at ``temperature``, mean over rows, times ``T**2``::

        p_b = softmax(teacher[b] / T),  q_b = softmax(scores[b] / T)
        loss = T**2 * mean_b  sum_j p_bj * (log p_bj - log q_bj)

    The ``T**2`` factor keeps gradient sizes comparable across temperatures (Hinton et al. 2015),
    as sentence-transformers' ``DistillKLDivLoss`` does. A cosine teacher wants a small ``T``
    (0.05: a 0.1 cosine gap becomes a factor e**2).
    """
    teacher, mask = check_scores("kl", scores, teacher, mask, grouped=True)
    if not temperature > 0:
        raise UsageError(f"kl: temperature must be > 0, got {temperature}")
    teacher_log_probs = masked_log_softmax(teacher / temperature, mask)
    student_log_probs = masked_log_softmax(scores / temperature, mask)
    terms = teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)
    return temperature**2 * terms.masked_fill(~mask, 0.0).sum(dim=1).mean()


def lambda_loss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    gain: str = "linear",
    k: int | None = None,
    sigma: float = 1.0,
    mu: float = 10.0,
) -> torch.Tensor:
    """LambdaLoss with NDCG-Loss2++ weights (Wang et al., CIKM 2018), as sentence-transformers computes it.

    Per row, candidates are sorted by the student's score (rank ``r = 1..G``, discount
    ``D_r = log2(1 + r)``), ``G_i = gain(label_i) / maxDCG`` with ``gain`` ``linear`` (``g``, what
    trec_eval and :mod:`hf_rerank.evaluation.metrics` use) or ``exponential`` (``2**g - 1``,
    sentence-transformers' choice), and ``maxDCG`` the ideal DCG over the first ``k``. For every
    real pair ``(i, j)`` with ``label_i > label_j`` and ``i`` or ``j`` among the student's top ``k``::

        w_ij = mu * |1/D_|ri-rj| - 1/D_|ri-rj|+1| * |G_i - G_j|      (NDCG-Loss2)
             +      |1/D_ri - 1/D_rj|          * |G_i - G_j|      (LambdaRank)
        loss = - sum w_ij * log2 sigmoid(sigma * (s_i - s_j)) / (number of such pairs)

    ``k=None`` uses every candidate. Grades below 0 count as 0.
    """
    labels, mask = check_scores("lambdaloss", scores, labels, mask, grouped=True)
    if gain not in GAINS:
        raise UsageError(f"lambdaloss: gain must be one of {', '.join(GAINS)}, got {gain!r}")
    if k is not None and k < 1:
        raise UsageError(f"lambdaloss: k must be >= 1 or None, got {k}")
    size = scores.shape[1]
    padded_scores = scores.masked_fill(~mask, -1e16)
    padded_labels = labels.masked_fill(~mask, float("-inf"))
    sorted_scores, order = padded_scores.sort(descending=True, dim=1)
    ideal, _ = padded_labels.sort(descending=True, dim=1)
    by_prediction = torch.gather(padded_labels, 1, order)
    label_diffs = by_prediction[:, :, None] - by_prediction[:, None, :]
    pairs = torch.isfinite(label_diffs) & (label_diffs > 0)
    top = k or size
    in_top = torch.zeros((size, size), dtype=torch.bool, device=scores.device)
    in_top[:top, :] = True
    in_top[:, :top] = True

    def gains(values: torch.Tensor) -> torch.Tensor:
        values = values.clamp(min=0.0)
        return values if gain == "linear" else torch.pow(2.0, values) - 1

    positions = torch.arange(1, size + 1, device=scores.device, dtype=scores.dtype)
    discount = torch.log2(1.0 + positions)[None, :]
    max_dcg = (gains(ideal) / discount)[:, :top].sum(dim=1).clamp(min=1e-10)
    normalised = gains(by_prediction) / max_dcg[:, None]
    gain_gaps = (normalised[:, :, None] - normalised[:, None, :]).abs()
    distance = (positions[:, None] - positions[None, :]).abs().long()
    loss2 = (discount[0, (distance - 1).clamp(min=0)].pow(-1) - discount[0, distance].pow(-1)).abs()
    loss2.fill_diagonal_(0.0)
    lambda_rank = (discount[:, :, None].pow(-1) - discount[:, None, :].pow(-1)).abs()
    weights = mu * loss2[None] * gain_gaps + lambda_rank * gain_gaps
    diffs = (sorted_scores[:, :, None] - sorted_scores[:, None, :]).clamp(min=-1e8, max=1e8)
    terms = weights * F.logsigmoid(sigma * diffs) / math.log(2)
    counted = terms[pairs & in_top]
    return -counted.sum() / max(counted.numel(), 1)


@dataclass(frozen=True)
class SoftmaxCrossEntropy(Loss):
    """:func:`listwise_softmax_ce`; option ``temperature``."""

    name = "listwise"
    summary = "softmax cross-entropy over each list to its normalised grades (InfoNCE / LCE)"
    grouped = True
    target = "labels"
    temperature: float = 1.0

    def compute(self, scores, targets, mask):
        return listwise_softmax_ce(scores, targets, mask, temperature=self.temperature)


@dataclass(frozen=True)
class ListNet(Loss):
    """:func:`listnet`."""

    name = "listnet"
    summary = "ListNet: cross-entropy to the softmax of the grades"
    grouped = True
    target = "labels"

    def compute(self, scores, targets, mask):
        return listnet(scores, targets, mask)


@dataclass(frozen=True)
class KLDistillation(Loss):
    """:func:`kl_distillation`; option ``temperature``."""

    name = "kl"
    summary = "listwise KL from the teacher's softmax to the student's at a temperature (distillation)"
    grouped = True
    target = "teacher"
    temperature: float = 1.0

    def compute(self, scores, targets, mask):
        return kl_distillation(scores, targets, mask, temperature=self.temperature)


@dataclass(frozen=True)
class LambdaLoss(Loss):
    """:func:`lambda_loss`; options ``gain``, ``k``, ``sigma``, ``mu``."""

    name = "lambdaloss"
    summary = "LambdaLoss, NDCG-Loss2++ weights, linear gains as the metrics (or exponential)"
    grouped = True
    target = "labels"
    gain: str = "linear"
    k: int | None = None
    sigma: float = 1.0
    mu: float = 10.0

    def compute(self, scores, targets, mask):
        return lambda_loss(scores, targets, mask, gain=self.gain, k=self.k, sigma=self.sigma, mu=self.mu)
