"""Pick the right reranker class for a checkpoint.

A checkpoint whose ``config.json`` names a ``*ForSequenceClassification`` architecture is a
cross-encoder; one with sentence-transformers' ``modules.json`` or a bare encoder is a bi-encoder.
"""

from __future__ import annotations

from pathlib import Path

from hf_rerank.errors import MissingFileError, UsageError
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.models.cross_encoder import CrossEncoder
from hf_rerank.models.lora import ADAPTER_CONFIG, is_adapter_dir
from hf_rerank.models.resolve import read_json_file, resolve_model

MODEL_TYPES = ("auto", "cross-encoder", "bi-encoder")


def detect_model_type(path: Path) -> str:
    """``cross-encoder`` or ``bi-encoder`` for the checkpoint (or LoRA adapter) directory ``path``."""
    if is_adapter_dir(path):
        task = read_json_file(path / ADAPTER_CONFIG).get("task_type")
        return "cross-encoder" if task == "SEQ_CLS" else "bi-encoder"
    config_file = path / "config.json"
    if not config_file.is_file():
        raise MissingFileError(f"{path}: no config.json, not a transformers checkpoint")
    architectures = read_json_file(config_file).get("architectures") or []
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        return "cross-encoder"
    return "bi-encoder"


def load_reranker(reference: str | Path, model_type: str = "auto", **options) -> CrossEncoder | BiEncoder:
    """Load ``reference`` (directory, Hub id, ``id@revision``) as a cross- or bi-encoder.

    ``options`` go to ``from_pretrained`` (``max_length``, ``device``, ``precision``,
    ``trust_remote_code``).
    """
    if model_type not in MODEL_TYPES:
        raise UsageError(f"model type must be one of {', '.join(MODEL_TYPES)}, got {model_type!r}")
    path = resolve_model(reference)
    if model_type == "auto":
        model_type = detect_model_type(path)
    cls = CrossEncoder if model_type == "cross-encoder" else BiEncoder
    return cls.from_pretrained(path, **options)
