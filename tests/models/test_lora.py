"""LoRA for cross-encoders (:mod:`hf_rerank.models.lora`): which modules train, clear errors, and the
adapters and the merged model scoring alike in hf-rerank and sentence-transformers.

The cross-encoder here starts from a bare encoder (no head), as a run from an MLM checkpoint does:
its 1-logit head is fresh and trains fully beside the adapters.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, ModernBertConfig

from hf_rerank.models import CrossEncoder, detect_model_type, load_reranker
from hf_rerank.models.lora import apply_lora, classification_head, lora_summary, save_lora
from tests.conftest import tiny_config

QUERIES = ["how long do cats live", "what is the boiling point of water", "cats", "who wrote hamlet"]
PASSAGES = [
    "Domestic cats usually live 12 to 18 years.",
    "Water boils at 100 C at sea level.",
    "Python is a language.",
    "Hamlet is a tragedy by William Shakespeare.",
]
# 2 layers x (query + value) x (A: 4x32 + B: 32x4) adapter weights + the head (32 weights + 1 bias)
ADAPTER_PARAMETERS, HEAD_PARAMETERS = 1024, 33


def lora_cross_encoder(base_dir, **options):
    """The tiny encoder as a 1-logit cross-encoder with LoRA r=4 on query and value."""
    model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1)
    return apply_lora(
        model,
        r=4,
        alpha=8,
        dropout=0.0,
        task_type="SEQ_CLS",
        base_reference=str(base_dir),
        **{"target_modules": ["query", "value"], **options},
    )


def st_scores(model) -> np.ndarray:
    return model.predict(list(zip(QUERIES, PASSAGES)), show_progress_bar=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_encoder_dir, tokenizer):
    """``(adapter_dir, merged_dir, expected)``: a LoRA cross-encoder whose adapters and head were moved
    off their initial values (as training does), saved by :func:`save_lora`; ``expected``: its scores
    (the one logit) before saving."""
    torch.manual_seed(0)
    model = lora_cross_encoder(tiny_encoder_dir)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:  # lora_B starts at zero: the adapters would change nothing
                parameter.copy_(torch.randn_like(parameter) * 0.2)
    model.eval()
    with torch.no_grad():
        expected = model(**tokenizer(QUERIES, PASSAGES, padding=True, return_tensors="pt")).logits[:, 0].numpy()
    root = tmp_path_factory.mktemp("lora-ce")
    merged = save_lora(model, root / "adapter", root / "merged", tokenizer=tokenizer)
    assert type(merged).__name__ == "BertForSequenceClassification"  # a plain model, adapters merged
    return root / "adapter", root / "merged", expected


def test_classification_head_is_what_lies_outside_the_base_model(tiny_encoder_dir, tokenizer):
    assert classification_head(AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))) == [
        "classifier"
    ]
    modernbert = ModernBertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        num_labels=1,
    )
    assert classification_head(AutoModelForSequenceClassification.from_config(modernbert)) == ["head", "classifier"]
    with pytest.raises(ValueError, match="BertModel has no classification head beside its base model"):
        classification_head(AutoModel.from_pretrained(tiny_encoder_dir))


def test_cross_encoder_lora_trains_the_adapters_and_the_whole_head(tiny_encoder_dir):
    model = lora_cross_encoder(tiny_encoder_dir)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert all(".lora_A." in name or ".lora_B." in name or ".classifier.modules_to_save." in name for name in trainable)
    assert sum("classifier" in name for name in trainable) == 2  # weight and bias
    summary = lora_summary(model)
    assert summary["modules_to_save"] == ["classifier"]
    assert summary["trainable_parameters"] == ADAPTER_PARAMETERS + HEAD_PARAMETERS
    assert model.peft_config["default"].modules_to_save == ["classifier", "score"]  # peft's own names once


@pytest.mark.parametrize("targets, missing", [(["qkv"], "['qkv']"), (["query", "Wqkv"], "['Wqkv']")])
def test_target_modules_that_name_no_module_are_refused(tiny_encoder_dir, targets, missing):
    with pytest.raises(
        ValueError,
        match=rf"LoRA target modules \{missing}\ match no module of BertForSequenceClassification; "
        r"its linear layers are named: classifier, dense, key, query, value",
    ):
        lora_cross_encoder(tiny_encoder_dir, target_modules=targets)


def test_save_lora_writes_the_adapters_with_the_head_and_a_plain_merged_model(saved):
    adapter, merged, _ = saved
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= {p.name for p in adapter.iterdir()}
    assert not (adapter / "model.safetensors").exists() and not (adapter / "config.json").exists()
    from safetensors import safe_open

    with safe_open(adapter / "adapter_model.safetensors", "pt") as weights:
        names = list(weights.keys())
    assert sorted(n for n in names if "lora" not in n) == [
        "base_model.model.classifier.bias",
        "base_model.model.classifier.weight",
    ]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in merged.iterdir()}
    assert detect_model_type(adapter) == detect_model_type(merged) == "cross-encoder"


def test_adapters_and_merged_model_score_the_same_in_hf_rerank_and_sentence_transformers(saved, tiny_encoder_dir):
    st = pytest.importorskip("sentence_transformers")
    adapter, merged, expected = saved
    identity = torch.nn.Identity()  # sentence-transformers' default for one logit is its sigmoid
    ours = {
        directory.name: load_reranker(directory, precision="fp32", max_length=64).score_pairs(
            QUERIES, PASSAGES, show_progress=False
        )
        for directory in (adapter, merged)
    }
    theirs_merged = st_scores(st.CrossEncoder(str(merged), activation_fn=identity, max_length=64, device="cpu"))
    # sentence-transformers 6.2 loads adapters onto their base: CrossEncoder(base, num_labels=1).load_adapter(...)
    theirs_adapter = st.CrossEncoder(
        str(tiny_encoder_dir), num_labels=1, activation_fn=identity, max_length=64, device="cpu"
    )
    theirs_adapter.load_adapter(str(adapter))
    for scores in (ours["adapter"], ours["merged"], theirs_merged, st_scores(theirs_adapter)):
        assert np.abs(scores - expected).max() <= 1e-5
    assert isinstance(load_reranker(adapter, precision="fp32"), CrossEncoder)


def test_sentence_transformers_cross_encoder_needs_the_base_to_load_adapters(saved):
    """A documented limitation (sentence-transformers 6.2): ``CrossEncoder(adapter_dir)`` reads the
    adapter directory's config.json before its peft support could resolve the base."""
    st = pytest.importorskip("sentence_transformers")
    with pytest.raises(ValueError, match="Should have a `model_type` key in its config.json"):
        st.CrossEncoder(str(saved[0]), num_labels=1, device="cpu")
