"""Training examples from an :class:`IRCollection`: (query, passage) pairs and groups.

Pure and seeded: no tokenisation, no global random state; the same collection, options and
seed give the same examples in the same order. Examples hold ids only; the collator
(:mod:`hf_rerank.data.collators`) looks the texts up and tokenises.

Positives and negatives
-----------------------
- A *positive* is a judged passage with ``grade >= positive_grade`` that has text in the corpus,
  whether or not a run retrieved it.
- *Negatives* come from the candidates of the chosen runs (the union of their top-``depth``,
  first-seen order): never a positive, never a passage without text. The ``negatives`` source
  picks which candidates count:

  - ``"judged"``: candidates judged below ``positive_grade``. With TREC DL's threshold of 2,
    grade-1 ("related") passages are judged non-relevant and so ARE negatives.
  - ``"unjudged"``: candidates absent from the query's qrels (assumed non-relevant).
  - ``"any"``: both.

Queries left out, each reason with one counted warning on the ``"hf_rerank"`` logger: judged
queries with no text, queries with no positive that has text, queries in none of the runs (they
have no negatives); :func:`make_groups` also leaves out queries with too few negatives.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hf_rerank.data.collection import IRCollection
from hf_rerank.errors import DataError, UsageError

logger = logging.getLogger("hf_rerank")

NEGATIVE_SOURCES = ("judged", "unjudged", "any")


@dataclass(frozen=True)
class PairExample:
    """One (query, passage) pair with its target ``label`` (0/1, or the grade when graded)."""

    qid: str
    pid: str
    label: float


@dataclass(frozen=True)
class GroupExample:
    """One query's list: ``pids[0]`` its positive (or its teacher's best candidate), ``pids[1:]`` the
    others; ``labels`` (grades from qrels, 0 when unjudged) and ``teacher`` (the teacher's score of
    each passage, or ``None`` without a teacher) aligned with ``pids``. Lists may be of any length >= 2."""

    qid: str
    pids: tuple[str, ...]
    labels: tuple[float, ...]
    teacher: tuple[float, ...] | None = None

    def __post_init__(self):
        if len(self.pids) != len(self.labels):
            raise ValueError(f"group for query {self.qid!r}: {len(self.pids)} passages but {len(self.labels)} labels")
        if self.teacher is not None and len(self.teacher) != len(self.pids):
            raise ValueError(
                f"group for query {self.qid!r}: {len(self.pids)} passages but {len(self.teacher)} teacher scores"
            )


@dataclass(frozen=True)
class TripletExample:
    """A query, one positive and one negative passage; ``negative=None`` for in-batch negatives only."""

    qid: str
    positive: str
    negative: str | None = None


@dataclass(frozen=True)
class _QueryPool:
    """A query's positives ``(pid, grade)`` and candidate negatives ``(pid, grade or None)``."""

    qid: str
    positives: list[tuple[str, int]]
    negatives: list[tuple[str, int | None]]


def make_judged_pairs(collection: IRCollection, *, positive_grade: int = 2, graded: bool = False) -> list[PairExample]:
    """Every judged (query, passage) pair whose query and passage have text, in qrels order.

    Args:
        collection: its ``qrels`` are read; runs are not used.
        positive_grade: label 1.0 for ``grade >= positive_grade``, else 0.0 (when not graded).
        graded: label each pair with its grade as a float instead.
    Returns:
        one :class:`PairExample` per judgment with text (judgments without text are counted in
        one warning). On TREC DL 2020 this gives 5,004 pairs.
    """
    _check_positive_grade(positive_grade)
    pairs: list[PairExample] = []
    no_text = 0
    for qid, judged in collection.qrels.items():
        for pid, grade in judged.items():
            if qid not in collection.queries or pid not in collection.corpus:
                no_text += 1
                continue
            label = float(grade) if graded else float(grade >= positive_grade)
            pairs.append(PairExample(qid, pid, label))
    if no_text:
        logger.warning(
            "%s: %d of %d judgments name a query or passage with no text and are left out",
            collection.name,
            no_text,
            no_text + len(pairs),
        )
    return pairs


