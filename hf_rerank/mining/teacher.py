"""Hard negatives for cross-encoders, scored by a teacher and cleaned of likely false negatives.

Pipeline (:func:`mine_with_teacher`, ``hf-rerank mine-ce``):

1. **Candidates** per query (``{qid: [pid, ...]}``): the union of the top-``depth`` of some runs
   (:func:`union_candidates`), or a bi-encoder's dense top-``depth`` (:func:`dense_candidates`,
   the search of ``hf-rerank retrieve``).
2. **Teacher scores** of every candidate and of every judged positive of the query (grade >=
   ``positive_grade``; scored even when no candidate list holds it): a model through
   :func:`~hf_rerank.inference.scoring.score_run` (the scoring code of ``hf-rerank evaluate``),
   or a given teacher run (a ``hf-rerank score`` or ``hf-rerank fuse`` file,
   :func:`filter_with_teacher`). Raw scores, higher = more relevant
   (:mod:`hf_rerank.inference.scoring`). A pair without a teacher score (no text, or absent from
   a given teacher run) is left out: it can be neither filtered nor written; it is counted.
3. The query's **reference positive** is its judged positive with the highest teacher score
   ``s+`` (ties in trec_eval's order). It is never a negative.
4. Every other candidate is a negative unless a filter removes it (:class:`NegativeFilters`; each
   optional, any combination; a removed candidate is counted under the first filter, in this
   order, that removes it):

   - ``judged``: passages judged >= ``positive_grade`` (on by default; ``hf-rerank mine-ce`` always
     applies it, since a judged positive used as a negative is a known label error; turning it
     off serves to measure the teacher-based filters, as ``benchmarks/false_negative_filters.py``
     does);
   - ``window (first, last)``: keeps ranks ``first`` to ``last`` (1-based, inclusive) of the
     teacher's ranking of the query's scored candidates (judged positives among the candidates
     hold ranks too; positives scored only because they are positives do not; ties in trec_eval's
     order, score descending then pid descending);
   - ``max_score x``: drops a negative scored above ``x``;
   - ``relative_margin m``: drops a negative scored above ``s+ - |s+| * m``. This is
     sentence-transformers' definition, followed exactly (``mine_hard_negatives``,
     ``util/hard_negatives.py``, v6.2: "discards negatives whose similarity is greater than
     ``positive_score - abs(positive_score) * relative_margin``", strict ``>``): for ``s+ >= 0`` it is
     ``(1 - m) * s+``; for ``s+ < 0`` (a cross-encoder's negative logit) it is ``(1 + m) * s+``, still
     ``m * |s+|`` below the positive, where a naive ``(1 - m) * s+`` would lie above ``s+`` and keep
     negatives the teacher prefers to the positive. ``m = 0`` drops negatives scored above the
     positive. One difference: sentence-transformers measures against a query's *lowest*-scored
     positive, this module against its *highest*-scored one (the reference positive: the pair a
     distillation target is anchored on), which drops fewer negatives when a query has several
     positives. A query with no scored judged positive (none judged, or none with a text or a
     teacher score) has no ``s+``: the relative margin does not apply to it, its candidates face
     only the other filters; :attr:`TeacherNegatives.queries_without_positive` lists them.

Output (:meth:`TeacherNegatives.run`, the file ``hf-rerank mine-ce --output`` writes, a TREC run
by :func:`~hf_rerank.data.formats.write_run`): per query, every judged positive (grade >=
``positive_grade``) that has a teacher score, and every kept negative, each with its raw teacher
score; removed candidates are not written. Positives are told apart from negatives by the qrels
(grade >= ``positive_grade``), so the file is at once the mined negatives and the teacher scores
for distillation. A query with neither is absent. ``--negatives FILE`` also writes the kept
negatives as ``qid<TAB>pid`` lines (:func:`~hf_rerank.data.negatives.write_negatives`), in teacher
order.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import Qrels, Run
from hf_rerank.data.ranking import trec_order
from hf_rerank.errors import DataError, UsageError
from hf_rerank.inference.dense import dense_retrieve, encode_corpus
from hf_rerank.inference.scoring import PairScorer, score_run

#: The filters, in the order they are applied (and a removal is attributed).
REASONS = ("judged", "window", "max-score", "relative-margin")
#: The run name under which the pairs to score are handed to :func:`score_run`.
POOL_RUN = "teacher-pool"


@dataclass(frozen=True)
class NegativeFilters:
    """Which false-negative filters to apply (module docstring); the defaults apply only ``judged``.

    Attributes:
        exclude_judged: drop every passage judged >= the positive grade.
        window: ``(first, last)`` ranks of the teacher's ranking to keep, 1-based, inclusive.
        max_score: drop negatives whose teacher score is above this.
        relative_margin: drop negatives scored above ``s+ - |s+| * relative_margin`` (>= 0).
    """

    exclude_judged: bool = True
    window: tuple[int, int] | None = None
    max_score: float | None = None
    relative_margin: float | None = None

    def __post_init__(self):
        if self.window is not None:
            first, last = self.window
            if not (isinstance(first, int) and isinstance(last, int) and 1 <= first <= last):
                raise UsageError(f"--window must be two ranks 1 <= FIRST <= LAST, got {tuple(self.window)!r}")
        if self.max_score is not None and not math.isfinite(self.max_score):
            raise UsageError(f"--max-score must be a finite number, got {self.max_score}")
        if self.relative_margin is not None and not (math.isfinite(self.relative_margin) and self.relative_margin >= 0):
            raise UsageError(f"--relative-margin must be a finite number >= 0, got {self.relative_margin}")

    def describe(self) -> str:
        """The filters in words, e.g. ``judged positives, window 11-100, relative margin 0.1``."""
        parts = ["judged positives"] if self.exclude_judged else []
        if self.window is not None:
            parts.append(f"window {self.window[0]}-{self.window[1]}")
        if self.max_score is not None:
            parts.append(f"max score {self.max_score:g}")
        if self.relative_margin is not None:
            parts.append(f"relative margin {self.relative_margin:g}")
        return ", ".join(parts) or "no filter"


def select_negatives(
    candidates: Mapping[str, float],
    *,
    judged: Collection[str] = (),
    positive: tuple[str, float] | None = None,
    filters: NegativeFilters = NegativeFilters(),
) -> dict[str, str | None]:
    """Decide, for one query, which scored candidates are negatives.

    Args:
        candidates: ``{pid: teacher score}`` of the query's candidates (any order).
        judged: the query's judged positives (grade >= the positive grade).
        positive: ``(pid, s+)``, the reference positive, or None when the query has none scored.
        filters: the filters to apply.
    Returns:
        ``{pid: None}`` for a kept negative, ``{pid: reason}`` (one of :data:`REASONS`) for a removed
        candidate, in the teacher's order (trec_eval's: score descending, pid descending); the
        reference positive is left out (it is never a negative).
    """
    threshold = None
    if filters.relative_margin is not None and positive is not None:
        threshold = positive[1] - abs(positive[1]) * filters.relative_margin
    decisions: dict[str, str | None] = {}
    for rank, (pid, score) in enumerate(trec_order(candidates).items(), start=1):
        if positive is not None and pid == positive[0]:
            continue
        if filters.exclude_judged and pid in judged:
            decisions[pid] = "judged"
        elif filters.window is not None and not filters.window[0] <= rank <= filters.window[1]:
            decisions[pid] = "window"
        elif filters.max_score is not None and score > filters.max_score:
            decisions[pid] = "max-score"
        elif threshold is not None and score > threshold:
            decisions[pid] = "relative-margin"
        else:
            decisions[pid] = None
    return decisions


@dataclass
class TeacherNegatives:
    """The result of :func:`filter_with_teacher` (or :func:`mine_with_teacher`).

    Attributes:
        teacher: the teacher scores used (every scored candidate and judged positive).
        positives: ``{qid: {pid: teacher score}}``, the judged positives with a teacher score
            (trec_eval's order: the first is the reference positive).
        decisions: ``{qid: {pid: reason or None}}`` from :func:`select_negatives`, per query of
            the candidates that has a teacher score.
        unscored: candidate pairs with no teacher score (left out).
        unscored_positives: judged positives (of the candidates' queries) with no teacher score.
        filters, positive_grade: the settings used.
        queries_without_positive: queries with scored candidates but no scored judged positive
            (no relative margin for them).
    """

    teacher: Run
    positives: dict[str, dict[str, float]]
    decisions: dict[str, dict[str, str | None]]
    unscored: int
    unscored_positives: int
    filters: NegativeFilters
    positive_grade: int
    queries_without_positive: list[str] = field(default_factory=list)

    @property
    def negatives(self) -> dict[str, dict[str, float]]:
        """``{qid: {pid: teacher score}}`` of the kept negatives, teacher order; queries with none left out."""
        kept = {
            qid: {pid: self.teacher[qid][pid] for pid, reason in decided.items() if reason is None}
            for qid, decided in self.decisions.items()
        }
        return {qid: scores for qid, scores in kept.items() if scores}

    def removed(self) -> Counter:
        """How many candidates each filter removed (``Counter`` keyed by :data:`REASONS`)."""
        return Counter(reason for decided in self.decisions.values() for reason in decided.values() if reason)

    def run(self) -> Run:
        """The output run (module docstring): per query, its scored positives and kept negatives."""
        negatives = self.negatives
        run: Run = {}
        for qid in self.decisions:
            scores = {**self.positives.get(qid, {}), **negatives.get(qid, {})}
            if scores:
                run[qid] = trec_order(scores)
        return run

    def summary(self) -> list[str]:
        """Lines for a report: kept negatives, removals per filter, what could not be scored."""
        negatives = self.negatives
        removed = self.removed()
        lines = [
            f"{sum(map(len, negatives.values()))} negatives kept for {len(negatives)} of {len(self.decisions)} queries "
            f"(filters: {self.filters.describe()}); {sum(map(len, self.positives.values()))} judged positives "
            f"(grade >= {self.positive_grade}) with teacher scores",
            "removed: "
            + (", ".join(f"{removed[reason]} by {reason}" for reason in REASONS if removed[reason]) or "none"),
        ]
        if self.queries_without_positive:
            lines.append(
                f"{len(self.queries_without_positive)} queries have no scored judged positive: no relative "
                f"margin for them ({', '.join(self.queries_without_positive[:10])})"
            )
        if self.unscored or self.unscored_positives:
            lines.append(
                f"left out without a teacher score (no text, or absent from the teacher run): "
                f"{self.unscored} candidates, {self.unscored_positives} judged positives"
            )
        return lines


def union_candidates(runs: Sequence[Run], depth: int) -> dict[str, list[str]]:
    """``{qid: [pid, ...]}``: per query, the union of the top-``depth`` of ``runs``, each pid once,
    in order of first appearance (run by run, rank by rank); queries in order of first appearance."""
    if depth < 1:
        raise UsageError(f"--depth must be >= 1, got {depth}")
    if not runs:
        raise UsageError("no runs to take candidates from")
    union: dict[str, dict[str, None]] = {}
    for run in runs:
        for qid, scored in run.items():
            union.setdefault(qid, {}).update(dict.fromkeys(list(scored)[:depth]))
    return {qid: list(pids) for qid, pids in union.items()}


def dense_candidates(
    bi_encoder,
    collection: IRCollection,
    depth: int,
    *,
    cache_dir: str | Path | None = None,
    batch_size: int = 128,
    precision: str = "auto",
    show_progress: bool = True,
) -> dict[str, list[str]]:
    """``{qid: [pid, ...]}``: ``bi_encoder``'s exact dense top-``depth`` over ``collection.corpus``
    for every query of ``collection`` (:func:`~hf_rerank.inference.dense.dense_retrieve`; the
    corpus embeddings cached in ``cache_dir`` when given)."""
    if depth < 1:
        raise UsageError(f"--depth must be >= 1, got {depth}")
    embeddings = encode_corpus(
        bi_encoder, collection.corpus, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress
    )
    run = dense_retrieve(
        bi_encoder,
        collection.queries,
        embeddings,
        k=depth,
        batch_size=batch_size,
        precision=precision,
        show_progress=show_progress,
    )
    return {qid: list(ranked) for qid, ranked in run.items()}


def judged_positives(qrels: Qrels, qid: str, positive_grade: int) -> set[str]:
    """The passages judged ``>= positive_grade`` for ``qid``."""
    return {pid for pid, grade in qrels.get(qid, {}).items() if grade >= positive_grade}


def check_positive_grade(positive_grade: int) -> None:
    """A positive grade must be >= 1 (grade 0 means judged non-relevant); ValueError otherwise."""
    if positive_grade < 1:
        raise UsageError(f"--positive-grade must be >= 1, got {positive_grade}")


def filter_with_teacher(
    teacher: Run,
    candidates: Mapping[str, Sequence[str]],
    qrels: Qrels,
    *,
    positive_grade: int = 1,
    filters: NegativeFilters = NegativeFilters(),
) -> TeacherNegatives:
    """Apply ``filters`` to ``candidates`` (``{qid: [pid, ...]}``) with the scores of ``teacher``.

    ``teacher`` holds the teacher scores (a model's, :func:`mine_with_teacher`, or a run file's);
    ``qrels`` say which passages are positives (grade >= ``positive_grade``). Candidates and judged
    positives missing from ``teacher`` are counted and left out. Returns a :class:`TeacherNegatives`
    covering the queries of ``candidates`` with at least one scored candidate.
    """
    check_positive_grade(positive_grade)
    positives: dict[str, dict[str, float]] = {}
    decisions: dict[str, dict[str, str | None]] = {}
    unscored = unscored_positives = 0
    without_positive = []
    for qid, pids in candidates.items():
        scores = teacher.get(qid, {})
        judged = judged_positives(qrels, qid, positive_grade)
        scored = {pid: scores[pid] for pid in pids if pid in scores}
        unscored += len(pids) - len(scored)
        unscored_positives += sum(pid not in scores for pid in judged)
        if not scored:
            continue
        ranked_positives = trec_order({pid: scores[pid] for pid in judged if pid in scores})
        if ranked_positives:
            positives[qid] = ranked_positives
        else:
            without_positive.append(qid)
        reference = next(iter(ranked_positives.items()), None)
        decisions[qid] = select_negatives(scored, judged=judged, positive=reference, filters=filters)
    return TeacherNegatives(
        teacher, positives, decisions, unscored, unscored_positives, filters, positive_grade, without_positive
    )


def mine_with_teacher(
    collection: IRCollection,
    candidates: Mapping[str, Sequence[str]],
    model: PairScorer,
    *,
    positive_grade: int = 1,
    filters: NegativeFilters = NegativeFilters(),
    batch_size: int = 64,
    show_progress: bool = True,
) -> TeacherNegatives:
    """Score ``candidates`` and the judged positives of their queries with ``model``, then filter.

    Input: ``collection`` (texts and qrels), ``candidates`` ``{qid: [pid, ...]}``
    (:func:`union_candidates`, :func:`dense_candidates`), a teacher model with ``score_pairs``.
    Every pair is scored once, in one :func:`~hf_rerank.inference.scoring.score_run` call.
    Output: :func:`filter_with_teacher` of those scores (module docstring).
    """
    check_positive_grade(positive_grade)
    pool: Run = {}
    for qid, pids in candidates.items():  # positives without a text cannot be scored: counted by filter_with_teacher
        judged = sorted(
            pid
            for pid in judged_positives(collection.qrels, qid, positive_grade) - set(pids)
            if pid in collection.corpus
        )
        pool[qid] = dict.fromkeys([*pids, *judged], 0.0)
    if not any(pool.values()):
        raise DataError(f"collection {collection.name!r}: no candidates to score")
    scoring = dataclasses.replace(collection, runs={POOL_RUN: {qid: pids for qid, pids in pool.items() if pids}})
    teacher = score_run(
        scoring, POOL_RUN, model, depth=max(map(len, pool.values())), batch_size=batch_size, show_progress=show_progress
    )
    return filter_with_teacher(
        teacher.run, candidates, collection.qrels, positive_grade=positive_grade, filters=filters
    )
