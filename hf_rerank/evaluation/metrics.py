"""Retrieval metrics on plain-dict qrels and runs, computed with ranx.

Data representation (shared by the whole package, ids are always ``str``):

- qrels: ``dict[str, dict[str, int]]``   qid -> pid -> relevance grade (0..3 for TREC DL)
- run:   ``dict[str, dict[str, float]]`` qid -> pid -> score (higher is better)

A :class:`MetricSet` names a reporting convention: a tuple of ranx metric names (which are
also the keys we report, e.g. ``"ndcg@10"``, ``"map@100-l2"``) plus one sentence stating the
convention. In ranx names ``@k`` is a rank cut-off, no ``@k`` means the full ranking, and
``-lN`` means "grade >= N is relevant" (default N = 1). ranx's ``ndcg`` uses linear gains
(gain = grade, discount log2(rank + 1)) exactly like trec_eval's ``ndcg``/``ndcg_cut``;
``ndcg_burges`` (2**grade - 1) is *not* what trec_eval computes and is not used here.

ranx is imported lazily inside :func:`evaluate_run` (its first import and numba JIT take
seconds), so importing this module to look at :data:`METRIC_SETS` is cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from hf_rerank.data.ranking import trec_order
from hf_rerank.errors import DataError, UsageError
from hf_rerank.evaluation.ranx_ids import RanxIds

logger = logging.getLogger("hf_rerank")

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

#: How many query ids a warning lists before it abbreviates.
_MAX_IDS_IN_WARNING = 10


@dataclass(frozen=True)
class MetricSet:
    """A named set of ranx metrics reported together under one convention.

    Attributes:
        name: registry key, e.g. ``"trec-dl"``.
        metrics: ranx metric names; they are also the keys of the reported scores.
        convention: one human sentence stating what counts as relevant, the gains and cut-offs.
    """

    name: str
    metrics: tuple[str, ...]
    convention: str


METRIC_SETS: dict[str, MetricSet] = {
    "trec-dl": MetricSet(
        name="trec-dl",
        metrics=("ndcg@10", "map@100-l2", "mrr@10-l2", "recall@100-l2"),
        convention=(
            "TREC DL passage ranking: nDCG@10 on the graded judgments with linear gains as "
            "trec_eval computes it; MAP@100, MRR@10 and Recall@100 count grade >= 2 as "
            "relevant (-l2), as the TREC DL overviews report them."
        ),
    ),
    "msmarco-dev": MetricSet(
        name="msmarco-dev",
        metrics=("mrr@10", "recall@1000"),
        convention=("MS MARCO dev: binary relevance (grade >= 1 is relevant), MRR@10 and Recall@1000."),
    ),
    "paper": MetricSet(
        name="paper",
        metrics=(
            "ndcg@10",
            "map",
            "mrr",
            "precision@10",
            "recall@100",
            "recall@1000",
            "ndcg",
        ),
        convention=(
            "trec_eval -m all_trec without -l: grade >= 1 is relevant, linear-gain nDCG, and "
            "ndcg_cut_10, map, recip_rank, P_10, recall_100, recall_1000 and ndcg over the "
            "full ranking unless a cut-off is named."
        ),
    ),
}


def metric_set_names() -> str:
    """The registered metric sets' names in registry order, for help texts: ``"trec-dl, msmarco-dev or paper"``."""
    names = list(METRIC_SETS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def describe_metric_sets() -> str:
    """Every registered metric set with its convention, for help texts: ``"metric sets:"`` then one
    ``"  <name>: <convention>"`` line per set (no trailing newline)."""
    return "metric sets:\n" + "\n".join(f"  {name}: {s.convention}" for name, s in METRIC_SETS.items())


def get_metric_set(name: str) -> MetricSet:
    """Return the registered :class:`MetricSet` called ``name``.

    Raises:
        ValueError: ``name`` is not registered; the message lists the valid names.
    """
    try:
        return METRIC_SETS[name]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(METRIC_SETS))
        raise UsageError(f"unknown metric set {name!r}; valid names: {valid}") from None


@dataclass
class RunEvaluation:
    """The result of :func:`evaluate_run`; plain Python types only (JSON-serialisable).

    Attributes:
        means: metric -> mean over ``queries``.
        per_query: metric -> qid -> score, for every qid in ``queries``.
        queries: the evaluated qids (every judged query), sorted.
        convention: the metric set's convention sentence.
        warnings: human-readable warnings raised while evaluating (also logged).
    """

    means: dict[str, float]
    per_query: dict[str, dict[str, float]]
    queries: list[str]
    convention: str
    warnings: list[str] = field(default_factory=list)


def _id_list(qids: list[str]) -> str:
    shown = ", ".join(qids[:_MAX_IDS_IN_WARNING])
    if len(qids) > _MAX_IDS_IN_WARNING:
        shown += f", ... ({len(qids) - _MAX_IDS_IN_WARNING} more)"
    return shown