def make_pairs(
    collection: IRCollection,
    *,
    runs: Sequence[str] | None = None,
    depth: int = 100,
    positive_grade: int = 2,
    negatives: str = "judged",
    negatives_per_query: int | None = None,
    graded: bool = False,
    seed: int = 12,
) -> list[PairExample]:
    """Pointwise examples: each query's positives and negatives sampled from run candidates.

    Args:
        collection: queries, corpus, qrels and runs.
        runs: names of the runs whose candidates give negatives (default: all runs).
        depth: candidates per query taken from each run's top.
        positive_grade: the lowest grade that counts as relevant.
        negatives: one of :data:`NEGATIVE_SOURCES` (see the module docstring).
        negatives_per_query: negatives sampled without replacement per query (fewer when fewer
            exist); ``None`` takes them all.
        graded: label positives, and judged negatives, with their grade instead of 1.0 / 0.0.
        seed: seeds the sampling and the final shuffle.
    Returns:
        :class:`PairExample` list, shuffled. A query with no negatives of the source keeps its
        positives (counted in a warning).
    """
    if negatives_per_query is not None and negatives_per_query < 1:
        raise UsageError(f"negatives_per_query must be >= 1 or None (all), got {negatives_per_query}")
    pools = _query_pools(collection, runs, depth, positive_grade, negatives)
    rng = random.Random(seed)
    pairs: list[PairExample] = []
    without_negatives = []
    for pool in pools:
        pairs.extend(PairExample(pool.qid, pid, _label(grade, graded)) for pid, grade in pool.positives)
        chosen = pool.negatives
        if negatives_per_query is not None and len(chosen) > negatives_per_query:
            chosen = rng.sample(chosen, negatives_per_query)
        pairs.extend(PairExample(pool.qid, pid, _negative_label(grade, graded)) for pid, grade in chosen)
        if not chosen:
            without_negatives.append(pool.qid)
    if without_negatives:
        logger.warning(
            "%s: %d queries have no %s negatives in the top-%d candidates; their positives are used alone: %s",
            collection.name,
            len(without_negatives),
            negatives,
            depth,
            _first(without_negatives),
        )
    rng.shuffle(pairs)
    return pairs


def make_groups(
    collection: IRCollection,
    *,
    runs: Sequence[str] | None = None,
    depth: int = 100,
    positive_grade: int = 2,
    negatives: str = "judged",
    group_size: int = 8,
    graded: bool = False,
    seed: int = 12,
) -> list[GroupExample]:
    """Listwise examples: one group per (query, positive), the positive first.

    Args:
        collection, runs, depth, positive_grade, negatives, graded, seed: as in :func:`make_pairs`.
        group_size: passages per group at most: the positive, then ``group_size - 1`` distinct
            negatives sampled without replacement (freshly for each positive).
    Returns:
        :class:`GroupExample` list, shuffled. A query with fewer than ``group_size - 1`` negatives
        keeps them all in shorter groups (the collator pads and masks; counted in a warning); a
        query with none is left out (counted in a warning).
    """
    if group_size < 2:
        raise UsageError(f"group_size must be >= 2 (a positive and at least one negative), got {group_size}")
    pools = _query_pools(collection, runs, depth, positive_grade, negatives)
    rng = random.Random(seed)
    groups: list[GroupExample] = []
    short, without, positives_lost = [], [], 0
    for pool in pools:
        if not pool.negatives:
            without.append(pool.qid)
            positives_lost += len(pool.positives)
            continue
        if len(pool.negatives) < group_size - 1:
            short.append(pool.qid)
        for pid, grade in pool.positives:
            chosen = rng.sample(pool.negatives, min(group_size - 1, len(pool.negatives)))
            groups.append(
                GroupExample(
                    pool.qid,
                    (pid, *(negative for negative, _ in chosen)),
                    (_label(grade, graded), *(_negative_label(negative_grade, graded) for _, negative_grade in chosen)),
                )
            )
    if short:
        logger.warning(
            "%s: %d queries have fewer than %d %s negatives in the top-%d candidates; their groups are shorter: %s",
            collection.name,
            len(short),
            group_size - 1,
            negatives,
            depth,
            _first(short),
        )
    if without:
        logger.warning(
            "%s: %d queries (%d positives) have no %s negatives in the top-%d candidates and are left out: %s",
            collection.name,
            len(without),
            positives_lost,
            negatives,
            depth,
            _first(without),
        )
    rng.shuffle(groups)
    return groups


