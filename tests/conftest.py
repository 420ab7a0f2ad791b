"""Shared fixtures. Tests never touch the network: the Hub is put in offline mode."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TREC_DL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-dl"


@pytest.fixture(scope="session")
def trec_dl() -> Path:
    """``../shared/data/trec-dl``; missing data fails in CI (CI=true) and skips elsewhere."""
    if not (TREC_DL / "dl19" / "qrels.txt").is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"real evaluation data missing at {TREC_DL} (required in CI)")
        pytest.skip(f"real evaluation data not found at {TREC_DL}")
    return TREC_DL