def evaluate_run(qrels: Qrels, run: Run, metric_set: MetricSet | str) -> RunEvaluation:
    """Evaluate ``run`` against ``qrels`` with every metric of ``metric_set``.

    Args:
        qrels: qid -> pid -> grade (ints).
        run: qid -> pid -> score (higher is better; the ranking is by descending score).
        metric_set: a :class:`MetricSet` or the name of a registered one (see :data:`METRIC_SETS`).

    Returns:
        A :class:`RunEvaluation` with Python floats only.

    Rules:
        - The evaluated queries are the queries judged in ``qrels`` (those with at least one
          judgment, of any grade); ``queries`` lists them sorted.
        - Queries of the run with no judgments in ``qrels`` are left out, with one warning
          that counts and lists them.
        - Judged queries missing from the run (or with no documents in it) score 0 on every
          metric and count in the means, as ``trec_eval -c`` does; one warning counts and
          lists them.
        - Judged queries with no document relevant at a metric's level (e.g. no grade >= 2
          for ``-l2``) score 0 on that metric and count in the mean (ranx's behaviour; every
          judged DL19/DL20 query has documents of grade >= 2, so it does not arise there).
        - Documents of the run that are not in ``qrels`` are non-relevant.
        - Each query's passages are ranked by trec_eval's rule (score descending, then passage
          id descending: :mod:`hf_rerank.data.ranking`), so tied scores give trec_eval's values
          (ranx's own sort would order ties its own way).
        - Every warning is also logged on the ``hf_rerank`` logger at WARNING level.

    Raises:
        ValueError: ``qrels`` has no judgments, ``run`` has no documents, the two share no
            query id, or ``metric_set`` is an unknown name.
        TypeError: a query id is not a ``str``.
    """
    mset = get_metric_set(metric_set) if isinstance(metric_set, str) else metric_set
    metrics = list(mset.metrics)
    if not metrics:
        raise ValueError(f"metric set {mset.name!r} has no metrics")

    judged = {qid: docs for qid, docs in qrels.items() if docs}
    if not judged:
        raise DataError("qrels is empty: no query has any judgment")
    if not any(run.values()):
        raise DataError("run is empty: no query has any retrieved document")
    bad = [q for q in (*judged, *run) if not isinstance(q, str)]
    if bad:
        raise TypeError(f"query ids must be str, got {type(bad[0]).__name__} (e.g. {bad[0]!r}); read ids as strings")

    ranked = {qid: docs for qid, docs in run.items() if docs}
    unjudged = sorted(qid for qid in run if qid not in judged)
    missing = sorted(qid for qid in judged if qid not in ranked)
    common = sorted(judged.keys() & ranked.keys())
    if not common:
        raise DataError(
            f"run and qrels share no query id (run: {_id_list(sorted(run))}; "
            f"qrels: {_id_list(sorted(judged))}); are they for the same topics?"
        )

    messages: list[str] = []
    if unjudged:
        messages.append(
            f"run has {len(unjudged)} queries with no judgments in qrels; they are not evaluated: {_id_list(unjudged)}"
        )
    if missing:
        messages.append(
            f"qrels has {len(missing)} judged queries with no results in the run; "
            f"they score 0 on every metric: {_id_list(missing)}"
        )
    for message in messages:
        logger.warning(message)

    # ranx gets each query's trec_eval order as distinct scores (n, n-1, ..., 1): no ties left to its sort
    by_rank = {q: {pid: float(len(ranked[q]) - i) for i, pid in enumerate(trec_order(ranked[q]))} for q in common}
    scores = _ranx_per_query({q: judged[q] for q in common}, by_rank, metrics)

    queries = sorted(judged)
    per_query: dict[str, dict[str, float]] = {}
    means: dict[str, float] = {}
    for metric in metrics:
        by_qid = scores[metric]
        per_query[metric] = {qid: by_qid.get(qid, 0.0) for qid in queries}
        means[metric] = sum(per_query[metric].values()) / len(queries)

    return RunEvaluation(
        means=means,
        per_query=per_query,
        queries=queries,
        convention=mset.convention,
        warnings=messages,
    )


def _ranx_per_query(qrels: Qrels, run: Run, metrics: list[str]) -> dict[str, dict[str, float]]:
    """metric -> qid -> float, with ranx, for qrels and run holding the same non-empty queries.

    ranx returns per-query scores as bare arrays ordered like its internal query order, and with
    plain dicts that order is each dict's insertion order (mismatched orders silently pair the
    wrong queries). ``Qrels.from_dict``/``Run.from_dict`` both sort the query ids, and we read
    the order back from ranx rather than assuming it. Passage ids reach ranx as fixed-width codes
    (:class:`~hf_rerank.evaluation.ranx_ids.RanxIds`).
    """
    import numba
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate

    ids = RanxIds()
    ranx_qrels = RanxQrels.from_dict(ids.encode(qrels))
    ranx_run = RanxRun.from_dict(ids.encode(run))
    order = list(ranx_run.get_query_ids())
    if list(ranx_qrels.get_query_ids()) != order or set(order) != set(qrels):
        raise RuntimeError("ranx query order differs between qrels and run")

    # ranx.evaluate switches numba to one thread for fewer than 10 queries and leaves it so.
    threads = numba.get_num_threads()
    try:
        result = evaluate(ranx_qrels, ranx_run, metrics, return_mean=False, save_results_in_run=False)
    finally:
        numba.set_num_threads(threads)
    if len(metrics) == 1:  # ranx returns the bare array for a single metric
        result = {metrics[0]: result}

    out: dict[str, dict[str, float]] = {}
    for metric in metrics:
        values = result[metric]
        if len(values) != len(order):
            raise RuntimeError(f"ranx returned {len(values)} scores for {len(order)} queries")
        out[metric] = {qid: float(value) for qid, value in zip(order, values)}
    return out
