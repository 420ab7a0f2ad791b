"""Where collections come from: one registry of names, plus local directories.

``load_collection(name_or_path, **options)`` returns an :class:`IRCollection` (ids are ``str``):

- an existing local directory -> :meth:`IRCollection.from_dir` (layout in ``collection.py``);
  it wins over a registered name spelled the same way;
- a name in :data:`SOURCES` -> that source's loader, with ``options`` as its keyword arguments:

  ==========================================  ===============  ==========================================
  name                                        library          options
  ==========================================  ===============  ==========================================
  ``sample``                                  (none)           none
  ``sentence-transformers/msmarco``           ``datasets``     ``limit`` (triplets, default 1,000,000)
  ``microsoft/ms_marco``                      ``datasets``     ``split`` (default ``"validation"``)
  ``msmarco-passage/trec-dl-2019/judged``     ``ir_datasets``  ``depth`` (cut of the run, default none)
  ``msmarco-passage/dev/small``               ``ir_datasets``  ``depth``
  ==========================================  ===============  ==========================================

- anything else -> ``ValueError`` naming the registered sources.

The external libraries are imported inside the loaders. A missing library raises ``ImportError``
saying what to ``pip install``; a source that cannot be downloaded (offline, no cached copy)
raises :class:`SourceUnavailableError` saying how to fill the cache or which local directory to
use instead.

Each source's record -> collection conversion is a pure function over records in the exact layout
of the real source (``collection_from_msmarco_triplets``, ``collection_from_ms_marco_v11``,
``collection_from_ir_datasets``), so it can be tested on small local stand-ins. Texts are stripped;
an empty text is left out of ``queries``/``corpus`` (the TSV files cannot hold one), its id stays in
qrels and runs, where :meth:`IRCollection.candidates` counts it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import Qrels, Run

logger = logging.getLogger("hf_rerank")

SAMPLE_DIR = Path(__file__).parent / "sample"
LOCAL_EXAMPLE = "../shared/data/trec-dl/dl19"

MSMARCO_TRIPLETS = "sentence-transformers/msmarco"
MS_MARCO = "microsoft/ms_marco"
TREC_DL_2019 = "msmarco-passage/trec-dl-2019/judged"
DEV_SMALL = "msmarco-passage/dev/small"

_DATASETS_HINT = "pip install datasets"
_IRDS_HINT = 'pip install "hf-rerank[irds]"'


class SourceUnavailableError(RuntimeError):
    """A registered source could not be downloaded and has no cached copy; the message says what to do."""


@dataclass(frozen=True)
class Source:
    """A registered collection source.

    Attributes:
        name: the registry name given to :func:`load_collection`.
        description: one line on what the collection holds.
        loader: ``loader(**options) -> IRCollection``.
        install_hint: the command that installs the library the loader needs (None: nothing).
    """

    name: str
    description: str
    loader: Callable[..., IRCollection]
    install_hint: str | None


# --------------------------------------------------------------------------------------------
# Pure conversions: records in the real sources' layouts -> IRCollection
# --------------------------------------------------------------------------------------------


def collection_from_msmarco_triplets(
    triplets: Iterable[Mapping[str, Any]],
    queries: Iterable[Mapping[str, Any]],
    corpus: Iterable[Mapping[str, Any]],
    *,
    limit: int | None = None,
    name: str = "msmarco-triplets",
) -> IRCollection:
    """Build a training collection from ``sentence-transformers/msmarco`` (id-based triplets).

    Inputs (the Hub dataset's subsets, all split ``train``, ids are strings there):
        triplets: subset ``triplets``, records ``{"query_id", "positive_id", "negative_id"}``
            (MS MARCO's ``qidpidtriples.train.full.2``, reshuffled, so the first N are a random sample).
        queries: subset ``queries``, records ``{"query_id", "query"}``.
        corpus: subset ``corpus``, records ``{"passage_id", "passage"}``; read once, keeping only
            the passages the kept triplets name.
        limit: keep the first ``limit`` triplets (None: all of ``triplets``).

    Output:
        queries / corpus: the texts of the queries and passages the kept triplets name.
        qrels: ``{qid: {positive_pid: 1}}``; negatives are not judgments, so they are not in qrels.
        runs["triplets"]: ``{qid: {pid: score}}`` with every positive at 1.0 followed by every
            negative at 0.0, each group in first-seen order. Training triplets are
            ``(qid, p, n)`` for ``p`` with grade 1 in qrels and ``n`` with score 0.0 in the run;
            which positive a negative came with is not kept (MS MARCO queries nearly always have
            one positive). A passage that is a positive of the query is never also a negative.

    Ids missing from ``queries`` or ``corpus`` are counted in one warning each.
    """
    _check_positive("limit", limit)
    positives: dict[str, dict[str, None]] = {}
    negatives: dict[str, dict[str, None]] = {}
    for record in itertools.islice(triplets, limit):
        qid = str(record["query_id"])
        positives.setdefault(qid, {})[str(record["positive_id"])] = None
        negatives.setdefault(qid, {})[str(record["negative_id"])] = None
    qrels: Qrels = {qid: {pid: 1 for pid in pids} for qid, pids in positives.items()}
    run: Run = {
        qid: {**{pid: 1.0 for pid in positives[qid]}, **{pid: 0.0 for pid in negatives[qid] if pid not in positives[qid]}}
        for qid in positives
    }
    wanted_pids = {pid for scored in run.values() for pid in scored}
    query_texts = _texts_of(queries, "query_id", "query", set(run))
    passage_texts = _texts_of(corpus, "passage_id", "passage", wanted_pids)
    _warn_missing(f"{MSMARCO_TRIPLETS} (queries)", "queries", set(run), query_texts)
    _warn_missing(f"{MSMARCO_TRIPLETS} (corpus)", "passages", wanted_pids, passage_texts)
    where = f"{MSMARCO_TRIPLETS} (triplets)"
    sources = {
        "queries": f"{MSMARCO_TRIPLETS} (queries)",
        "corpus": f"{MSMARCO_TRIPLETS} (corpus)",
        "qrels": where,
        "run:triplets": where,
    }
    return IRCollection(name, query_texts, passage_texts, qrels, {"triplets": run}, sources)


def collection_from_ms_marco_v11(records: Iterable[Mapping[str, Any]], *, name: str = "ms_marco-v1.1") -> IRCollection:
    """Build a reranking collection from ``microsoft/ms_marco`` (config ``v1.1``, any split).

    Input records (the Hub layout): ``{"query_id": int, "query": str, "query_type": str,
    "passages": {"is_selected": [int], "passage_text": [str], "url": [str]}, "answers": [str],
    "wellFormedAnswers": [str]}``; only ``query_id``, ``query`` and ``passages`` are used.

    Output:
        queries: ``{str(query_id): query}``.
        corpus: each query's Bing passages as ``{f"{query_id}-{i}": passage_text}``, ``i`` the
            0-based position in ``passages`` (the same passage text under two queries gets two ids).
        qrels: grade 1 for ``is_selected`` passages, 0 for the others. A query with no selected
            passage is left out of qrels (counted in one warning) but kept in queries, corpus and
            the run, so :meth:`IRCollection.judged_run` leaves it out of evaluation.
        runs["bing"]: each query's passages in their given order, scores ``n, n-1, ..., 1`` for
            ``n`` passages.

    Raises ValueError when a ``query_id`` appears twice (its passage ids would collide).
    """
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    qrels: Qrels = {}
    run: Run = {}
    unselected: list[str] = []
    for record in records:
        qid = str(record["query_id"])
        if qid in run:
            raise ValueError(f"{MS_MARCO}: query_id {qid} appears twice; passage ids {qid}-N would collide")
        if text := str(record["query"]).strip():
            queries[qid] = text
        passages = record["passages"]
        texts, selected = passages["passage_text"], passages["is_selected"]
        grades: dict[str, int] = {}
        run[qid] = {}
        for position, (passage, chosen) in enumerate(zip(texts, selected)):
            pid = f"{qid}-{position}"
            if passage_text := str(passage).strip():
                corpus[pid] = passage_text
            grades[pid] = 1 if chosen else 0
            run[qid][pid] = float(len(texts) - position)
        if any(grades.values()):
            qrels[qid] = grades
        else:
            unselected.append(qid)
    if unselected:
        logger.warning(
            "%s: %d of %d queries have no selected passage; they are left out of qrels (kept in queries, "
            "corpus and run 'bing'): %s",
            MS_MARCO, len(unselected), len(run), ", ".join(unselected[:10]),
        )
    sources = {what: f"{MS_MARCO} ({name})" for what in ("queries", "corpus", "qrels", "run:bing")}
    return IRCollection(name, queries, corpus, qrels, {"bing": run}, sources)


def collection_from_ir_datasets(dataset: Any, name: str, depth: int | None = None) -> IRCollection:
    """Build a collection from an ir_datasets dataset with queries, qrels, scoreddocs and docs.

    Input: an object with ``queries_iter()`` (records ``.query_id``, ``.text``), ``qrels_iter()``
    (``.query_id``, ``.doc_id``, ``.relevance``, ``.iteration``), ``scoreddocs_iter()``
    (``.query_id``, ``.doc_id``, ``.score``) and ``docs_store().get_many(doc_ids) -> {doc_id: doc}``
    (``.doc_id``, ``.text``), as ``ir_datasets.load(name)`` returns. ``name`` labels the collection.

    Output:
        queries: every query of ``queries_iter()``.
        qrels: ``{query_id: {doc_id: relevance}}``.
        runs["bm25"]: the scoreddocs, each query's passages by score descending (ties keep the
            source order); with ``depth``, only each query's first ``depth``.
        corpus: the texts of the passages named in the (cut) run or the qrels, fetched with
            ``docs_store().get_many`` (no pass over the whole collection); missing ones are
            counted in one warning.

    MS MARCO's official BM25 top-1000 (``msmarco-passage/...`` scoreddocs) is published in random
    order without scores: ir_datasets gives every passage score 0. Such a run is a candidate set to
    rerank in full, not a ranking: one warning counts the queries whose scores all tie, and
    ``depth`` raises ValueError on such a query, since the cut would keep arbitrary passages.
    """
    _check_positive("depth", depth)
    queries = {str(query.query_id): text for query in dataset.queries_iter() if (text := str(query.text).strip())}
    qrels: Qrels = {}
    for qrel in dataset.qrels_iter():
        qrels.setdefault(str(qrel.query_id), {})[str(qrel.doc_id)] = int(qrel.relevance)
    scored: dict[str, list[tuple[str, float]]] = {}
    for row in dataset.scoreddocs_iter():
        scored.setdefault(str(row.query_id), []).append((str(row.doc_id), float(row.score)))
    run: Run = {}
    unordered: list[str] = []
    for qid, rows in scored.items():
        ranked = sorted(rows, key=lambda row: -row[1])
        if len(ranked) > 1 and ranked[0][1] == ranked[-1][1]:
            unordered.append(qid)
            if depth is not None and len(ranked) > depth:
                raise ValueError(
                    f"{name}: run 'bm25' has no order for query {qid} (all {len(ranked)} scores are "
                    f"{ranked[0][1]}; MS MARCO's official top-1000 is published in random order without "
                    f"scores), so depth={depth} would keep arbitrary passages. Load it without depth to "
                    f"rerank every candidate, or use a scored BM25 run such as {LOCAL_EXAMPLE}/runs/bm25.run"
                )
        run[qid] = dict(ranked[:depth])
    if unordered:
        logger.warning(
            "%s: %d of %d queries of run 'bm25' have no scores (all their passages tie): for them the run is a "
            "candidate set in source order, to rerank in full, not a BM25 ranking to evaluate (first: %s)",
            name, len(unordered), len(run), ", ".join(unordered[:10]),
        )
    wanted = {pid for scores in run.values() for pid in scores} | {pid for judged in qrels.values() for pid in judged}
    documents = dataset.docs_store().get_many(sorted(wanted))
    corpus = {str(doc_id): text for doc_id, doc in documents.items() if (text := str(doc.text).strip())}
    _warn_missing(f"{name} (docs)", "passages", wanted, corpus)
    sources = {what: f"ir_datasets:{name}" for what in ("queries", "corpus", "qrels", "run:bm25")}
    return IRCollection(name, queries, corpus, qrels, {"bm25": run}, sources)


def _texts_of(records: Iterable[Mapping[str, Any]], id_field: str, text_field: str, wanted: set[str]) -> dict[str, str]:
    """``{id: stripped text}`` for the records whose id is in ``wanted`` (empty texts left out)."""
    texts: dict[str, str] = {}
    for record in records:
        key = str(record[id_field])
        if key in wanted and (text := str(record[text_field]).strip()):
            texts[key] = text
    return texts


def _warn_missing(where: str, kind: str, wanted: set[str], found: Mapping[str, str]) -> None:
    missing = sorted(wanted.difference(found))
    if missing:
        logger.warning("%s: %d of %d %s have no text and are left out of the collection: %s",
                       where, len(missing), len(wanted), kind, ", ".join(missing[:10]))


# --------------------------------------------------------------------------------------------
# Loaders: fetch with the library (lazily imported), then convert
# --------------------------------------------------------------------------------------------


def _import(module: str, source: str):
    """Import ``module`` for ``source``, or raise ImportError saying what to pip install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        hint = SOURCES[source].install_hint
        raise ImportError(f"{source} needs the '{module}' package, which is not installed: {hint}") from error


_SECRET = re.compile(
    r"hf_[A-Za-z0-9]{6,}"
    r"|(?i:bearer)\s+[^\s,;\"']+"
    r"|(?i:token|authorization)[\"']?\s*[:=]\s*[\"']?[^\s,;&)\"']+"
)


def _redact(text: str) -> str:
    """Hide anything that looks like a Hugging Face token or an auth header value."""
    return _SECRET.sub("<redacted>", text)


@contextmanager
def _unavailable_as_error(source: str, cache: str, reason_if_unavailable: Callable[[Exception], str | None]) -> Iterator[None]:
    """Turn offline / connection errors into SourceUnavailableError; other errors pass through.

    ``reason_if_unavailable(error)`` says why the download failed, or None for any other error;
    ``cache`` says where the library keeps its downloads.
    """
    try:
        yield
    except Exception as error:
        reason = reason_if_unavailable(error)
        if reason is None:
            raise
        raise SourceUnavailableError(
            f"{source}: could not be downloaded and no cached copy was found ({_redact(reason)[:300]}). "
            f"To fix: run this once on a machine with network access to fill the cache ({cache}), "
            f"or copy that cache here; or load a local collection directory instead, "
            f"e.g. load_collection('{LOCAL_EXAMPLE}') or load_collection('sample')."
        ) from error


def _first_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _hf_unavailable(source: str, datasets: Any):
    """``_unavailable_as_error`` for ``datasets`` / ``huggingface_hub`` offline and connection errors."""
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.utils import httpx

    cache = f"HF_DATASETS_CACHE={datasets.config.HF_DATASETS_CACHE}"
    if datasets.config.HF_HUB_OFFLINE:
        cache += "; HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set, so nothing is downloaded: unset it for that run"
    errors = (ConnectionError, TimeoutError, LocalEntryNotFoundError, httpx.TransportError)
    return _unavailable_as_error(source, cache, lambda error: _first_line(error) if isinstance(error, errors) else None)


def _irds_unavailable(source: str, ir_datasets: Any):
    """``_unavailable_as_error`` for ir_datasets download failures.

    ir_datasets raises the ``requests`` error of a file's only mirror, or
    ``RuntimeError("All download sources failed", [(mirror, error), ...])`` when it has several.
    """
    requests = _import("requests", source)
    network_errors = (requests.exceptions.RequestException, ConnectionError, TimeoutError)

    def reason(error: Exception) -> str | None:
        if isinstance(error, network_errors):
            return _first_line(error)
        if isinstance(error, RuntimeError) and error.args[:1] == ("All download sources failed",):
            tried = ", ".join(f"{getattr(mirror, 'url', mirror)} ({type(failure).__name__})" for mirror, failure in error.args[1])
            return f"all download sources failed: {tried}"
        return None

    return _unavailable_as_error(source, f"IR_DATASETS_HOME={ir_datasets.util.home_path()}", reason)


def _check_positive(option: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{option} must be >= 1, got {value}")


SAMPLE_TRAIN_QUERIES = 20


def _load_sample(part: str = "all") -> IRCollection:
    """The tiny collection shipped in the package (``hf_rerank/data/sample``).

    ``part``: ``all``; ``train`` (its first 20 queries, in file order) or ``test`` (the other 10),
    so the demo fine-tunes and evaluates on disjoint queries.
    """
    sample = IRCollection.from_dir(SAMPLE_DIR, name="sample")
    if part == "all":
        return sample
    qids = list(sample.queries)
    chosen = qids[:SAMPLE_TRAIN_QUERIES] if part == "train" else qids[SAMPLE_TRAIN_QUERIES:]
    return sample.subset(chosen, name=f"sample-{part}")


def _load_msmarco_triplets(limit: int = 1_000_000) -> IRCollection:
    """``sentence-transformers/msmarco``: the first ``limit`` triplets, with their query and passage texts.

    The first run downloads and prepares the whole ``triplets`` subset whatever ``limit`` is
    (about 397M rows), plus ``queries`` and ``corpus`` (8.8M passages, read once).
    """
    _check_positive("limit", limit)
    datasets = _import("datasets", MSMARCO_TRIPLETS)
    with _hf_unavailable(MSMARCO_TRIPLETS, datasets):
        triplets = datasets.load_dataset(MSMARCO_TRIPLETS, "triplets", split="train")
        queries = datasets.load_dataset(MSMARCO_TRIPLETS, "queries", split="train")
        corpus = datasets.load_dataset(MSMARCO_TRIPLETS, "corpus", split="train")
    return collection_from_msmarco_triplets(triplets, queries, corpus, limit=limit, name=f"msmarco-triplets-{limit}")


def _load_ms_marco(split: str = "validation") -> IRCollection:
    """``microsoft/ms_marco`` v1.1, one split (``validation``, ``train`` or ``test``)."""
    datasets = _import("datasets", MS_MARCO)
    with _hf_unavailable(MS_MARCO, datasets):
        records = datasets.load_dataset(MS_MARCO, "v1.1", split=split)
    return collection_from_ms_marco_v11(records, name=f"ms_marco-v1.1-{split}")


def _load_ir_datasets(dataset_id: str, depth: int | None = None) -> IRCollection:
    """An ir_datasets dataset by id; its files download on first use into IR_DATASETS_HOME."""
    _check_positive("depth", depth)
    ir_datasets = _import("ir_datasets", dataset_id)
    # ir_datasets downloads lazily, while the records are read: the whole conversion is guarded.
    with _irds_unavailable(dataset_id, ir_datasets):
        return collection_from_ir_datasets(ir_datasets.load(dataset_id), dataset_id, depth)


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source("sample", "the tiny collection shipped in the package (hf_rerank/data/sample)", _load_sample, None),
        Source("sample-train", "the sample's first 20 queries (for the demo's fine-tuning)", functools.partial(_load_sample, "train"), None),
        Source("sample-test", "the sample's other 10 queries (for the demo's evaluation)", functools.partial(_load_sample, "test"), None),
        Source(
            MSMARCO_TRIPLETS,
            "MS MARCO passage training triplets (qidpidtriples, reshuffled) as a training collection: "
            "qrels of positives, run 'triplets' (positives 1.0, negatives 0.0); option limit (default 1,000,000)",
            _load_msmarco_triplets,
            _DATASETS_HINT,
        ),
        Source(
            MS_MARCO,
            "MS MARCO QnA v1.1: each query's ~10 Bing passages as corpus, run 'bing' and qrels (is_selected); "
            "option split (default validation)",
            _load_ms_marco,
            _DATASETS_HINT,
        ),
        Source(
            TREC_DL_2019,
            "TREC DL 2019 passage, the 43 judged queries, graded qrels 0-3, run 'bm25' (official top-1000, "
            "unordered, no scores); option depth",
            functools.partial(_load_ir_datasets, TREC_DL_2019),
            _IRDS_HINT,
        ),
        Source(
            DEV_SMALL,
            "MS MARCO passage dev/small, 6980 queries, binary qrels, run 'bm25' (official top-1000, "
            "unordered, no scores); option depth",
            functools.partial(_load_ir_datasets, DEV_SMALL),
            _IRDS_HINT,
        ),
    )
}


def load_collection(name_or_path: str, **options: Any) -> IRCollection:
    """Load a collection by local directory path or registered name (see the module docstring).

    ``options`` go to the registered source's loader (for a directory: ``name``, the label).
    Raises ValueError for an unknown name, TypeError for an option the source does not take,
    ImportError when the source's library is missing, SourceUnavailableError when it cannot be
    downloaded.
    """
    if Path(name_or_path).is_dir():
        return IRCollection.from_dir(name_or_path, **options)
    source = SOURCES.get(name_or_path)
    if source is None:
        raise ValueError(
            f"unknown collection {name_or_path!r}: not a local directory and not a registered source "
            f"({', '.join(SOURCES)}). A local directory with queries.tsv, collection.tsv, qrels.txt and "
            f"runs/*.run is accepted too, e.g. {LOCAL_EXAMPLE}"
        )
    parameters = inspect.signature(source.loader).parameters
    unknown = sorted(set(options).difference(parameters))
    if unknown:
        accepted = ", ".join(parameters) or "none"
        raise TypeError(f"{source.name}: unknown option(s) {', '.join(unknown)} (options: {accepted})")
    return source.loader(**options)
