"""Where collections come from: one registry of names, local directories and files, the Hub.

``load_collection(name_or_path, **options)`` returns an :class:`IRCollection` (ids are ``str``):

- ``hf:ID`` or ``hf:ID:CONFIG`` (a Hugging Face Hub dataset), a local file (``.jsonl``,
  ``.parquet``, ``.csv``, ``.json``) or a directory written by ``save_to_disk`` -> training rows,
  FlagEmbedding or column layouts (:mod:`hf_rerank.data.hf_formats` lists them); options
  ``name``, ``limit`` (first N rows; a Hub dataset is then streamed), ``split`` (Hub, DatasetDict;
  default ``train``), ``queries`` and ``corpus`` (the texts of rows that give ids only: ``hf:...``
  or a local table file);
- another existing local directory -> :meth:`IRCollection.from_dir` (layout in ``collection.py``);
  it wins over a registered name spelled the same way;
- a name in :data:`SOURCES` -> that source's loader, with ``options`` as its keyword arguments:

  ==========================================  ===============  ==========================================
  name                                        library          options
  ==========================================  ===============  ==========================================
  ``sample``                                  (none)           none
  ``sentence-transformers/msmarco``           ``datasets``     ``limit`` (rows, default 1,000,000),
                                                               ``teacher`` (:data:`MSMARCO_TEACHERS`)
  ``microsoft/ms_marco``                      ``datasets``     ``split`` (default ``"validation"``)
  ``msmarco-passage/trec-dl-2019/judged``     ``ir_datasets``  ``depth`` (cut of the run, default none)
  ``msmarco-passage/dev/small``               ``ir_datasets``  ``depth``
  ==========================================  ===============  ==========================================

- anything else -> ``ValueError`` naming the registered sources and the accepted paths.

The external libraries are imported inside the loaders (a ``.jsonl`` file needs none). A missing
library raises ``ImportError`` saying what to ``pip install``; a source that cannot be downloaded
(offline, no cached copy) raises :class:`SourceUnavailableError` saying how to fill the cache or
which local directory to use instead.

Each source's record -> collection conversion is a pure function over records in the exact layout
of the real source (``collection_from_msmarco_triplets``, ``collection_from_ms_marco_v11``,
``collection_from_ir_datasets``, and :mod:`hf_rerank.data.hf_formats`), so it can be tested on
small local stand-ins. Texts are stripped; for the registered sources an empty text is left out of
``queries``/``corpus`` (the TSV files cannot hold one), its id stays in qrels and runs, where
:meth:`IRCollection.candidates` counts it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import DataFormatError, Qrels, Run, read_tsv
from hf_rerank.data.hf_formats import (
    Row,
    collection_from_column_rows,
    collection_from_margin_rows,
    collection_from_rows,
    dataset_rows,
    read_jsonl_rows,
    texts_from_rows,
    warn_missing,
)
from hf_rerank.errors import DataError, HfRerankError, MissingFileError, UsageError

logger = logging.getLogger("hf_rerank")

SAMPLE_DIR = Path(__file__).parent / "sample"

MSMARCO_TRIPLETS = "sentence-transformers/msmarco"
MS_MARCO = "microsoft/ms_marco"
TREC_DL_2019 = "msmarco-passage/trec-dl-2019/judged"
DEV_SMALL = "msmarco-passage/dev/small"

HF_PREFIX = "hf:"
DATASETS_FILE_FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json"}
# The teacher-score subsets of sentence-transformers/msmarco (_load_msmarco_triplets says what each gives).
MSMARCO_TEACHERS = ("bert-ensemble-mse", "bert-ensemble-margin-mse")

_DATASETS_HINT = "pip install datasets"
_IRDS_HINT = 'pip install "hf-rerank[irds]"'


class SourceUnavailableError(HfRerankError, RuntimeError):
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
            the passages the kept triplets name and stopping once all are found (``queries`` too).
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
        qid: {
            **{pid: 1.0 for pid in positives[qid]},
            **{pid: 0.0 for pid in negatives[qid] if pid not in positives[qid]},
        }
        for qid in positives
    }
    wanted_pids = {pid for scored in run.values() for pid in scored}
    queries_where, corpus_where = f"{MSMARCO_TRIPLETS} (queries)", f"{MSMARCO_TRIPLETS} (corpus)"
    query_texts = texts_from_rows(dataset_rows(queries, queries_where), "query", set(run), queries_where)
    passage_texts = texts_from_rows(dataset_rows(corpus, corpus_where), "passage", wanted_pids, corpus_where)
    warn_missing(queries_where, "queries", set(run), query_texts)
    warn_missing(corpus_where, "passages", wanted_pids, passage_texts)
    where = f"{MSMARCO_TRIPLETS} (triplets)"
    sources = {"queries": queries_where, "corpus": corpus_where, "qrels": where, "run:triplets": where}
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
            raise DataError(f"{MS_MARCO}: query_id {qid} appears twice; passage ids {qid}-N would collide")
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
            MS_MARCO,
            len(unselected),
            len(run),
            ", ".join(unselected[:10]),
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
                raise UsageError(
                    f"{name}: run 'bm25' has no order for query {qid} (all {len(ranked)} scores are "
                    f"{ranked[0][1]}; MS MARCO's official top-1000 is published in random order without "
                    f"scores), so depth={depth} would keep arbitrary passages. Load it without depth to "
                    "rerank every candidate, or use a BM25 run with scores (runs/bm25.run of a collection directory)"
                )
        run[qid] = dict(ranked[:depth])
    if unordered:
        logger.warning(
            "%s: %d of %d queries of run 'bm25' have no scores (all their passages tie): for them the run is a "
            "candidate set in source order, to rerank in full, not a BM25 ranking to evaluate (first: %s)",
            name,
            len(unordered),
            len(run),
            ", ".join(unordered[:10]),
        )
    wanted = {pid for scores in run.values() for pid in scores} | {pid for judged in qrels.values() for pid in judged}
    documents = dataset.docs_store().get_many(sorted(wanted))
    corpus = {str(doc_id): text for doc_id, doc in documents.items() if (text := str(doc.text).strip())}
    warn_missing(f"{name} (docs)", "passages", wanted, corpus)
    sources = {what: f"ir_datasets:{name}" for what in ("queries", "corpus", "qrels", "run:bm25")}
    return IRCollection(name, queries, corpus, qrels, {"bm25": run}, sources)


# --------------------------------------------------------------------------------------------
# Loaders: fetch with the library (lazily imported), then convert
# --------------------------------------------------------------------------------------------


def _import(module: str, source: str, hint: str | None = None):
    """Import ``module`` for ``source``, or raise ImportError saying what to pip install (``hint``;
    by default the registered source's install hint)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        hint = hint or SOURCES[source].install_hint
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
def _unavailable_as_error(
    source: str, cache: str, reason_if_unavailable: Callable[[Exception], str | None]
) -> Iterator[None]:
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
            "or copy that cache here; or load a local collection directory instead (one holding queries.tsv, "
            "collection.tsv, qrels.txt and runs/NAME.run: load_collection('DIR')), or load_collection('sample')."
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
            tried = ", ".join(
                f"{getattr(mirror, 'url', mirror)} ({type(failure).__name__})" for mirror, failure in error.args[1]
            )
            return f"all download sources failed: {tried}"
        return None

    return _unavailable_as_error(source, f"IR_DATASETS_HOME={ir_datasets.util.home_path()}", reason)


def _check_positive(option: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{option} must be >= 1, got {value}")


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


def _load_msmarco_triplets(limit: int = 1_000_000, teacher: str | None = None) -> IRCollection:
    """``sentence-transformers/msmarco``: the first ``limit`` training rows, with their query and passage texts.

    ``teacher`` picks the subset the rows come from (all ids are MS MARCO's):

    - None: ``triplets`` (query_id, positive_id, negative_id) -> qrels and run ``triplets``
      (:func:`collection_from_msmarco_triplets`).
    - ``bert-ensemble-mse``: (query_id, passage_id, score), the BERT_CAT ensemble's score of each
      pair (Hofstaetter et al. 2020) -> run ``teacher`` only, each query's passages by score
      descending; no qrels, the subset has no labels (:func:`collection_from_column_rows`). A
      query with a single scored passage among the first ``limit`` rows gives no list to distill
      on; the margin subset always gives two per row.
    - ``bert-ensemble-margin-mse``: (query_id, positive_id, negative_id, score), ``score`` the
      ensemble's margin ``score(q, pos) - score(q, neg)`` -> qrels, run ``triplets`` and run
      ``teacher_margin``, scores relative to each query's first positive
      (:func:`collection_from_margin_rows` says why and when to use it).

    Everything is streamed (``datasets.load_dataset(..., streaming=True)``), nothing is prepared
    or cached: the first ``limit`` rows of the subset are read (not all 397M triplets, 79.6M or
    39.8M teacher rows), then ``queries`` (808,731 rows) and ``corpus`` (8.8M passages) once each,
    keeping only the ids those rows name and stopping once all are found (the corpus is usually
    read nearly to its end, about 1.7 GB). Each call streams again.
    """
    _check_positive("limit", limit)
    if teacher is not None and teacher not in MSMARCO_TEACHERS:
        raise UsageError(f"{MSMARCO_TRIPLETS}: unknown teacher {teacher!r} (teachers: {', '.join(MSMARCO_TEACHERS)})")
    datasets = _import("datasets", MSMARCO_TRIPLETS)

    def subset(config: str):
        return datasets.load_dataset(MSMARCO_TRIPLETS, config, split="train", streaming=True)

    # Streamed files download while they are read: the whole conversion is guarded.
    with _hf_unavailable(MSMARCO_TRIPLETS, datasets):
        if teacher is None:
            triplets, queries, corpus = subset("triplets"), subset("queries"), subset("corpus")
            return collection_from_msmarco_triplets(
                triplets, queries, corpus, limit=limit, name=f"msmarco-triplets-{limit}"
            )
        where = f"{MSMARCO_TRIPLETS} ({teacher})"
        rows = dataset_rows(itertools.islice(subset(teacher), limit), where)
        queries = dataset_rows(subset("queries"), f"{MSMARCO_TRIPLETS} (queries)")
        corpus = dataset_rows(subset("corpus"), f"{MSMARCO_TRIPLETS} (corpus)")
        name = f"msmarco-{teacher}-{limit}"
        if teacher == "bert-ensemble-margin-mse":
            return collection_from_margin_rows(rows, queries, corpus, name=name, source=where, negatives_run="triplets")
        return collection_from_column_rows(rows, name=name, source=where, queries=queries, corpus=corpus)


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


def _is_saved_dataset(path: Path) -> bool:
    """Whether directory ``path`` was written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def _hub_rows(reference: str, split: str, streaming: bool, datasets: Any) -> Iterator[Row]:
    """Rows of Hub dataset ``hf:ID`` or ``hf:ID:CONFIG``, one split."""
    dataset_id, _, config = reference[len(HF_PREFIX) :].partition(":")
    return dataset_rows(datasets.load_dataset(dataset_id, config or None, split=split, streaming=streaming), reference)


def _local_rows(path: Path, split: str | None) -> Iterator[Row]:
    """Rows of a local ``.jsonl`` file (read here), a ``.parquet``/``.csv``/``.json`` file (streamed
    by ``datasets``, nothing cached) or a ``save_to_disk`` directory (``split`` of a DatasetDict,
    default ``train``)."""
    if not path.exists():
        raise MissingFileError(f"{path}: no such file or directory")
    if path.is_dir():
        if not _is_saved_dataset(path):
            raise DataFormatError(
                path, None, "not a directory written by save_to_disk (no state.json or dataset_dict.json)"
            )
        datasets = _import("datasets", str(path), _DATASETS_HINT)
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            split = split or "train"
            if split not in loaded:
                raise UsageError(f"{path}: no split {split!r} (splits: {', '.join(loaded)})")
            return dataset_rows(loaded[split], f"{path} [{split}]")
        if split is not None:
            raise UsageError(f"{path}: a dataset saved without splits; split= does not apply")
        return dataset_rows(loaded, str(path))
    if split is not None:
        raise UsageError(f"{path}: a file has no splits; split= does not apply")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl_rows(path)
    if suffix in DATASETS_FILE_FORMATS:
        datasets = _import("datasets", str(path), _DATASETS_HINT)
        files = datasets.load_dataset(
            DATASETS_FILE_FORMATS[suffix], data_files=str(path), split="train", streaming=True
        )
        return dataset_rows(files, str(path))
    raise UsageError(
        f"{path}: unsupported file type {path.suffix!r}: expected .jsonl (FlagEmbedding or column rows), "
        f".parquet, .csv, .json, or a directory written by save_to_disk"
    )


def _table_rows(reference: str, streaming: bool, datasets: Any) -> Iterator[Row]:
    """Rows of a queries / corpus table: ``hf:ID[:CONFIG]`` (split train), a local ``.tsv``
    (``id<TAB>text``, as ``_id``/``text`` rows) or anything :func:`_local_rows` reads."""
    if reference.startswith(HF_PREFIX):
        return _hub_rows(reference, "train", streaming, datasets)
    path = Path(reference)
    if path.suffix.lower() == ".tsv":
        return (((str(path), None), {"_id": key, "text": text}) for key, text in read_tsv(path).items())
    return _local_rows(path, None)


def _load_rows(
    reference: str,
    name: str | None = None,
    limit: int | None = None,
    split: str | None = None,
    queries: str | None = None,
    corpus: str | None = None,
) -> IRCollection:
    """Training rows from a local file, a ``save_to_disk`` directory or ``hf:ID[:CONFIG]``
    (:func:`hf_rerank.data.hf_formats.collection_from_rows`: FlagEmbedding or column layouts).

    Options:
        name: the collection's label (default: the file's stem, the directory's name, the Hub id).
        limit: keep the first ``limit`` rows. A Hub dataset is then streamed (its tables too),
            else downloaded and prepared into the ``datasets`` cache.
        split: a Hub dataset's split (default ``train``) or a saved DatasetDict's; not for files.
        queries / corpus: where the texts of id-only rows are (``hf:ID[:CONFIG]``, split train,
            or a local ``.tsv``, ``.jsonl``, ``.parquet``, ``.csv``, ``.json`` file or saved directory).
    """
    _check_positive("limit", limit)
    hub = reference.startswith(HF_PREFIX)
    if name is None:
        path = Path(reference)
        name = reference[len(HF_PREFIX) :] if hub else (path.name if path.is_dir() else path.stem)
    on_hub = [item for item in (reference, queries, corpus) if item is not None and item.startswith(HF_PREFIX)]
    datasets = _import("datasets", on_hub[0], _DATASETS_HINT) if on_hub else None
    # Streamed Hub files download while they are read: the whole conversion is guarded.
    with _hf_unavailable(on_hub[0], datasets) if on_hub else nullcontext():
        streaming = limit is not None
        rows = (
            _hub_rows(reference, split or "train", streaming, datasets) if hub else _local_rows(Path(reference), split)
        )
        query_rows = _table_rows(queries, streaming, datasets) if queries is not None else None
        corpus_rows = _table_rows(corpus, streaming, datasets) if corpus is not None else None
        return collection_from_rows(
            itertools.islice(rows, limit), name=name, source=reference, queries=query_rows, corpus=corpus_rows
        )


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source("sample", "the tiny collection shipped in the package (hf_rerank/data/sample)", _load_sample, None),
        Source(
            "sample-train",
            "the sample's first 20 queries (for the demo's fine-tuning)",
            functools.partial(_load_sample, "train"),
            None,
        ),
        Source(
            "sample-test",
            "the sample's other 10 queries (for the demo's evaluation)",
            functools.partial(_load_sample, "test"),
            None,
        ),
        Source(
            MSMARCO_TRIPLETS,
            "MS MARCO passage training triplets (qidpidtriples, reshuffled) as a training collection: "
            "qrels of positives, run 'triplets' (positives 1.0, negatives 0.0); options limit (default "
            "1,000,000) and teacher (bert-ensemble-mse: run 'teacher'; bert-ensemble-margin-mse: run "
            "'teacher_margin'), streamed",
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
    """Load a collection by local path, ``hf:`` Hub id or registered name (see the module docstring).

    ``options`` go to the loader: a TREC-layout directory takes ``name`` (the label); files,
    ``save_to_disk`` directories and ``hf:`` ids take ``name``, ``limit``, ``split``, ``queries``,
    ``corpus``; a registered source takes its own. Raises ValueError for an unknown name,
    TypeError for an option the loader does not take, ImportError when a library is missing,
    SourceUnavailableError when a Hub dataset cannot be downloaded.
    """
    path = Path(name_or_path)
    if name_or_path.startswith(HF_PREFIX) or path.is_file() or (path.is_dir() and _is_saved_dataset(path)):
        label, loader = name_or_path, functools.partial(_load_rows, name_or_path)
    elif path.is_dir():
        return IRCollection.from_dir(name_or_path, **options)
    elif name_or_path in SOURCES:
        label, loader = name_or_path, SOURCES[name_or_path].loader
    else:
        raise UsageError(
            f"unknown collection {name_or_path!r}: not a local file or directory, not hf:ID, and not a registered "
            f"source ({', '.join(SOURCES)}). "
            "Accepted too: a local directory with queries.tsv, collection.tsv, qrels.txt "
            "and runs/*.run; a .jsonl, .parquet, .csv or .json file of training rows or a "
            f"directory written by save_to_disk; a Hub dataset as hf:ID or hf:ID:CONFIG"
        )
    parameters = inspect.signature(loader).parameters
    unknown = sorted(set(options).difference(parameters))
    if unknown:
        accepted = ", ".join(parameters) or "none"
        raise TypeError(f"{label}: unknown option(s) {', '.join(unknown)} (options: {accepted})")
    return loader(**options)
