"""Rerank the top-k of a first-stage run with a model, producing a new run.

Input: an :class:`~hf_rerank.data.collection.IRCollection`, the name of one of its runs, a model
with ``score_pairs(queries, passages) -> np.ndarray`` (a CrossEncoder or BiEncoder), a depth k.
Output: a run ``{qid: {pid: score}}`` where each query's top-k candidates carry the model's
scores, followed by the first stage's candidates below rank k in their first-stage order (their
scores are set below every model score), so that metrics deeper than k, such as R@100 after
reranking the top 20, still see them. Candidates whose passage has no text follow the scored
ones in first-stage order, and queries with no text keep their first-stage ranking, so the
reranked run holds exactly the first stage's passages; the result's ``warnings`` say how many
(they go into ``metrics.json``).

Ties: passages the model scores equally keep their first-stage order; their scores are moved
apart by a few float64 ulps (:func:`~hf_rerank.data.ranking.untie_in_order`) so that trec_eval,
ranx and hf-rerank all read that order, and the result says how many were (``tied``).
Scoring is :func:`~hf_rerank.inference.scoring.score_candidates`; a model that scores any pair NaN or
infinite is refused (:class:`~hf_rerank.inference.scoring.NonFiniteScoresError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import Run
from hf_rerank.data.ranking import untie_in_order
from hf_rerank.inference.scoring import PairScorer, score_candidates


@dataclass
class RerankResult:
    """A reranked run and how long scoring took (``pairs``: pairs scored by the model; ``tied``:
    model scores equal to the one above them, moved below it to keep the first-stage order)."""

    run: Run
    pairs: int
    seconds: float
    tied: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """What a report should say about this reranking (unscorable queries and passages, ties)."""
        tied = (
            [
                f"{self.tied} model score(s) tied with the passage above; ties keep the first stage's order "
                "(scores moved apart by float64 ulps so that trec_eval reads the same order)"
            ]
            if self.tied
            else []
        )
        return self.notes + tied

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
    """Rescore the top-``depth`` candidates of ``collection.runs[run_name]`` with ``model``
    (:func:`score_candidates`) and merge the scores into the first stage's ranking (:func:`merge_scores`)."""
    scored = score_candidates(
        collection, run_name, model, depth=depth, batch_size=batch_size, show_progress=show_progress
    )
    candidates, scores, seconds = scored.candidates, scored.scores, scored.seconds
    run, tied = merge_scores(collection.run(run_name), candidates.pairs, scores, depth)
    notes = []
    if candidates.queries_without_text:
        notes.append(
            f"{len(candidates.queries_without_text)} run queries have no text and keep their first-stage "
            f"ranking: {', '.join(candidates.queries_without_text[:10])}"
        )
    if candidates.skipped:
        notes.append(
            f"{candidates.skipped} of the top-{depth} candidates have no passage text; they follow the "
            "scored ones in first-stage order"
        )
    return RerankResult(run, len(scores), seconds, tied, notes)


def merge_scores(first_stage: Run, pairs: list[tuple[str, str]], scores: np.ndarray, depth: int) -> tuple[Run, int]:
    """The reranked run, holding every query and passage of ``first_stage``: per query, the model's
    scores for its ``pairs`` (ties in first-stage order), then its other passages (below rank
    ``depth``, or without text) in first-stage order, scored below every model score; a query
    with no scored pair (no text) keeps its first-stage ranking. Also returns how many tied
    model scores were moved apart (module docstring). ``depth`` is documentation: the pairs
    given are what was scored."""
    scored: Run = {}
    for (qid, pid), score in zip(pairs, scores.tolist()):
        scored.setdefault(qid, {})[pid] = float(score)
    run: Run = {}
    tied = 0
    for qid, ranked in first_stage.items():
        if qid not in scored:
            run[qid] = dict(ranked)
            continue
        ordered, moved = untie_in_order(dict(sorted(scored[qid].items(), key=lambda item: -item[1])))  # stable sort
        tied += moved
        floor = min(ordered.values())
        rest = [pid for pid in ranked if pid not in ordered]
        for offset, pid in enumerate(rest, start=1):
            ordered[pid] = floor - offset
        run[qid] = ordered
    return run, tied
