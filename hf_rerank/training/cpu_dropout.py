"""Faster dropout for training on CPUs: masks from NumPy's PCG64, attention computed eagerly.

On a CPU, torch draws dropout masks with ``bernoulli_`` from its single-threaded Mersenne
Twister: measured on the 2-core CPU of docs/efficiency.md, a fifth of a MiniLM cross-encoder training
step (batch 32 x 96 tokens) went to drawing masks. And with attention dropout on, torch's CPU
``scaled_dot_product_attention`` falls back to its unfused path, while without dropout its flash
kernel's backward is slower still; the plain ("eager") attention of matmul, softmax and matmul
is the fastest there.

:func:`use_fast_cpu_dropout` changes a model in place so that

- every ``nn.Dropout`` becomes a :class:`FastDropout` (same ``p``);
- attention is computed by :func:`eager_attention` (registered with transformers as
  :data:`ATTENTION`), whose attention-probability dropout is the fast one too. It is the eager
  attention of BERT and ModernBERT (scores + additive mask, softmax, dropout, values) with the
  mask cast once to the scores' dtype (masked positions at that dtype's minimum), so that under
  bf16 autocast the softmax runs in bf16 with float accumulation instead of promoting the scores
  to float32.

The distribution is the same: each element is kept with probability ``1 - p`` and scaled by
``1 / (1 - p)``, where ``p`` is rounded to a multiple of 1/65536 (0.1 becomes 0.100006). Each
mask is drawn from a PCG64 stream seeded from torch's global generator, so runs are as
reproducible under ``torch.manual_seed`` (and transformers' ``set_seed``) as torch's dropout is.
Models whose attention does not go through transformers' ``AttentionInterface`` keep their
attention; their ``nn.Dropout`` modules are still replaced.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

logger = logging.getLogger("hf_rerank")

ATTENTION = "hf_rerank_eager"
_STEPS = 65536  # p is rounded to a multiple of 1 / _STEPS: masks compare 16-bit random words


def keep_probability(p: float) -> float:
    """The keep probability the masks realise for a dropout probability ``p`` (``1 - p`` rounded
    to a multiple of 1/65536)."""
    return 1 - round(p * _STEPS) / _STEPS


def dropout_scale(shape: torch.Size, p: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A ``shape`` tensor of ``1 / q`` (kept) and 0 (dropped), each kept with probability
    ``q = keep_probability(p)``, independently; ``dtype`` on ``device``.

    16 random bits per element from one PCG64 stream, seeded by one draw from torch's global CPU
    generator.
    """
    n = math.prod(shape)
    seed = int(torch.randint(0, 2**62, ()))
    words = np.random.Generator(np.random.PCG64(seed)).bit_generator.random_raw((n + 3) // 4)
    bits = torch.from_numpy(words.view(np.int16)[:n]).view(shape)
    threshold = round(p * _STEPS) - _STEPS // 2  # int16 words are uniform on [-32768, 32767]
    keep = bits.to(device) >= threshold
    scale = torch.tensor(1 / keep_probability(p), dtype=dtype, device=device)
    return torch.where(keep, scale, torch.zeros((), dtype=dtype, device=device))


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``nn.functional.dropout(x, p, training)`` with the mask of :func:`dropout_scale`."""
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return x * 0
    return x * dropout_scale(x.shape, p, x.dtype, x.device)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose training-mode mask comes from :func:`dropout_scale`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' attention-function signature: ``query`` ``(B, heads, Lq, d)``, ``key`` and
    ``value`` ``(B, heads, Lk, d)``, an additive ``attention_mask`` broadcastable to
    ``(B, heads, Lq, Lk)`` (0 or the dtype's minimum). Returns the output ``(B, Lq, heads, d)``
    and the attention probabilities ``(B, heads, Lq, Lk)``.
    """
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query * scaling, key.transpose(2, 3))
    if attention_mask is not None:  # float32's minimum would round to -inf in bf16: clamp to the dtype's
        scores = scores + attention_mask.clamp(min=torch.finfo(scores.dtype).min).to(scores.dtype)
    probabilities = fast_dropout(torch.softmax(scores, dim=-1), dropout, module.training)
    return torch.matmul(probabilities, value).transpose(1, 2).contiguous(), probabilities


def use_fast_cpu_dropout(model: nn.Module) -> dict[str, int | str | None]:
    """Switch ``model`` (a transformers model, possibly inside a peft wrapper) to fast dropout, in
    place; see the module docstring. Idempotent.

    Returns:
        ``{"dropout_modules": replaced nn.Dropout modules, "attention": the attention
        implementation now in use, "previous_attention": the one before}``.
    """
    replaced = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p, child.inplace).train(child.training))
                replaced += 1
    AttentionInterface.register(ATTENTION, eager_attention)  # registered here, not at import: idempotent
    AttentionMaskInterface.register(ATTENTION, eager_mask)
    pretrained = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)
    previous = attention = getattr(getattr(pretrained, "config", None), "_attn_implementation", None)
    if pretrained is not None and previous != ATTENTION:
        try:
            pretrained.set_attn_implementation(ATTENTION)
            attention = ATTENTION
        except (ValueError, NotImplementedError, AttributeError) as exc:
            logger.info("fast CPU dropout: %s keeps its %s attention (%s)", type(pretrained).__name__, previous, exc)
    return {"dropout_modules": replaced, "attention": attention, "previous_attention": previous}
