"""BiEncoder: pooling, cosine scores, the sentence-transformers layout, and the bundled model."""

import numpy as np
import pytest
import torch

from hf_rerank.models import BiEncoder, detect_model_type, load_reranker
from hf_rerank.models.bi_encoder import pool, read_pooling

TEXTS = ["how long do cats live", "Domestic cats usually live 12 to 18 years.", "cats", "Water boils at 100 C."]


def test_pool_by_hand():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    assert pool(hidden, mask, "max").tolist() == [[3.0, 4.0]]


def test_plain_encoder_defaults_to_mean_pooling(tiny_encoder_dir):
    assert read_pooling(tiny_encoder_dir) == ("mean", False)
    assert detect_model_type(tiny_encoder_dir) == "bi-encoder"


def test_encode_keeps_order_and_scores_are_cosines(tiny_encoder_dir):
    model = BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp32")
    embeddings = model.encode(TEXTS, batch_size=3, show_progress=False)
    one_by_one = torch.cat([model.encode([t], show_progress=False) for t in TEXTS])
    torch.testing.assert_close(embeddings, one_by_one, atol=1e-5, rtol=1e-4)
    scores = model.score_pairs([TEXTS[0], TEXTS[2], TEXTS[0]], [TEXTS[1], TEXTS[3], TEXTS[3]], show_progress=False)
    unit = torch.nn.functional.normalize(embeddings, dim=-1)
    expected = [unit[0] @ unit[1], unit[2] @ unit[3], unit[0] @ unit[3]]
    np.testing.assert_allclose(scores, torch.stack(expected).numpy(), atol=1e-5)


def test_saved_layout_loads_in_sentence_transformers(tiny_encoder_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    model = BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp32", max_length=64)
    model.save_pretrained(tmp_path)
    assert read_pooling(tmp_path) == ("mean", False)
    reference = st.SentenceTransformer(str(tmp_path), device="cpu")
    assert reference.max_seq_length == 64
    expected = reference.encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(model.encode(TEXTS, show_progress=False), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_bundled_minilm_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    ours = load_reranker("sentence-transformers/all-MiniLM-L6-v2", precision="fp32")
    assert isinstance(ours, BiEncoder) and (ours.pooling, ours.normalize, ours.max_length) == ("mean", True, 256)
    reference = st.SentenceTransformer(str(ours.model.name_or_path), device="cpu")
    expected = reference.encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(ours.encode(TEXTS, show_progress=False), expected, atol=1e-5, rtol=1e-4)