def make_teacher_groups(
    collection: IRCollection,
    teacher: Mapping[str, Mapping[str, float]],
    *,
    group_size: int = 8,
    groups_per_query: int = 1,
    depth: int | None = None,
    positive_grade: int = 2,
    graded: bool = False,
    seed: int = 12,
) -> list[GroupExample]:
    """Distillation examples: lists of a teacher's candidates, each passage with the teacher's score.

    For every query of ``teacher`` with text, its candidates are the teacher's passages that have
    text, by teacher score descending (ties in run order), cut to ``depth``. Each of its
    ``groups_per_query`` groups is the teacher's best candidate, then ``group_size - 1`` others
    sampled without replacement from the rest (fewer when fewer exist: the group is shorter).
    Qrels are not needed: ``labels`` are the qrels' grades where judged (1.0/0.0 by
    ``positive_grade`` unless ``graded``), 0.0 where not.

    Args:
        collection: queries, corpus and (optional) qrels.
        teacher: ``{qid: {pid: score}}``, higher = more relevant (a run file's scores, e.g. from
            ``hf-rerank score`` or ``hf-rerank fuse``).
        group_size: passages per group at most (>= 2).
        groups_per_query: groups drawn per query (each a fresh sample).
        depth: candidates per query taken from the teacher's top (None: all).
        positive_grade, graded: how judged grades become labels, as in :func:`make_groups`.
        seed: seeds the sampling and the final shuffle.
    Returns:
        :class:`GroupExample` list with ``teacher`` set, shuffled. Queries without text, or with
        fewer than 2 candidates with text, are left out; queries with fewer than ``group_size``
        keep shorter groups; each case is counted in one warning.
    """
    if group_size < 2:
        raise UsageError(f"group_size must be >= 2, got {group_size}")
    if groups_per_query < 1:
        raise UsageError(f"groups_per_query must be >= 1, got {groups_per_query}")
    if depth is not None and depth < 2:
        raise UsageError(f"depth must be >= 2 (a list needs two candidates) or None, got {depth}")
    _check_positive_grade(positive_grade)
    rng = random.Random(seed)
    groups: list[GroupExample] = []
    no_text, too_few, short = [], [], []
    for qid, scored in teacher.items():
        if qid not in collection.queries:
            no_text.append(qid)
            continue
        ranked = sorted(
            ((pid, score) for pid, score in scored.items() if pid in collection.corpus), key=lambda item: -item[1]
        )[:depth]
        if len(ranked) < 2:
            too_few.append(qid)
            continue
        if len(ranked) < group_size:
            short.append(qid)
        judged = collection.qrels.get(qid, {})
        best, rest = ranked[0], ranked[1:]
        for _ in range(groups_per_query):
            chosen = [best, *rng.sample(rest, min(group_size - 1, len(rest)))]
            groups.append(
                GroupExample(
                    qid,
                    tuple(pid for pid, _ in chosen),
                    tuple(_judged_label(judged.get(pid), positive_grade, graded) for pid, _ in chosen),
                    tuple(float(score) for _, score in chosen),
                )
            )
    where = collection.name
    if no_text:
        logger.warning("%s: %d teacher queries have no text and are left out: %s", where, len(no_text), _first(no_text))
    if too_few:
        logger.warning(
            "%s: %d teacher queries have fewer than 2 candidates with text and are left out: %s",
            where,
            len(too_few),
            _first(too_few),
        )
    if short:
        logger.warning(
            "%s: %d teacher queries have fewer than %d candidates; their groups are shorter: %s",
            where,
            len(short),
            group_size,
            _first(short),
        )
    if not groups:
        raise DataError(f"{where}: the teacher run gives no query with text and 2 candidates with text")
    rng.shuffle(groups)
    return groups


