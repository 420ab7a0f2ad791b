"""Evaluate dense retrieval: a bi-encoder's exact top-k over a collection's corpus, scored with ranx.

Input: an :class:`~hf_rerank.data.collection.IRCollection` with qrels and a bi-encoder; output: a
:class:`RetrievalReport` (the ``metrics.json`` object of ``hf-rerank retrieve``) and the run. The
search itself (encoding, cache, exact top-k, ties) is :mod:`hf_rerank.inference.dense`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import Run
from hf_rerank.errors import DataError
from hf_rerank.evaluation.metrics import evaluate_run, get_metric_set
from hf_rerank.evaluation.report import EvaluationReport
from hf_rerank.inference.dense import dense_retrieve, encode_corpus


@dataclass
class RetrievalReport(EvaluationReport):
    """An :class:`EvaluationReport` for dense retrieval, written by the same ``write_report``.

    Dense retrieval is itself a first stage: ``run`` is ``"dense"``, ``depth`` is k,
    ``first_stage`` equals ``metrics``, ``significance`` is empty and ``pairs`` is 0. Added:
    ``corpus`` (passages searched), ``encode_seconds`` (encoding the corpus or loading it from the
    cache) and ``search_seconds`` (encoding the queries and searching).
    """

    corpus: int = 0
    encode_seconds: float = 0.0
    search_seconds: float = 0.0

    def table(self) -> str:
        """A plain-text table: one line per metric, then the timings."""
        width = max(len(name) for name in self.metrics)
        return "\n".join(
            [
                f"{self.data} / dense retrieval top-{self.depth} by {self.model} "
                f"over {self.corpus:,} passages ({self.queries} queries)",
                f"convention ({self.metric_set}): {self.convention}",
                *(f"  {name:<{width}}  {value:.4f}" for name, value in self.metrics.items()),
                f"  corpus encoded (or loaded from the cache) in {self.encode_seconds:.1f} s; "
                f"queries encoded and searched in {self.search_seconds:.1f} s; wall time {self.wall_seconds:.1f} s",
            ]
        )


def evaluate_retrieval(
    collection: IRCollection,
    bi_encoder,
    *,
    model_name: str | None = None,
    k: int = 1000,
    metric_set: str = "trec-dl",
    batch_size: int = 128,
    chunk_size: int = 65536,
    precision: str = "auto",
    cache_dir: str | Path | None = None,
    show_progress: bool = True,
) -> tuple[RetrievalReport, Run]:
    """Dense-retrieve the top-``k`` of ``collection.corpus`` for its judged queries and evaluate the run.

    Judged queries are those with a judgment in ``collection.qrels``; one without text cannot be
    retrieved for and scores 0 (a warning from :func:`evaluate_run`). Returns the report and the run.
    """
    started = time.perf_counter()
    metrics = get_metric_set(metric_set)
    judged = [qid for qid, judgments in collection.qrels.items() if judgments]
    if not judged:
        raise DataError(f"collection {collection.name!r} has no qrels: there is nothing to evaluate retrieval against")
    queries = {qid: collection.queries[qid] for qid in judged if qid in collection.queries}
    embeddings = encode_corpus(
        bi_encoder, collection.corpus, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress
    )
    encoded = time.perf_counter()
    run = dense_retrieve(
        bi_encoder,
        queries,
        embeddings,
        k=k,
        batch_size=batch_size,
        chunk_size=chunk_size,
        precision=precision,
        show_progress=show_progress,
    )
    searched = time.perf_counter()
    evaluation = evaluate_run(collection.qrels, run, metrics)
    report = RetrievalReport(
        metrics=evaluation.means,
        first_stage=evaluation.means,
        significance={},
        per_query=evaluation.per_query,
        model=model_name,
        run="dense",
        data=collection.name,
        depth=k,
        metric_set=metrics.name,
        convention=metrics.convention,
        queries=len(evaluation.queries),
        pairs=0,
        pairs_per_second=None,
        wall_seconds=time.perf_counter() - started,
        warnings=list(evaluation.warnings),
        corpus=len(embeddings.pids),
        encode_seconds=encoded - started,
        search_seconds=searched - encoded,
    )
    return report, run
