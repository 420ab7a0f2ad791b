"""``BiEncoder``: an encoder, a pooling and optional normalisation; texts -> embeddings.

Pooling is read from a sentence-transformers checkpoint (``1_Pooling/config.json``: ``mean``,
``cls`` or ``max``; ``modules.json`` naming a ``Normalize`` module turns normalisation on); a
plain transformers checkpoint gets mean pooling. Relevance is the cosine similarity of the
query and passage embeddings, as all-MiniLM-L6-v2 is used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel

from hf_rerank.errors import UsageError
from hf_rerank.models.cross_encoder import default_max_length
from hf_rerank.models.inference import ModelRunner, load_checkpoint, run_batched
from hf_rerank.models.resolve import read_json_file

POOLINGS = ("mean", "cls", "max")


def read_pooling(path: Path) -> tuple[str, bool]:
    """``(pooling, normalize)`` saved with a sentence-transformers checkpoint; ``("mean", False)`` otherwise."""
    pooling, normalize = "mean", False
    modules_file = path / "modules.json"
    if modules_file.is_file():
        modules = read_json_file(modules_file, list)
        normalize = any(module.get("type", "").endswith("Normalize") for module in modules)
        for module in modules:
            config_file = path / module.get("path", "") / "config.json"
            if module.get("type", "").endswith("Pooling") and config_file.is_file():
                config = read_json_file(config_file)
                if config.get("pooling_mode_cls_token"):
                    pooling = "cls"
                elif config.get("pooling_mode_max_tokens"):
                    pooling = "max"
    return pooling, normalize


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool token states ``(batch, tokens, dim)`` with ``mask`` ``(batch, tokens)`` -> ``(batch, dim)``."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class BiEncoder(ModelRunner):
    """Encode queries and passages separately; score by cosine similarity.

    Args:
        model: a transformers encoder (``AutoModel``).
        tokenizer: its tokenizer.
        max_length: tokens per text, special tokens included.
        pooling: ``mean``, ``cls`` or ``max``.
        normalize: L2-normalise the embeddings :meth:`encode` returns.
        device, precision: as for :class:`~hf_rerank.models.cross_encoder.CrossEncoder`.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_length: int,
        pooling: str = "mean",
        normalize: bool = True,
        device: str | None = None,
        precision: str = "auto",
    ):
        if pooling not in POOLINGS:
            raise UsageError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        super().__init__(model, tokenizer, max_length=max_length, device=device, precision=precision)
        self.pooling = pooling
        self.normalize = normalize

    @classmethod
    def from_pretrained(
        cls,
        reference: str | Path,
        *,
        max_length: int | None = None,
        device: str | None = None,
        precision: str = "auto",
        trust_remote_code: bool = False,
    ) -> BiEncoder:
        """Load from a local directory, a Hub id or ``id@revision`` (see :func:`load_checkpoint`)."""
        path, model, tokenizer = load_checkpoint(
            reference, AutoModel, device=device, precision=precision, trust_remote_code=trust_remote_code
        )
        pooling, normalize = read_pooling(path)
        length = max_length or default_max_length(path, tokenizer, model.config)
        return cls(
            model,
            tokenizer,
            max_length=length,
            pooling=pooling,
            normalize=normalize,
            device=device,
            precision=precision,
        )

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.autocast):
            hidden = self.model(**batch).last_hidden_state
        embeddings = pool(hidden.float(), batch["attention_mask"], self.pooling)
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = True, description: str = "encoding"
    ) -> torch.Tensor:
        """Embeddings ``(len(texts), dim)`` float32, in the order of ``texts``."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        features = [dict(zip(encoded.keys(), values)) for values in zip(*encoded.values())]
        return run_batched(
            features,
            self._forward,
            tokenizer=self.tokenizer,
            batch_size=batch_size,
            device=self.device,
            description=description,
            show_progress=show_progress,
        )

    def score_pairs(
        self, queries: Sequence[str], passages: Sequence[str], *, batch_size: int = 64, show_progress: bool = True
    ) -> np.ndarray:
        """Cosine similarities ``(n,)`` float32 of ``(queries[i], passages[i])``; each distinct text is encoded once."""
        if len(queries) != len(passages):
            raise ValueError(f"{len(queries)} queries but {len(passages)} passages")
        unique_queries, query_index = np.unique(np.asarray(queries, dtype=object), return_inverse=True)
        unique_passages, passage_index = np.unique(np.asarray(passages, dtype=object), return_inverse=True)
        query_embeddings = F.normalize(
            self.encode(
                unique_queries.tolist(),
                batch_size=batch_size,
                show_progress=show_progress,
                description="encoding queries",
            ),
            dim=-1,
        )
        passage_embeddings = F.normalize(
            self.encode(
                unique_passages.tolist(),
                batch_size=batch_size,
                show_progress=show_progress,
                description="encoding passages",
            ),
            dim=-1,
        )
        scores = (query_embeddings[query_index] * passage_embeddings[passage_index]).sum(dim=-1)
        return scores.numpy()

    def save_pretrained(self, directory: str | Path) -> None:
        """Save encoder and tokenizer plus sentence-transformers' module files (pooling, normalisation)."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_sentence_transformers_modules(
            directory,
            hidden_size=self.model.config.hidden_size,
            pooling=self.pooling,
            normalize=self.normalize,
            max_length=self.max_length,
        )


def write_sentence_transformers_modules(
    directory: Path, *, hidden_size: int, pooling: str, normalize: bool, max_length: int
) -> None:
    """Write ``modules.json``, ``1_Pooling/config.json``, ``2_Normalize/`` (if ``normalize``) and
    ``sentence_bert_config.json`` into a checkpoint ``directory``, so that
    ``sentence_transformers.SentenceTransformer(directory)`` loads it with this pooling."""
    if pooling not in POOLINGS:
        raise UsageError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    directory = Path(directory)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (directory / "2_Normalize").mkdir(exist_ok=True)
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": hidden_size,
                "pooling_mode_cls_token": pooling == "cls",
                "pooling_mode_mean_tokens": pooling == "mean",
                "pooling_mode_max_tokens": pooling == "max",
                "pooling_mode_mean_sqrt_len_tokens": False,
            },
            indent=2,
        )
    )
    (directory / "modules.json").write_text(json.dumps(modules, indent=2))
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_length, "do_lower_case": False}, indent=2)
    )
