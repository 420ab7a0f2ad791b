"""Hard negatives mined from a bi-encoder's dense ranking (``hf-rerank mine``).

The recipe follows arXiv 2506.18535 ("one passage sampled from the base model's dense top-200 at
ranks 50-200, excluding the judged positives, seed 42"). For each query with at least one
*positive* (a judged passage with ``grade >= positive_grade``):

1. dense-retrieve the top ``window[1]`` passages of the collection's corpus
   (:mod:`hf_rerank.inference.dense`: exact float32 cosine, ties by corpus order);
2. keep ranks ``window[0]`` to ``window[1]``, 1-based and inclusive: ``(50, 200)`` keeps the
   50th to the 200th passage, 151 ranks;
3. drop every positive of the query (all of them, not only the one a training pair will use);
   passages judged below ``positive_grade`` stay candidates;
4. sample ``per_query`` of the rest without replacement with ``random.Random(f"{seed}:{qid}")``:
   a string seed is hashed with SHA-512 by Python, so a query's negatives depend only on the seed,
   its id and its candidates, never on the other queries, their order or ``PYTHONHASHSEED``.

A query with fewer candidates than ``per_query`` keeps those it has (none: it is left out); one
warning counts such queries. The result is written with :func:`~hf_rerank.data.negatives.write_negatives`
(``negatives.tsv``), a query's negatives in sampling order.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from pathlib import Path

from hf_rerank.data.collection import IRCollection
from hf_rerank.errors import DataError, UnknownNameError, UsageError
from hf_rerank.inference.dense import dense_retrieve, encode_corpus

logger = logging.getLogger("hf_rerank")


def mine_hard_negatives(
    bi_encoder,
    collection: IRCollection,
    *,
    window: tuple[int, int] = (50, 200),
    per_query: int = 1,
    positive_grade: int = 1,
    seed: int = 42,
    queries: Iterable[str] | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 128,
    precision: str = "auto",
    show_progress: bool = True,
) -> dict[str, list[str]]:
    """``{qid: [pid, ...]}``: hard negatives from ``bi_encoder``'s dense ranking (module docstring).

    Args:
        bi_encoder: a :class:`~hf_rerank.models.bi_encoder.BiEncoder` (any
            :class:`~hf_rerank.inference.dense.TextEncoder` without ``cache_dir``).
        collection: its corpus is searched; its qrels say which passages are positives.
        window: ``(first, last)`` ranks, 1-based and inclusive.
        per_query: negatives per query.
        positive_grade: judged grades at or above this are positives, never negatives.
        seed: sampling seed.
        queries: the qids to mine for (default: every query of ``collection``); queries without
            a positive are skipped (logged).
        cache_dir, batch_size, precision: as for :func:`~hf_rerank.inference.dense.encode_corpus`
            and :func:`~hf_rerank.inference.dense.dense_retrieve`.
    Returns:
        the sampled pids per query, queries in the order of ``queries``; queries that got none
        are left out.
    """
    first, last = window
    if not (isinstance(first, int) and isinstance(last, int) and 1 <= first <= last):
        raise UsageError(f"window must be two ranks 1 <= first <= last, got {window!r}")
    if per_query < 1:
        raise UsageError(f"per_query must be >= 1, got {per_query}")
    if positive_grade < 1:
        raise UsageError(f"positive_grade must be >= 1, got {positive_grade}")
    selected = list(collection.queries if queries is None else queries)
    unknown = [qid for qid in selected if qid not in collection.queries]
    if unknown:
        raise UnknownNameError(f"collection {collection.name!r} has no text for queries {', '.join(unknown[:10])}")
    positives = {
        qid: {pid for pid, grade in collection.qrels.get(qid, {}).items() if grade >= positive_grade}
        for qid in selected
    }
    eligible = [qid for qid in selected if positives[qid]]
    if not eligible:
        raise DataError(
            f"collection {collection.name!r}: none of the {len(selected)} queries has a judged passage "
            f"of grade >= {positive_grade}, so none can be mined for"
        )
    if len(eligible) < len(selected):
        logger.info(
            "%s: %d of %d queries have no judged passage of grade >= %d and are skipped",
            collection.name,
            len(selected) - len(eligible),
            len(selected),
            positive_grade,
        )

    embeddings = encode_corpus(
        bi_encoder, collection.corpus, batch_size=batch_size, cache_dir=cache_dir, show_progress=show_progress
    )
    run = dense_retrieve(
        bi_encoder,
        {qid: collection.queries[qid] for qid in eligible},
        embeddings,
        k=last,
        batch_size=batch_size,
        precision=precision,
        show_progress=show_progress,
    )
    negatives: dict[str, list[str]] = {}
    short = 0
    for qid in eligible:
        candidates = [pid for pid in list(run[qid])[first - 1 : last] if pid not in positives[qid]]
        short += len(candidates) < per_query
        chosen = random.Random(f"{seed}:{qid}").sample(candidates, min(per_query, len(candidates)))
        if chosen:
            negatives[qid] = chosen
    if short:
        logger.warning(
            "%s: %d of %d queries have fewer than %d candidates at ranks %d-%d of %d passages once their positives "
            "are left out; they keep what there is (%d get no negative)",
            collection.name,
            short,
            len(eligible),
            per_query,
            first,
            last,
            len(embeddings.pids),
            len(eligible) - len(negatives),
        )
    return negatives
