"""``CrossEncoder``: score (query, passage) pairs with an ``AutoModelForSequenceClassification``.

Score convention: a one-logit head gives its logit; a two-logit head gives ``logit[1] - logit[0]``
(the log-odds of "relevant", monotone in its softmax probability). Pairs are truncated on the
passage, never the query. Checkpoints saved with :meth:`save_pretrained` load with
``transformers.AutoModelForSequenceClassification`` and ``sentence_transformers.CrossEncoder``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from hf_rerank.data.collators import encode_pairs
from hf_rerank.errors import UsageError
from hf_rerank.models.inference import ModelRunner, load_checkpoint, run_batched
from hf_rerank.models.resolve import read_json_file

logger = logging.getLogger("hf_rerank")


def default_max_length(path: Path, tokenizer, config) -> int:
    """The checkpoint's own limit: sentence-transformers' ``max_seq_length`` if saved, else the
    smaller of the tokenizer's and the position embeddings' limits (at most 8,192)."""
    for name in ("sentence_bert_config.json", "config_sentence_transformers.json"):
        saved = read_json_file(path / name) if (path / name).is_file() else {}
        if saved.get("max_seq_length") or saved.get("max_length"):
            return int(saved.get("max_seq_length") or saved["max_length"])
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length, 8192]
    return int(min(limit for limit in limits if isinstance(limit, int) and limit > 0))


def pair_scores(logits: torch.Tensor) -> torch.Tensor:
    """Scores (N,) from a classification head's logits (N, 1) or (N, 2) (module docstring)."""
    if logits.shape[-1] == 1:
        return logits[:, 0]
    if logits.shape[-1] == 2:
        return logits[:, 1] - logits[:, 0]
    raise UsageError(f"a cross-encoder needs a head with 1 or 2 logits, this one has {logits.shape[-1]}")


class CrossEncoder(ModelRunner):
    """A reranker that reads query and passage together.

    Args:
        model: a sequence-classification model with 1 or 2 labels.
        tokenizer: its tokenizer.
        max_length: tokens per pair, special tokens included.
        device: where to run (default: CUDA if available, else CPU).
        precision: ``auto`` (bf16 where the hardware has it, else fp32), ``bf16``, ``fp16``, ``fp32``.
    """

    def __init__(self, model, tokenizer, *, max_length: int, device: str | None = None, precision: str = "auto"):
        num_labels = model.config.num_labels
        if num_labels not in (1, 2):
            raise UsageError(f"a cross-encoder needs a head with 1 or 2 logits, this one has {num_labels}")
        super().__init__(model, tokenizer, max_length=max_length, device=device, precision=precision)

    @classmethod
    def from_pretrained(
        cls,
        reference: str | Path,
        *,
        max_length: int | None = None,
        device: str | None = None,
        precision: str = "auto",
        trust_remote_code: bool = False,
    ) -> CrossEncoder:
        """Load from a local directory, a Hub id or ``id@revision`` (see :func:`load_checkpoint`)."""
        path, model, tokenizer = load_checkpoint(
            reference,
            AutoModelForSequenceClassification,
            device=device,
            precision=precision,
            trust_remote_code=trust_remote_code,
        )
        length = max_length or default_max_length(path, tokenizer, model.config)
        return cls(model, tokenizer, max_length=length, device=device, precision=precision)

    def tokenize(self, queries: Sequence[str], passages: Sequence[str]) -> list[dict[str, list[int]]]:
        """Token ids of each pair ``[CLS] query [SEP] passage [SEP]``, passage truncated to fit (a query
        too long to leave a passage token is cut too, as in training:
        :func:`~hf_rerank.data.collators.encode_pairs`)."""
        rows, overlong = encode_pairs(self.tokenizer, list(queries), list(passages), self.max_length)
        if overlong:
            logger.warning(
                "%d pair(s) have a query too long for max_length=%d beside a passage; query and passage were "
                "both truncated",
                len(overlong),
                self.max_length,
            )
        return rows

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.autocast):
            return pair_scores(self.model(**batch).logits.float())

    def score_pairs(
        self, queries: Sequence[str], passages: Sequence[str], *, batch_size: int = 64, show_progress: bool = True
    ) -> np.ndarray:
        """Scores ``(n,)`` float32 for the pairs ``(queries[i], passages[i])``; higher is more relevant."""
        if len(queries) != len(passages):
            raise ValueError(f"{len(queries)} queries but {len(passages)} passages")
        features = self.tokenize(queries, passages)
        scores = run_batched(
            features,
            self._forward,
            tokenizer=self.tokenizer,
            batch_size=batch_size,
            device=self.device,
            description="cross-encoding pairs",
            show_progress=show_progress,
        )
        return scores.numpy()

    def save_pretrained(self, directory: str | Path) -> None:
        """Save model and tokenizer (loadable by transformers and sentence-transformers)."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
