"""Rerankers: cross-encoders and bi-encoders, loaded from a directory, a Hub id or the bundled model."""

from hf_rerank.models.auto import detect_model_type, load_reranker
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.models.cross_encoder import CrossEncoder

__all__ = ["BiEncoder", "CrossEncoder", "detect_model_type", "load_reranker"]
