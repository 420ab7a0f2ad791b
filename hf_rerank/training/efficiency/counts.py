"""Samples, sequences, real and padded tokens of a model-input batch (:func:`count_batch`).

Real tokens are the ones under an attention mask; padded tokens are every position of the padded
batch; the padding ratio of a run is 1 - real / padded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class BatchCounts:
    """What one batch holds: ``samples`` (training examples), ``sequences`` (rows the model
    encodes), ``real_tokens`` (under an attention mask), ``padded_tokens`` (all positions) and
    ``lengths`` (real tokens per sequence, int64)."""

    samples: int
    sequences: int
    real_tokens: int
    padded_tokens: int
    lengths: np.ndarray


def _tensors_named(inputs: Mapping, suffix: str):
    for name, value in inputs.items():
        if isinstance(value, Mapping):
            yield from _tensors_named(value, suffix)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, Mapping):
                    yield from _tensors_named(item, suffix)
        elif torch.is_tensor(value) and (name == suffix or name.endswith("_" + suffix)):
            yield value


def count_batch(inputs: Mapping, samples: int | None = None) -> BatchCounts:
    """Count a model-input batch.

    Args:
        inputs: the batch (a mapping, possibly nested in mappings and lists of mappings): every
            tensor named ``attention_mask`` or
            ``*_attention_mask`` counts as sequences of rows (leading dimensions flattened) whose
            real tokens are the mask's nonzero entries. Without any mask, tensors named
            ``input_ids`` / ``*_input_ids`` count, every position real (nothing was padded).
        samples: training examples in the batch; default: the first dimension of ``labels``
            if the batch has it (a cross-encoder group of G passages is one sample, G
            sequences), else the rows of the first mask (or input ids).
    Raises:
        ValueError: the batch has neither attention masks nor input ids.
    """
    masks = list(_tensors_named(inputs, "attention_mask"))
    if not masks:
        masks = [torch.ones_like(ids, dtype=torch.bool) for ids in _tensors_named(inputs, "input_ids")]
    if not masks:
        raise ValueError(f"cannot count tokens: no attention_mask or input_ids among {sorted(inputs)}")
    lengths = np.concatenate(
        [(mask.reshape(-1, mask.shape[-1]) != 0).sum(dim=-1).cpu().numpy().astype(np.int64) for mask in masks]
    )
    padded = sum(mask.numel() for mask in masks)
    first_rows = masks[0].numel() // masks[0].shape[-1]
    if samples is None:
        labels = inputs.get("labels")
        samples = int(labels.shape[0]) if torch.is_tensor(labels) and labels.dim() > 0 else first_rows
    return BatchCounts(
        samples=samples,
        sequences=len(lengths),
        real_tokens=int(lengths.sum()),
        padded_tokens=int(padded),
        lengths=lengths,
    )
