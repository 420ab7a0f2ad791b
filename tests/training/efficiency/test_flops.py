"""TransformerFlops: FLOPs of tiny models counted by hand, sliding windows, the config it needs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, ModernBertConfig, ModernBertForSequenceClassification

from hf_rerank.training.efficiency.flops import TransformerFlops
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_flops_of_a_tiny_bert_by_hand():
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))  # hidden 32, 2 layers, FFN 64
    layer = 4 * (32 * 32 + 32) + 2 * 32 + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 32  # Q K V O, 2 LayerNorms, FFN
    n_params = 2 * layer + 2 * 32 + (32 * 32 + 32) + (32 + 1)  # + embedding LayerNorm, pooler, classifier
    flops = TransformerFlops.from_model(model)
    assert flops.non_embedding_parameters == flops.trainable_non_embedding_parameters == n_params == 18241
    assert flops.windows == (None, None)
    lengths = np.array([3, 5])
    attention = 12 * 32 * 2 * (3 * 3 + 5 * 5)  # 12 H per (query, key) pair per layer, all pairs attended
    assert flops.training_flops(lengths) == 6 * n_params * 8 + attention

    for parameter in model.bert.encoder.layer[0].parameters():  # frozen: no weight gradients
        parameter.requires_grad_(False)
    frozen = TransformerFlops.from_model(model)
    assert frozen.trainable_non_embedding_parameters == n_params - layer
    assert frozen.training_flops(lengths) == (4 * n_params + 2 * (n_params - layer)) * 8 + attention


def test_flops_count_sliding_window_pairs():
    config = ModernBertConfig(
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        global_attn_every_n_layers=3,
        local_attention=2,
        num_labels=1,
    )
    flops = TransformerFlops.from_model(ModernBertForSequenceClassification(config))
    assert flops.windows == (None, 1, 1)  # tokens at distance <= local_attention // 2
    only_attention = TransformerFlops(0, 0, hidden_size=1, windows=(None, 1))
    # n = 4: global 16 pairs; window 1: 4 tokens x themselves + 3 neighbouring pairs x 2 directions = 10
    assert only_attention.training_flops([4]) == 12 * (16 + 10)
    assert only_attention.training_flops([1]) == 12 * (1 + 1)


def test_flops_need_a_transformer_config():
    with pytest.raises(ValueError, match="hidden_size"):
        TransformerFlops.from_model(torch.nn.Linear(2, 2))
