"""Dense retrieval with a bi-encoder: corpus embeddings cached on disk, exact top-k search -> a run.

No metrics here: :mod:`hf_rerank.evaluation.retrieve` evaluates the run, and
:mod:`hf_rerank.mining` mines negatives from it.

Conventions shared by every function here:

- Embeddings are L2-normalised float32 rows, so relevance is the cosine similarity, computed as
  :meth:`BiEncoder.score_pairs <hf_rerank.models.bi_encoder.BiEncoder.score_pairs>` computes it
  (``(query * passage).sum(-1)`` in float32).
- Search is exhaustive (no approximate index): every query is compared with every passage, in
  blocks of queries times chunks of ``chunk_size`` passages, so memory stays bounded whatever the
  corpus size. The products run in the compute dtype ``precision`` picks for the model's device
  (bf16 where the hardware has it natively, else fp32; :func:`~hf_rerank.precision.pick_dtype`)
  and keep a pool of the best ``2k``; the pool is then rescored exactly in float32 and cut to ``k``.
  So the run's scores are float32 cosines, and its top-k is the exact float32 top-k unless the
  low-precision error exceeds the score gap between ranks k and 2k (in fp32 it always is).
- Ties (equal float32 scores, e.g. duplicate passages) are broken by corpus order: the passage
  that comes first in the corpus mapping ranks first. Chunking never changes a result.
- A run is ``{qid: {pid: score}}`` with each query's passages in rank order.

Cache: :func:`encode_corpus` with ``cache_dir`` stores the embeddings as
``cache_dir/corpus-<sha256>.pt``, the sha256 being :func:`cache_key` (model weights and tokenizer,
pooling, normalisation, length limit, compute dtype, and every corpus id and text in order), so two
different models, or two corpora, never share an entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hf_rerank.data.formats import Run, atomic_write
from hf_rerank.errors import DataError, UsageError
from hf_rerank.precision import pick_dtype

logger = logging.getLogger("hf_rerank")

CACHE_FORMAT = "hf-rerank corpus embeddings v1"
#: Queries compared with the corpus at once.
QUERY_BLOCK = 256
#: Float32 values gathered at once when rescoring a pool exactly (64 MiB).
RESCORE_BUDGET = 1 << 24


class TextEncoder(Protocol):
    """What retrieval needs of a model (a :class:`~hf_rerank.models.bi_encoder.BiEncoder`)."""

    device: torch.device

    def encode(
        self, texts: Sequence[str], *, batch_size: int, show_progress: bool, description: str
    ) -> torch.Tensor: ...


@dataclass
class CorpusEmbeddings:
    """A corpus encoded once: ``embeddings[i]`` (float32, L2-normalised) is passage ``pids[i]``.

    ``embeddings`` has shape ``(len(pids), dim)``; ``pids`` keep the corpus mapping's order.
    """

    pids: list[str]
    embeddings: torch.Tensor

    def __post_init__(self):
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != len(self.pids):
            raise ValueError(f"embeddings of shape {tuple(self.embeddings.shape)} for {len(self.pids)} passages")


def model_fingerprint(bi_encoder) -> str:
    """sha256 of a bi-encoder's weights (every tensor's name, dtype, shape and bytes) and tokenizer.

    Hashing all the bytes costs about 0.1 s per 100 MB of weights, little next to encoding a corpus,
    and unlike a path or a name it tells apart two fine-tuned checkpoints saved to the same place.
    """
    digest = hashlib.sha256()
    for name, tensor in bi_encoder.model.state_dict().items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy())
    tokenizer = bi_encoder.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # its truncation and padding settings are whatever the last call left
        state = {
            key: value for key, value in json.loads(backend.to_str()).items() if key not in ("truncation", "padding")
        }
    else:
        state = tokenizer.get_vocab()
    digest.update(f"{type(tokenizer).__name__}\n{json.dumps(state, sort_keys=True)}".encode())
    return digest.hexdigest()


def cache_key(bi_encoder, pids: Sequence[str], texts: Sequence[str]) -> str:
    """sha256 naming the embeddings of ``texts`` (ids ``pids``, in order) by ``bi_encoder``."""
    digest = hashlib.sha256(CACHE_FORMAT.encode())
    digest.update(model_fingerprint(bi_encoder).encode())
    settings = {
        "pooling": bi_encoder.pooling,
        "normalize": bi_encoder.normalize,
        "max_length": bi_encoder.max_length,
        "dtype": str(bi_encoder.dtype),
        "autocast": bi_encoder.autocast,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for pid, text in zip(pids, texts, strict=True):  # length-prefixed, so no two corpora hash the same stream
        digest.update(f"{len(pid)}:{pid}{len(text)}:{text}".encode())
    return digest.hexdigest()


def encode_corpus(
    bi_encoder,
    corpus: Mapping[str, str],
    *,
    batch_size: int = 128,
    cache_dir: str | Path | None = None,
    show_progress: bool = True,
) -> CorpusEmbeddings:
    """Embed every passage of ``corpus`` (``{pid: text}``), or load the embeddings from ``cache_dir``.

    With ``cache_dir``, ``bi_encoder`` must be a :class:`~hf_rerank.models.bi_encoder.BiEncoder`
    (its weights are hashed, see :func:`cache_key`); a hit logs "loaded N embeddings from cache
    PATH", a miss encodes and writes the file atomically. An unreadable cache file is warned about
    and replaced. Without ``cache_dir`` any :class:`TextEncoder` will do.
    """
    pids, texts = list(corpus), list(corpus.values())
    if not pids:
        raise DataError("the corpus is empty: there is nothing to encode")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"corpus-{cache_key(bi_encoder, pids, texts)}.pt"
        if (cached := _load_cache(path, pids)) is not None:
            return cached
    embeddings = F.normalize(
        bi_encoder.encode(texts, batch_size=batch_size, show_progress=show_progress, description="encoding corpus"),
        dim=-1,
    ).contiguous()
    if path is not None:
        with atomic_write(path, "wb") as handle:
            torch.save({"format": CACHE_FORMAT, "pids": pids, "embeddings": embeddings}, handle)
        logger.info("cached %d embeddings in %s", len(pids), path)
    return CorpusEmbeddings(pids, embeddings)


def _load_cache(path: Path, pids: list[str]) -> CorpusEmbeddings | None:
    """The embeddings cached at ``path`` if it holds them for ``pids``; None (with a warning if unusable) otherwise."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        cached = CorpusEmbeddings(saved["pids"], saved["embeddings"])
    except Exception as error:  # truncated or foreign file: encode again and overwrite it
        logger.warning(
            "%s: unreadable embedding cache (%s: %s); encoding the corpus again", path, type(error).__name__, error
        )
        return None
    if saved.get("format") != CACHE_FORMAT or cached.pids != pids:
        logger.warning("%s: cache file does not hold this corpus; encoding the corpus again", path)
        return None
    logger.info("loaded %d embeddings from cache %s", len(pids), path)
    return cached