def make_triplets(
    collection: IRCollection,
    *,
    negatives: str | Mapping[str, Sequence[str]] | None = "random",
    positive_grade: int = 2,
    seed: int = 12,
) -> list[TripletExample]:
    """Bi-encoder examples: one per (query, judged positive with text), shuffled.

    Args:
        collection: queries, corpus and qrels (runs are not used).
        negatives: where each example's negative comes from:

            - ``None``: no negative (in-batch negatives only, e.g. for ``mnrl``);
            - ``"random"``: a passage drawn uniformly from the corpus, never one judged
              ``>= positive_grade`` for the query (arXiv 2506.18535's random-negative triplets);
            - a mapping ``{qid: [pid, ...]}`` of mined hard negatives
              (:func:`hf_rerank.mining.dense.mine_hard_negatives`): one drawn from the query's
              list for each of its positives. Queries absent from the mapping, or whose list is
              empty, are left out (counted in a warning); a listed pid judged ``>= positive_grade``
              for the query is an error.
        positive_grade: the lowest grade that counts as relevant.
        seed: seeds the negative draws and the final shuffle.
    Returns:
        :class:`TripletExample` list.
    """
    positives = _positives_by_query(collection, positive_grade)
    rng = random.Random(seed)
    pool = list(collection.corpus)
    examples: list[TripletExample] = []
    without = []
    for qid, query_positives in positives.items():
        relevant = {pid for pid, grade in collection.qrels[qid].items() if grade >= positive_grade}
        if isinstance(negatives, Mapping):
            mined = list(negatives.get(qid, ()))
            clash = [pid for pid in mined if pid in relevant]
            if clash:
                raise DataError(f"mined negatives of query {qid!r} include judged positives: {_first(clash)}")
            missing = [pid for pid in mined if pid not in collection.corpus]
            if missing:
                raise DataError(f"mined negatives of query {qid!r} have no passage text: {_first(missing)}")
            if not mined:
                without.append(qid)
                continue
        for pid, _ in query_positives:
            if negatives is None:
                negative = None
            elif isinstance(negatives, Mapping):
                negative = rng.choice(mined)
            elif negatives == "random":
                if len(relevant) >= len(pool):
                    raise DataError(
                        f"query {qid!r}: every passage of the corpus is a positive; no random negative exists"
                    )
                negative = rng.choice(pool)
                while negative in relevant:
                    negative = rng.choice(pool)
            else:
                raise ValueError(
                    f"negatives must be None, 'random' or a {{qid: [pid, ...]}} mapping, got {negatives!r}"
                )
            examples.append(TripletExample(qid, pid, negative))
    if without:
        logger.warning(
            "%s: %d queries with positives have no mined negatives and are left out: %s",
            collection.name,
            len(without),
            _first(without),
        )
    rng.shuffle(examples)
    return examples


