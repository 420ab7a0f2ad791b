"""CrossEncoder: score conventions, order, truncation side, agreement with sentence-transformers."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from hf_rerank.models import CrossEncoder, detect_model_type, load_reranker
from hf_rerank.precision import native_bf16

QUERIES = ["how long do cats live", "what is the boiling point of water", "cats"]
PASSAGES = [
    "Domestic cats usually live 12 to 18 years. " * 3,
    "Water boils at 100 C at sea level.",
    "Python is a language.",
]


def test_scores_keep_input_order_across_length_sorted_batches(tiny_cross_encoder_dir):
    model = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, precision="fp32")
    batched = model.score_pairs(QUERIES, PASSAGES, batch_size=2, show_progress=False)
    one_by_one = np.concatenate(
        [model.score_pairs([q], [p], batch_size=1, show_progress=False) for q, p in zip(QUERIES, PASSAGES)]
    )
    assert batched.shape == (3,) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_one_logit_score_is_the_logit(tiny_cross_encoder_dir):
    model = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, precision="fp32")
    scores = model.score_pairs(QUERIES, PASSAGES, show_progress=False)
    hf = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder_dir).eval()
    with torch.no_grad():
        logits = hf(**model.tokenizer(QUERIES, PASSAGES, padding=True, return_tensors="pt")).logits[:, 0]
    np.testing.assert_allclose(scores, logits.numpy(), atol=1e-5)


def test_two_logit_score_is_the_log_odds(tiny_cross_encoder_dir, tmp_path, tokenizer):
    from tests.conftest import tiny_config

    torch.manual_seed(1)
    hf = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=2)).eval()
    hf.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    scores = CrossEncoder.from_pretrained(tmp_path, precision="fp32").score_pairs(
        QUERIES, PASSAGES, show_progress=False
    )
    with torch.no_grad():
        logits = hf(**tokenizer(QUERIES, PASSAGES, padding=True, return_tensors="pt")).logits
    np.testing.assert_allclose(scores, (logits[:, 1] - logits[:, 0]).numpy(), atol=1e-5)


def test_truncates_the_passage_never_the_query(tiny_cross_encoder_dir):
    model = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, precision="fp32", max_length=16)
    query = "what is the boiling point of water"
    (features,) = model.tokenize([query], ["word " * 100])
    assert len(features["input_ids"]) == 16
    decoded = model.tokenizer.decode(features["input_ids"])
    assert decoded.startswith(f"[CLS] {query} [SEP] word")


@pytest.mark.skipif(not native_bf16("cpu"), reason="this CPU has no native bf16")
def test_bf16_is_close_to_fp32(tiny_cross_encoder_dir):
    fp32 = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, precision="fp32").score_pairs(
        QUERIES, PASSAGES, show_progress=False
    )
    bf16 = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, precision="bf16")
    assert bf16.model.dtype == torch.bfloat16
    np.testing.assert_allclose(bf16.score_pairs(QUERIES, PASSAGES, show_progress=False), fp32, atol=0.05)


def test_auto_detects_cross_encoders(tiny_cross_encoder_dir):
    assert detect_model_type(tiny_cross_encoder_dir) == "cross-encoder"
    assert isinstance(load_reranker(str(tiny_cross_encoder_dir), precision="fp32"), CrossEncoder)


def test_rejects_heads_with_more_than_two_logits(tmp_path, tokenizer):
    from tests.conftest import tiny_config

    AutoModelForSequenceClassification.from_config(tiny_config(num_labels=3)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="1 or 2 logits, this one has 3"):
        CrossEncoder.from_pretrained(tmp_path)


def test_same_scores_as_sentence_transformers(tiny_cross_encoder_dir):
    st = pytest.importorskip("sentence_transformers")
    reference = st.CrossEncoder(str(tiny_cross_encoder_dir), activation_fn=torch.nn.Identity(), max_length=64)
    ours = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, precision="fp32", max_length=64)
    expected = reference.predict(list(zip(QUERIES, PASSAGES)), show_progress_bar=False)
    np.testing.assert_allclose(ours.score_pairs(QUERIES, PASSAGES, show_progress=False), expected, atol=1e-5)


def test_a_query_longer_than_max_length_is_scored_as_training_sees_it(tiny_cross_encoder_dir, caplog):
    model = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, max_length=32, precision="fp32")
    long_query = " ".join(["bees"] * 10_000)
    with caplog.at_level("WARNING", logger="hf_rerank"):
        scores = model.score_pairs([long_query, QUERIES[0]], [PASSAGES[0], PASSAGES[0]], show_progress=False)
    assert np.isfinite(scores).all() and "1 pair(s) have a query too long for max_length=32" in caplog.text
    row = model.tokenize([long_query], [PASSAGES[0]])[0]
    assert len(row["input_ids"]) == 32 and row["token_type_ids"].count(1) > 1  # the passage kept a share


@pytest.mark.parametrize("damage", ["config.json", "model.safetensors"])
def test_a_damaged_checkpoint_is_named(tiny_cross_encoder_dir, tmp_path, damage):
    import shutil

    from hf_rerank.models.resolve import BrokenCheckpointError

    broken = tmp_path / "broken"
    shutil.copytree(tiny_cross_encoder_dir, broken)
    target = broken / damage
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])  # truncated, as by a full disk
    with pytest.raises(BrokenCheckpointError, match=str(broken)):
        CrossEncoder.from_pretrained(broken, precision="fp32")
