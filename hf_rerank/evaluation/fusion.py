"""Fusions of runs with ranx: several scored runs -> one, or one run normalised per query.

The fused and normalised runs are teacher runs (conventions: :mod:`hf_rerank.inference.scoring`:
higher = more relevant, raw scores, written by :func:`~hf_rerank.data.formats.write_run`), or
candidates for mining; ``hf-rerank fuse`` writes them.

Fusion (:func:`fuse_runs`) is ranx's ``fuse`` with its normalisations and methods, not a
re-implementation. Each input run is handed to ranx in trec_eval's order with its tied scores
moved apart by float64 ulps (:func:`~hf_rerank.data.ranking.untie_in_order`), so rank-based
methods and normalisations (rrf, rank, borda, isr, ...) see the order trec_eval reads, whatever
ranx's own sort does with ties, and with its passage ids as fixed-width codes
(:class:`~hf_rerank.evaluation.ranx_ids.RanxIds`). A passage missing from one run contributes nothing from that run
(score-based methods add 0 after normalisation, as ranx does).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

from hf_rerank.data.formats import Run
from hf_rerank.data.ranking import trec_order, untie_in_order
from hf_rerank.errors import DataError, UsageError
from hf_rerank.evaluation.ranx_ids import RanxIds

#: ``hf-rerank fuse --method`` names -> ranx's fusion method names (ranx's supervised methods,
#: which need training on qrels, are not offered).
FUSION_METHODS = {
    "wsum": "wsum",
    "wmnz": "wmnz",
    "mixed": "mixed",
    "w_bordafuse": "w_bordafuse",
    "w_condorcet": "w_condorcet",
    "rrf": "rrf",
    "combsum": "sum",
    "combmnz": "mnz",
    "combmax": "max",
    "combmin": "min",
    "combmed": "med",
    "combanz": "anz",
    "isr": "isr",
    "log_isr": "log_isr",
    "bordafuse": "bordafuse",
    "condorcet": "condorcet",
}
#: Methods that take one weight per run.
WEIGHTED_METHODS = ("wsum", "wmnz", "mixed", "w_bordafuse", "w_condorcet")
#: ranx's per-query normalisations; ``none`` fuses the raw scores.
NORMALISATIONS = ("min-max", "max", "sum", "zmuv", "rank", "borda", "none")


def fuse_runs(
    runs: Mapping[str, Run],
    *,
    method: str = "wsum",
    norm: str = "min-max",
    weights: Sequence[float] | None = None,
    rrf_k: int | None = None,
) -> Run:
    """Fuse ``runs`` (``{label: run}``, at least two, over the same queries) with ranx.

    Args:
        runs: the runs to fuse; labels only word the errors.
        method: a key of :data:`FUSION_METHODS` (``wsum``: weighted sum of normalised scores,
            ``rrf``: reciprocal rank fusion, ``combsum``/``combmnz``: CombSUM/CombMNZ, ...).
        norm: one of :data:`NORMALISATIONS`, applied per query to each run before fusing.
        weights: one per run, for :data:`WEIGHTED_METHODS` only (default: equal weights ``1/n``).
        rrf_k: rrf's ``k`` (default: ranx's 60); for ``rrf`` only.
    Returns:
        the fused run ``{qid: {pid: score}}``, queries in the first run's order, each query's
        passages in trec_eval's order, ids the input strings.
    Raises:
        ValueError: fewer than two runs, an unknown method or norm, weights or rrf_k where the
        method takes none, a wrong number of weights, runs over different queries.
    """
    from numba.core.errors import NumbaTypeSafetyWarning
    from ranx import Run as RanxRun
    from ranx import fuse

    labels = list(runs)
    if len(labels) < 2:
        raise UsageError(f"fusion needs at least two runs, got {len(labels)}: {', '.join(labels) or 'none'}")
    if method not in FUSION_METHODS:
        raise UsageError(f"unknown fusion method {method!r} (methods: {', '.join(FUSION_METHODS)})")
    if norm not in NORMALISATIONS:
        raise UsageError(f"unknown normalisation {norm!r} (normalisations: {', '.join(NORMALISATIONS)})")
    params: dict = {}
    if method in WEIGHTED_METHODS:
        weights = [1 / len(labels)] * len(labels) if weights is None else [float(w) for w in weights]
        if len(weights) != len(labels):
            raise UsageError(f"--weights: {len(weights)} weights for {len(labels)} runs ({', '.join(labels)})")
        if not all(math.isfinite(w) for w in weights):
            raise UsageError(f"--weights: every weight must be a finite number, got {weights}")
        params["weights"] = weights
    elif weights is not None:
        raise UsageError(
            f"--weights: method {method!r} takes no weights (weighted methods: {', '.join(WEIGHTED_METHODS)})"
        )
    if rrf_k is not None:
        if method != "rrf":
            raise UsageError(f"--rrf-k: only method 'rrf' takes k, not {method!r}")
        if rrf_k < 1:
            raise UsageError(f"--rrf-k must be >= 1, got {rrf_k}")
        params["k"] = rrf_k
    first = labels[0]
    for label in labels[1:]:
        only_first, only_other = set(runs[first]) - set(runs[label]), set(runs[label]) - set(runs[first])
        if only_first or only_other:
            raise DataError(
                f"runs {first} and {label} cover different queries ({len(only_first)} only in {first}, "
                f"{len(only_other)} only in {label}, e.g. {sorted(only_first or only_other)[0]!r}); "
                "ranx fuses runs over the same queries"
            )
    for label, run in runs.items():
        empty = next((qid for qid, scored in run.items() if not scored), None)
        if empty is not None:
            raise DataError(f"run {label}: query {empty!r} has no passages")
    ids = RanxIds()
    prepared = [
        RanxRun(ids.encode({qid: untie_in_order(trec_order(scored))[0] for qid, scored in runs[label].items()}))
        for label in labels
    ]
    with warnings.catch_warnings():  # numba's notes about integer casts inside ranx's compiled code
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)
        fused = fuse(
            prepared, norm=None if norm == "none" else norm, method=FUSION_METHODS[method], params=params
        ).to_dict()
    return {
        qid: trec_order({ids.decode(code): float(score) for code, score in fused[qid].items()}) for qid in runs[first]
    }


def normalise_run(run: Run, norm: str = "min-max") -> Run:
    """``run`` with each query's scores normalised by ranx (``min-max``: to [0, 1]; ``max``, ``sum``,
    ``zmuv``, ``rank``), e.g. to put teachers of different scales on one before a loss's temperature.

    Input ``{qid: {pid: score}}``; output the same ids, each query's passages in trec_eval's order.
    Raises ``ValueError`` for ``borda`` (it needs several runs), ``none`` or an unknown name, and for
    a query with no passages.
    """
    from numba.core.errors import NumbaTypeSafetyWarning
    from ranx import Run as RanxRun
    from ranx.normalization import norm_switch

    single = [name for name in NORMALISATIONS if name not in ("borda", "none")]
    if norm not in single:
        raise UsageError(
            f"normalisation {norm!r} cannot apply to one run (normalisations of one run: {', '.join(single)})"
        )
    empty = next((qid for qid, scored in run.items() if not scored), None)
    if empty is not None:
        raise DataError(f"query {empty!r} has no passages")
    ids = RanxIds()
    prepared = RanxRun(ids.encode({qid: untie_in_order(trec_order(scored))[0] for qid, scored in run.items()}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)
        normalised = norm_switch(norm)(prepared).to_dict()
    return {qid: trec_order({ids.decode(code): float(score) for code, score in normalised[qid].items()}) for qid in run}
