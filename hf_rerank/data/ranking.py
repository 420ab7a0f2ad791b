"""The one rule for ordering a query's scored passages, applied everywhere a run is read, ranked,
evaluated or written: **score descending, then passage id descending** — trec_eval's rule (it
ignores a run file's rank column and sorts equal scores by docno, descending, as ``strcmp``
compares them).

A producer that wants another order among equal scores — reranking keeps the first stage's
order for tied model scores — makes its scores distinct with :func:`untie_in_order`, which moves
each tied score down by the fewest representable steps (float64 ulps) that keep the given order;
then every reader (trec_eval, ranx, hf-rerank) sees that order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

TIE_RULE = "score descending, then passage id descending (trec_eval's rule)"


def trec_order(scored: Mapping[str, float]) -> dict[str, float]:
    """``scored`` (pid -> score) as a dict in :data:`TIE_RULE` order."""
    by_id = sorted(scored.items(), key=lambda item: item[0], reverse=True)
    return dict(sorted(by_id, key=lambda item: -item[1]))  # stable: equal scores stay by id, descending


def untie_in_order(ordered: Mapping[str, float]) -> tuple[dict[str, float], int]:
    """Make the scores of ``ordered`` (pid -> score, already in the wanted order, scores not
    increasing) strictly decreasing without changing that order: each score equal to (or above)
    the one before it becomes the next float64 below it. Returns the new mapping and how many
    scores were moved (0: ``ordered`` had no ties). Moves are of the order of 1e-16 relative."""
    untied: dict[str, float] = {}
    previous, moved = math.inf, 0
    for pid, score in ordered.items():
        if score >= previous:
            score, moved = math.nextafter(previous, -math.inf), moved + 1
        untied[pid] = previous = score
    return untied, moved
