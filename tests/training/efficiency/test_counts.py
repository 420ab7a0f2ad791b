"""count_batch: samples, sequences, real and padded tokens of pairs, groups, nested and unpadded batches."""

from __future__ import annotations

import pytest
import torch

from hf_rerank.training.efficiency.counts import count_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def test_count_batch_pairs_groups_nested_and_unpadded():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    pairs = count_batch(
        {"input_ids": torch.zeros(2, 4, dtype=torch.long), "attention_mask": mask, "labels": torch.tensor([1.0, 0.0])}
    )
    assert (pairs.samples, pairs.sequences, pairs.real_tokens, pairs.padded_tokens) == (2, 2, 5, 8)
    assert pairs.lengths.tolist() == [3, 2]

    groups = count_batch({"attention_mask": torch.cat([mask, mask]), "labels": torch.zeros(2, 2)})
    assert (groups.samples, groups.sequences, groups.real_tokens, groups.padded_tokens) == (2, 4, 10, 16)

    nested = count_batch({"query": {"attention_mask": mask}, "passage_attention_mask": torch.ones(2, 6)})
    assert (nested.samples, nested.sequences, nested.real_tokens, nested.padded_tokens) == (2, 4, 17, 20)
    assert count_batch({"attention_mask": mask}, samples=1).samples == 1

    unpadded = count_batch({"input_ids": torch.zeros(3, 7, dtype=torch.long)})
    assert (unpadded.sequences, unpadded.real_tokens, unpadded.padded_tokens) == (3, 21, 21)
    with pytest.raises(ValueError, match="no attention_mask or input_ids"):
        count_batch({"pixel_values": torch.zeros(2, 3)})
