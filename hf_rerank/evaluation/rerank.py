"""Rerank the top-k of a first-stage run with a model, producing a new run.

Input: an :class:`~hf_rerank.data.collection.IRCollection`, the name of one of its runs, a model
with ``score_pairs(queries, passages) -> np.ndarray`` (a CrossEncoder or BiEncoder), a depth k.
Output: a run ``{qid: {pid: score}}`` where each query's top-k candidates carry the model's
scores, followed by the first stage's candidates below rank k in their first-stage order (their
scores are set below every model score), so that metrics deeper than k, such as R@100 after
reranking the top 20, still see them. Candidates whose passage has no text are left out (one
counted warning, from :meth:`IRCollection.candidates`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import Run


class PairScorer(Protocol):
    """What reranking needs of a model."""

    def score_pairs(self, queries: list[str], passages: list[str], *, batch_size: int, show_progress: bool) -> np.ndarray: ...


@dataclass
class RerankResult:
    """A reranked run and how long scoring took (``pairs``: pairs scored by the model)."""

    run: Run
    pairs: int
    seconds: float

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else float("nan")


def rerank(
    collection: IRCollection,
    run_name: str,
    model: PairScorer,
    *,
    depth: int = 100,
    batch_size: int = 64,
    show_progress: bool = True,
) -> RerankResult:
    """Rescore the top-``depth`` candidates of ``collection.runs[run_name]`` with ``model``."""
    candidates = collection.candidates(run_name, depth)
    queries = [collection.queries[qid] for qid, _ in candidates.pairs]
    passages = [collection.corpus[pid] for _, pid in candidates.pairs]
    start = time.perf_counter()
    scores = model.score_pairs(queries, passages, batch_size=batch_size, show_progress=show_progress)
    seconds = time.perf_counter() - start
    return RerankResult(merge_scores(collection.run(run_name), candidates.pairs, scores, depth), len(scores), seconds)


def merge_scores(first_stage: Run, pairs: list[tuple[str, str]], scores: np.ndarray, depth: int) -> Run:
    """The reranked run: model scores for ``pairs``, then the first stage below rank ``depth``.

    Queries of ``first_stage`` with no scored pair are left out (they had no text).
    """
    scored: Run = {}
    for (qid, pid), score in zip(pairs, scores.tolist()):
        scored.setdefault(qid, {})[pid] = float(score)
    run: Run = {}
    for qid, reranked in scored.items():
        ordered = dict(sorted(reranked.items(), key=lambda item: -item[1]))
        floor = min(ordered.values())
        tail = list(first_stage[qid])[depth:]
        for offset, pid in enumerate(tail, start=1):
            ordered[pid] = floor - offset
        run[qid] = ordered
    return run
