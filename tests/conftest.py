"""Shared fixtures. Tests never touch the network: the Hub is put in offline mode."""

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, BertConfig

from hf_rerank.models.resolve import bundled_model_path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TREC_DL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl"


@pytest.fixture(scope="session")
def trec_dl() -> Path:
    """``../shared/data/trec-dl``; missing data fails in CI (CI=true) and skips elsewhere."""
    if not (TREC_DL / "dl19" / "qrels.txt").is_file():
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"real evaluation data missing at {TREC_DL} (required in CI)")
        pytest.skip(f"real evaluation data not found at {TREC_DL}")
    return TREC_DL


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module of tiny matmuls: on a shared 2-core machine more threads
    only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Tiny random-initialised checkpoints (bundled MiniLM tokenizer, 2-layer 32-dim BERT).
def tiny_config(**overrides) -> BertConfig:
    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **overrides,
    )


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(bundled_model_path())


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory, tokenizer):
    """A one-logit BERT cross-encoder checkpoint."""
    path = tmp_path_factory.mktemp("tiny-ce")
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, tokenizer):
    """A bare BERT encoder checkpoint (no sentence-transformers files)."""
    path = tmp_path_factory.mktemp("tiny-encoder")
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config()).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
