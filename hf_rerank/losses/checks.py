"""Input checks shared by every score loss: one place that says what a loss accepts.

Conventions (all losses): ``scores`` are raw model scores (logits; higher = more relevant),
``targets`` are relevance grades or teacher scores of the same shape, and ``mask`` (grouped
losses) is a boolean ``(B, G)`` tensor marking the real candidates of each row: a batch of
lists of different lengths is padded to its longest list and the padding is ``False``. Padded
positions may hold any finite value; no loss reads them.
"""

from __future__ import annotations

import torch


def check_scores(
    name: str, scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None, *, grouped: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a loss's inputs; returns ``(targets, mask)``: targets detached in the scores' dtype, and
    the mask (all ``True`` when none was given).

    Raises ``TypeError`` (not tensors, integer scores, a non-boolean mask) or ``ValueError`` (shapes
    differ, empty, grouped input not 2-D, a row of a grouped loss with fewer than 2 real candidates,
    NaN or Inf among the real positions) with a message naming the loss.
    """
    if not isinstance(scores, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(
            f"{name}: scores and targets must be torch.Tensor, got {type(scores).__name__} and {type(targets).__name__}"
        )
    if not scores.is_floating_point():
        raise TypeError(f"{name}: scores must be a floating-point tensor (raw logits), got {scores.dtype}")
    if scores.shape != targets.shape:
        raise ValueError(
            f"{name}: scores and targets must have the same shape, got {tuple(scores.shape)} and {tuple(targets.shape)}"
        )
    if scores.numel() == 0:
        raise ValueError(f"{name}: got empty tensors of shape {tuple(scores.shape)}")
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    elif not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"{name}: mask must be a boolean tensor marking real candidates")
    elif mask.shape != scores.shape:
        raise ValueError(f"{name}: mask has shape {tuple(mask.shape)}, scores {tuple(scores.shape)}")
    if grouped:
        if scores.dim() != 2:
            raise ValueError(
                f"{name}: expects (B, G) tensors (one row per query), got {scores.dim()}-D shape {tuple(scores.shape)}"
            )
        short = mask.sum(dim=1) < 2
        if bool(short.any()):
            raise ValueError(
                f"{name}: every row needs at least 2 real candidates; row {int(short.nonzero()[0])} has "
                f"{int(mask[short][0].sum())}"
            )
    if not bool(torch.isfinite(scores[mask]).all()):
        raise ValueError(f"{name}: scores contain NaN or Inf")
    targets = targets.detach().to(dtype=scores.dtype)
    if not bool(torch.isfinite(targets[mask]).all()):
        raise ValueError(f"{name}: targets contain NaN or Inf")
    return targets, mask


def masked_log_softmax(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log_softmax`` over the real positions; padded positions come out as ``-inf``."""
    return torch.log_softmax(values.masked_fill(~mask, float("-inf")), dim=1)


def ordered_pairs(scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Score differences ``s_i - s_j`` of all same-row pairs of real candidates with ``targets_i > targets_j``.

    Returns ``(diffs, pairs)``: ``diffs`` is ``(B, G, G)`` with ``diffs[b, i, j] = s_bi - s_bj`` and
    ``pairs`` marks the pairs that count. Memory is ``O(B * G**2)``.
    """
    diffs = scores.unsqueeze(2) - scores.unsqueeze(1)
    real = mask.unsqueeze(2) & mask.unsqueeze(1)
    return diffs, real & (targets.unsqueeze(2) > targets.unsqueeze(1))