def _query_pools(
    collection: IRCollection, runs: Sequence[str] | None, depth: int, positive_grade: int, negatives: str
) -> list[_QueryPool]:
    """Each usable query's positives and negative candidates, in qrels order; warns for the rest."""
    if negatives not in NEGATIVE_SOURCES:
        raise UsageError(f"negatives must be one of {', '.join(NEGATIVE_SOURCES)}, got {negatives!r}")
    if depth < 1:
        raise UsageError(f"depth must be >= 1, got {depth}")
    _check_positive_grade(positive_grade)
    names = _run_names(collection, runs)
    wanted = {
        "judged": lambda grade: grade is not None and grade < positive_grade,
        "unjudged": lambda grade: grade is None,
        "any": lambda grade: grade is None or grade < positive_grade,
    }[negatives]
    candidates: dict[str, dict[str, None]] = {}
    for name in names:
        for qid, pid in collection.candidates(name, depth).pairs:
            candidates.setdefault(qid, {})[pid] = None

    not_in_runs = []
    pools: list[_QueryPool] = []
    for qid, positives in _positives_by_query(collection, positive_grade).items():
        if qid not in candidates:
            not_in_runs.append(qid)
            continue
        judged = collection.qrels[qid]
        graded_candidates = ((pid, judged.get(pid)) for pid in candidates[qid])
        pools.append(_QueryPool(qid, positives, [(pid, grade) for pid, grade in graded_candidates if wanted(grade)]))
    if not_in_runs:
        logger.warning(
            "%s: %d queries with positives are in none of the runs %s (no negatives) and are left out: %s",
            collection.name,
            len(not_in_runs),
            ", ".join(names),
            _first(not_in_runs),
        )
    return pools


def _positives_by_query(collection: IRCollection, positive_grade: int) -> dict[str, list[tuple[str, int]]]:
    """``{qid: [(pid, grade), ...]}`` judged ``>= positive_grade`` with texts, in qrels order; warns for the rest."""
    _check_positive_grade(positive_grade)
    no_query_text, no_positive = [], []
    positives_without_text = 0
    found: dict[str, list[tuple[str, int]]] = {}
    for qid, judged in collection.qrels.items():
        if qid not in collection.queries:
            no_query_text.append(qid)
            continue
        relevant = [(pid, grade) for pid, grade in judged.items() if grade >= positive_grade]
        positives = [(pid, grade) for pid, grade in relevant if pid in collection.corpus]
        positives_without_text += len(relevant) - len(positives)
        if positives:
            found[qid] = positives
        else:
            no_positive.append(qid)
    where = collection.name
    if no_query_text:
        logger.warning(
            "%s: %d judged queries have no text and are left out: %s", where, len(no_query_text), _first(no_query_text)
        )
    if positives_without_text:
        logger.warning(
            "%s: %d judged positives (grade >= %d) have no passage text and are left out",
            where,
            positives_without_text,
            positive_grade,
        )
    if no_positive:
        logger.warning(
            "%s: %d queries have no positive (grade >= %d) with text and are left out: %s",
            where,
            len(no_positive),
            positive_grade,
            _first(no_positive),
        )
    return found


def _run_names(collection: IRCollection, runs: Sequence[str] | None) -> list[str]:
    available = ", ".join(sorted(collection.runs)) or "none"
    if isinstance(runs, str):
        raise TypeError(f"runs must be a list of run names, got the string {runs!r} (write [{runs!r}])")
    names = list(collection.runs) if runs is None else list(runs)
    if not names:
        raise DataError(f"no runs to draw negatives from (collection {collection.name!r} has runs: {available})")
    unknown = [name for name in names if name not in collection.runs]
    if unknown:
        raise UsageError(
            f"collection {collection.name!r} has no run {', '.join(map(repr, unknown))} (runs: {available})"
        )
    return names


def _check_positive_grade(positive_grade: int) -> None:
    if positive_grade < 1:
        raise UsageError(f"positive_grade must be >= 1 (grade 0 is non-relevant), got {positive_grade}")


def _label(grade: int, graded: bool) -> float:
    return float(grade) if graded else 1.0


def _negative_label(grade: int | None, graded: bool) -> float:
    return float(grade) if graded and grade is not None else 0.0


def _judged_label(grade: int | None, positive_grade: int, graded: bool) -> float:
    if grade is None:
        return 0.0
    return float(grade) if graded else float(grade >= positive_grade)


def _first(ids: list[str], count: int = 10) -> str:
    return ", ".join(ids[:count]) + (", ..." if len(ids) > count else "")
