"""Pair scoring: a model's scores of a run's candidates, the one scoring step of reranking, teacher runs and mining.

Input: an :class:`~hf_rerank.data.collection.IRCollection`, the name of one of its runs, a model
with ``score_pairs(queries, passages) -> np.ndarray`` (a CrossEncoder or BiEncoder,
:func:`~hf_rerank.models.auto.load_reranker`), a depth k. Output: one float32 score per candidate
of the run's top-k that has a query and a passage text (:func:`score_candidates`), or those scores
as a run (:func:`score_run`). No metrics here: :mod:`hf_rerank.evaluation.rerank` merges the scores
into a reranked run, :mod:`hf_rerank.mining.teacher` filters negatives with them.

A *teacher run* is a run ``{qid: {pid: score}}`` whose scores are used as training targets
(distillation losses, :mod:`hf_rerank.losses`) or to filter mined negatives
(:mod:`hf_rerank.mining.teacher`). Conventions of every teacher run made here, and of the
files ``hf-rerank score``, ``hf-rerank fuse`` (:mod:`hf_rerank.evaluation.fusion`) and
``hf-rerank mine-ce`` write:

- **Higher = more relevant.**
- **Scores are raw**: a cross-encoder's logit, a bi-encoder's cosine (the float32 values its
  ``score_pairs`` returns), a fusion's fused score. Nothing is normalised per query here: turning
  scores into targets (a softmax at a temperature, a scale, margins) is the loss's job.
- **A teacher score is a real score**: a candidate whose passage (or query) has no text is left
  out of a model's teacher run, never given a placeholder; :class:`TeacherRun` counts them.
- A model scores through :func:`score_candidates`, the scoring step of ``hf-rerank evaluate``, so a
  teacher run holds exactly the scores that reranking with the same model, depth, batch size and
  precision would rank by (before reranking moves tied scores apart by float64 ulps).
- On disk: a TREC run (:func:`~hf_rerank.data.formats.write_run`: ``qid Q0 pid rank score tag``,
  trec_eval's order, scores in full precision, written atomically).

A model that scores any pair NaN or infinite is refused (:class:`NonFiniteScoresError`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hf_rerank.data.collection import Candidates, IRCollection
from hf_rerank.data.formats import Run
from hf_rerank.data.ranking import trec_order
from hf_rerank.errors import HfRerankError


class PairScorer(Protocol):
    """What reranking needs of a model."""

    def score_pairs(
        self, queries: list[str], passages: list[str], *, batch_size: int, show_progress: bool
    ) -> np.ndarray: ...


class NonFiniteScoresError(HfRerankError, ValueError):
    """The model scored some pairs NaN or infinite (broken weights); nothing should be written."""


@dataclass
class ScoredCandidates:
    """The model's raw scores of a run's top-k: ``scores[i]`` (float32, finite) is the score of
    ``candidates.pairs[i]``; ``candidates`` also says what could not be scored (no text);
    ``seconds``: time spent in ``score_pairs``."""

    candidates: Candidates
    scores: np.ndarray
    seconds: float


def score_candidates(
    collection: IRCollection,
    run_name: str,
    model: PairScorer,
    *,
    depth: int = 100,
    batch_size: int = 64,
    show_progress: bool = True,
) -> ScoredCandidates:
    """Score the top-``depth`` candidates of ``collection.runs[run_name]`` that have a query and a
    passage text (:meth:`IRCollection.candidates`) with ``model``: the one scoring step of
    :func:`~hf_rerank.evaluation.rerank.rerank` and of teacher runs (:func:`score_run`).

    Raises :class:`NonFiniteScoresError` when any score is NaN or infinite.
    """
    candidates = collection.candidates(run_name, depth)
    queries = [collection.queries[qid] for qid, _ in candidates.pairs]
    passages = [collection.corpus[pid] for _, pid in candidates.pairs]
    start = time.perf_counter()
    scores = model.score_pairs(queries, passages, batch_size=batch_size, show_progress=show_progress)
    seconds = time.perf_counter() - start
    bad = ~np.isfinite(scores)
    if bad.any():
        qid, pid = candidates.pairs[int(np.argmax(bad))]
        raise NonFiniteScoresError(
            f"the model scored {int(bad.sum())} of {len(scores)} pairs NaN or infinite "
            f"(first: query {qid!r}, passage {pid!r}); its weights are broken"
        )
    return ScoredCandidates(candidates, scores, seconds)


@dataclass
class TeacherRun:
    """A model's scores over a run's top-k (:func:`score_run`).

    Attributes:
        run: ``{qid: {pid: raw score}}``, each query's passages in trec_eval's order; only pairs
            the model scored.
        skipped: top-k candidates left out because their passage has no text.
        queries_without_text: run queries left out because they have no text.
        seconds: time spent scoring.
    """

    run: Run
    skipped: int = 0
    queries_without_text: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pairs(self) -> int:
        """Number of (query, passage) scores in :attr:`run`."""
        return sum(map(len, self.run.values()))


def score_run(
    collection: IRCollection,
    run_name: str,
    model: PairScorer,
    *,
    depth: int = 100,
    batch_size: int = 64,
    show_progress: bool = True,
) -> TeacherRun:
    """``model``'s raw scores of the top-``depth`` candidates of ``collection.runs[run_name]``.

    Input: a collection, one of its runs, a model with ``score_pairs`` (a CrossEncoder or a
    BiEncoder, :func:`~hf_rerank.models.auto.load_reranker`), a depth. Output: a
    :class:`TeacherRun` holding one score per candidate that has a query and a passage text
    (module docstring: conventions); candidates without text are counted, not scored.
    Raises :class:`NonFiniteScoresError` when the model scores a pair
    NaN or infinite.
    """
    scored = score_candidates(
        collection, run_name, model, depth=depth, batch_size=batch_size, show_progress=show_progress
    )
    run: Run = {}
    for (qid, pid), score in zip(scored.candidates.pairs, scored.scores.tolist()):
        run.setdefault(qid, {})[pid] = float(score)
    return TeacherRun(
        {qid: trec_order(scores) for qid, scores in run.items()},
        scored.candidates.skipped,
        list(scored.candidates.queries_without_text),
        scored.seconds,
    )