def search(
    query_embeddings: torch.Tensor,
    corpus_embeddings: torch.Tensor,
    *,
    k: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    chunk_size: int = 65536,
    show_progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` by dot product of L2-normalised rows (module docstring: precision and ties).

    Args:
        query_embeddings: ``(m, dim)`` float32.
        corpus_embeddings: ``(n, dim)`` float32.
        k: results per query; ``min(k, n)`` are returned.
        dtype, device: where and in what dtype the products run.
        chunk_size: passages per matrix product.
    Returns:
        ``(indices, scores)``, each ``(m, min(k, n))`` on the CPU: corpus row numbers (int64) and
        float32 scores, best first.
    """
    if k < 1 or chunk_size < 1:
        raise UsageError(f"k and chunk_size must be >= 1, got k={k}, chunk_size={chunk_size}")
    n = corpus_embeddings.shape[0]
    k, pool = min(k, n), min(2 * k, n)
    matrix = corpus_embeddings.to(device=device, dtype=dtype)
    indices, scores = [], []
    with (
        torch.inference_mode(),
        tqdm(total=len(query_embeddings), desc="searching", unit="query", disable=not show_progress) as bar,
    ):
        for start in range(0, len(query_embeddings), QUERY_BLOCK):
            block = query_embeddings[start : start + QUERY_BLOCK]
            queries = block.to(device=device, dtype=dtype)
            best_scores = torch.empty((len(block), 0), dtype=dtype, device=device)
            best_rows = torch.empty((len(block), 0), dtype=torch.long, device=device)
            for offset in range(0, n, chunk_size):
                chunk = queries @ matrix[offset : offset + chunk_size].T
                top = chunk.topk(min(pool, chunk.shape[1]), dim=1)
                merged_scores = torch.cat([best_scores, top.values], dim=1)
                merged_rows = torch.cat([best_rows, top.indices + offset], dim=1)
                keep = merged_scores.topk(min(pool, merged_scores.shape[1]), dim=1)
                best_scores, best_rows = keep.values, merged_rows.gather(1, keep.indices)
            rows, exact = _rescore(block, corpus_embeddings, best_rows.cpu(), k)
            indices.append(rows)
            scores.append(exact)
            bar.update(len(block))
    return torch.cat(indices), torch.cat(scores)


def _rescore(
    queries: torch.Tensor, corpus: torch.Tensor, rows: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 scores of the pool ``rows`` ``(m, pool)``; the best ``k`` by (score desc, row asc)."""
    step = max(1, RESCORE_BUDGET // (rows.shape[1] * corpus.shape[1]))
    exact = torch.cat(
        [
            (corpus[rows[start : start + step]] * queries[start : start + step, None, :]).sum(-1)
            for start in range(0, len(rows), step)
        ]
    )
    by_row = rows.argsort(dim=1)
    rows, exact = rows.gather(1, by_row), exact.gather(1, by_row)
    order = exact.sort(dim=1, descending=True, stable=True).indices[:, :k]
    return rows.gather(1, order), exact.gather(1, order)


def dense_retrieve(
    bi_encoder: TextEncoder,
    queries: Mapping[str, str],
    corpus_embeddings: CorpusEmbeddings,
    *,
    k: int = 1000,
    batch_size: int = 128,
    chunk_size: int = 65536,
    precision: str = "auto",
    show_progress: bool = True,
) -> Run:
    """The top-``k`` passages of ``corpus_embeddings`` for each of ``queries`` (``{qid: text}``).

    Returns a run ``{qid: {pid: cosine}}`` (rank order, ``min(k, corpus size)`` per query), the
    products computed in the dtype ``precision`` picks for ``bi_encoder.device``.
    """
    if not queries:
        raise DataError("no queries to retrieve for")
    qids = list(queries)
    encoded = bi_encoder.encode(
        [queries[qid] for qid in qids],
        batch_size=batch_size,
        show_progress=show_progress,
        description="encoding queries",
    )
    rows, scores = search(
        F.normalize(encoded, dim=-1),
        corpus_embeddings.embeddings,
        k=k,
        chunk_size=chunk_size,
        dtype=pick_dtype(precision, bi_encoder.device),
        device=bi_encoder.device,
        show_progress=show_progress,
    )
    pids = corpus_embeddings.pids
    return {
        qid: {pids[row]: score for row, score in zip(ranked_rows, ranked_scores)}
        for qid, ranked_rows, ranked_scores in zip(qids, rows.tolist(), scores.tolist())
    }


class EmbeddingScorer:
    """A :class:`~hf_rerank.inference.scoring.PairScorer` that reads passages from corpus embeddings.

    It scores like ``BiEncoder.score_pairs`` (float32 cosine; each distinct query encoded once)
    without encoding any passage: passages are looked up by text in ``corpus`` (``{pid: text}``,
    restricted to ``corpus_embeddings.pids``), so one corpus encoding serves both dense retrieval
    and reranking a first stage, e.g. ``evaluate_reranking(collection, "bm25", scorer)``. A passage
    text absent from the embeddings is a ValueError.
    """

    def __init__(self, bi_encoder: TextEncoder, corpus: Mapping[str, str], corpus_embeddings: CorpusEmbeddings):
        self.bi_encoder = bi_encoder
        self.embeddings = corpus_embeddings.embeddings
        self.rows: dict[str, int] = {}
        for row, pid in enumerate(corpus_embeddings.pids):
            if pid in corpus:
                self.rows.setdefault(corpus[pid], row)

    def score_pairs(
        self, queries: Sequence[str], passages: Sequence[str], *, batch_size: int = 64, show_progress: bool = True
    ) -> np.ndarray:
        """Cosine similarities ``(n,)`` float32 of ``(queries[i], passages[i])``."""
        if len(queries) != len(passages):
            raise ValueError(f"{len(queries)} queries but {len(passages)} passages")
        missing = [text for text in passages if text not in self.rows]
        if missing:
            raise ValueError(
                f"{len(missing)} of {len(passages)} passages have no precomputed embedding "
                f"(first: {missing[0][:80]!r}); were the embeddings computed for another corpus?"
            )
        distinct: dict[str, int] = {}
        query_index = [distinct.setdefault(text, len(distinct)) for text in queries]
        encoded = F.normalize(
            self.bi_encoder.encode(
                list(distinct), batch_size=batch_size, show_progress=show_progress, description="encoding queries"
            ),
            dim=-1,
        )
        passage_rows = torch.tensor([self.rows[text] for text in passages], dtype=torch.long)
        return (encoded[query_index] * self.embeddings[passage_rows]).sum(dim=-1).numpy()
