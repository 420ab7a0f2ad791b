"""Training data in the shapes users already have, converted to :class:`IRCollection`.

Pure conversions over rows; no library is imported here (loading files, ``save_to_disk``
directories and the Hub is :func:`hf_rerank.data.sources.load_collection`'s job). A *row* is
``(where, record)``: ``record`` a mapping (a JSON object, or a dict as ``datasets`` yields it) and
``where = (path, line)`` for a file line or ``("NAME row I", None)`` for row ``I`` (0-based, as
``dataset[I]``) of a dataset; errors are :class:`DataFormatError` reading ``PATH:LINE: problem``
or ``NAME row I: problem``.

Every format gives the same collection, so examples, collator and trainer are unchanged:

- ``queries`` ``{qid: text}``, ``corpus`` ``{pid: text}``, texts stripped. A query or passage given
  as text only gets the id :func:`text_id`: ``q-`` / ``p-`` + the first 16 hex digits of the SHA-1
  of its stripped UTF-8 text, so the same text on two rows (or in two datasets) is one query or
  passage. A text that is empty (or not a string) is an error.
- ``qrels`` ``{qid: {pid: grade}}``: positives at grade 1 (pointwise rows: their ``label``, the
  highest where a pair repeats). Negatives are not judgments and are not in the qrels.
- ``runs["negatives"]``: each query's positives at 1.0, then its negatives at 0.0, each group in
  first-seen order; a positive of the query is never also its negative. Train with
  ``negatives="unjudged"`` and ``positive_grade=1``.
- ``runs["teacher"]`` where the rows carry teacher scores: ``{qid: {pid: score}}``, each query's
  passages by score descending (ties in first-seen order). A pair scored twice keeps its first
  score; repeats with another score are counted in one warning.

Column layouts (:func:`column_layout`), for datasets, parquet / csv / json files and JSONL rows:

=================================================================  ===============================
columns                                                            gives
=================================================================  ===============================
``query, positive``                                                qrels (in-batch negatives only)
``query, positive, negative``                                      qrels, run ``negatives``
``query, positive, negative_1, ..., negative_N``                   qrels, run ``negatives``
+ ``positive_score`` and ``negative_score`` / ``negative_I_score``  run ``teacher``
``query, passage, label``                                          ``label > 0``: qrels at that
                                                                   grade; ``0``: a negative
``query, passage, score``                                          run ``teacher`` only, no qrels
``query, passage, label, score``                                   both
=================================================================  ===============================

Each of ``query``, ``positive``, ``negative``, ``negative_I``, ``passage`` may be given as its
text (column ``X``), its id (``X_id``; the texts then come from a queries / corpus table, see
:func:`texts_from_rows`), or both. A bare ``score`` column next to ``positive`` is rejected as
ambiguous (sentence-transformers' margin datasets use it for ``score(q, pos) - score(q, neg)``,
others for the positive's score): name the teacher scores ``positive_score`` and
``negative_score`` / ``negative_I_score`` (all of them), or drop the column. Other columns are
ignored, with one warning naming them. ``label`` is a whole number ``>= 0`` (``True``/``False``
count as 1/0); scores are finite numbers.

FlagEmbedding rows (:func:`collection_from_flag_rows`): ``{"query": str, "pos": [str], "neg":
[str], "pos_scores": [float], "neg_scores": [float]}``; ``pos_scores``/``neg_scores`` optional
(both or neither, on every row or on none, one score per passage) -> run ``teacher``; other keys
(``prompt``, ``type``) ignored. Every row needs at least one positive; a query on several rows
gathers their passages.

Margins (:func:`collection_from_margin_rows`, sentence-transformers/msmarco's
``bert-ensemble-margin-mse``): rows ``(query_id, positive_id, negative_id, score)`` with
``score = teacher(q, pos) - teacher(q, neg)``. See that function for how margins become a run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import DataFormatError, Qrels, Run, text_lines
from hf_rerank.errors import UsageError

logger = logging.getLogger("hf_rerank")

NEGATIVES_RUN = "negatives"
TEACHER_RUN = "teacher"
TEACHER_MARGIN_RUN = "teacher_margin"
QUERY_PREFIX = "q-"
PASSAGE_PREFIX = "p-"
FLAG_KEYS = ("query", "pos", "neg")
MARGIN_TOLERANCE = 1e-3

Where = tuple[str, int | None]
Row = tuple[Where, Mapping[str, Any]]

KNOWN_LAYOUTS = (
    "known layouts: (query, positive[, negative | negative_1..negative_N][, positive_score and "
    "negative_score | negative_1_score..negative_N_score]); (query, passage, label and/or score); "
    "FlagEmbedding (query, pos, neg[, pos_scores, neg_scores]); each of query, positive, negative, "
    "passage as its text X, its id X_id (texts from queries= / corpus=) or both"
)


def text_id(prefix: str, text: str) -> str:
    """The id of a query or passage known by its text: ``prefix`` + 16 hex digits of SHA-1(stripped text)."""
    return prefix + hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:16]


def read_jsonl_rows(path: str | os.PathLike) -> Iterator[Row]:
    """The rows of a JSONL file, one JSON object per non-blank line, ``where = (path, line)``.

    Read lazily with :func:`~hf_rerank.data.formats.text_lines` (UTF-8, a leading byte-order mark
    dropped). Raises DataFormatError on a line that is not valid JSON or not an object.
    """
    for number, line in text_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, number, f"invalid JSON: {error.msg}") from None
        if not isinstance(record, dict):
            raise DataFormatError(path, number, f"expected a JSON object, found {_type_name(record)}")
        yield (str(path), number), record


def dataset_rows(records: Iterable[Mapping[str, Any]], source: str) -> Iterator[Row]:
    """Rows of an iterable of records (a ``datasets`` dataset): ``where = ("SOURCE row I", None)``."""
    for index, record in enumerate(records):
        yield (f"{source} row {index}", None), record


# --------------------------------------------------------------------------------------------
# Values of a row, checked
# --------------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    """JSON's name for the type of ``value`` (``string``, ``number``, ``array``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _field(record: Mapping[str, Any], column: str, where: Where) -> Any:
    if column not in record:
        raise DataFormatError(*where, f"missing column {column!r}")
    return record[column]


def _text(value: Any, name: str, where: Where) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str):
        raise DataFormatError(*where, f"{name} must be a string, found {_type_name(value)}")
    if not value.strip():
        raise DataFormatError(*where, f"{name} is empty")
    return value.strip()


def _key(value: Any, name: str, where: Where) -> str:
    """An id: a non-empty string or an integer, as a stripped string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(*where, f"{name} must be a string or an integer, found {_type_name(value)}")
    if not str(value).strip():
        raise DataFormatError(*where, f"{name} is empty")
    return str(value).strip()


def _score(value: Any, name: str, where: Where) -> float:
    """A finite number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataFormatError(*where, f"{name} must be a finite number, found {value!r}")
    return float(value)


def _grade(value: Any, name: str, where: Where) -> int:
    """A whole number >= 0 (booleans count as 1 / 0)."""
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value) or value < 0:
        raise DataFormatError(*where, f"{name} must be a whole number >= 0, found {value!r}")
    return int(value)


def _describe(where: Where) -> str:
    """``line N`` for a file line, ``NAME row I`` for a dataset row."""
    path, line = where
    return f"line {line}" if line is not None else path


# --------------------------------------------------------------------------------------------
# The collection being built
# --------------------------------------------------------------------------------------------


class _Builder:
    """Positives, negatives and teacher scores gathered row by row (conventions: module docstring)."""

    def __init__(self) -> None:
        self.queries: dict[str, str] = {}
        self.corpus: dict[str, str] = {}
        self.order: dict[str, None] = {}  # queries in first-seen order
        self.positives: dict[str, dict[str, int]] = {}
        self.negatives: dict[str, dict[str, None]] = {}
        self.scores: dict[str, dict[str, float]] = {}
        self.rescored = 0

    def text(self, kind: str, key: str, text: str, where: Where) -> None:
        """Record the text of query or passage ``key``; an id seen before with another text is an error."""
        table = self.queries if kind == "query" else self.corpus
        known = table.setdefault(key, text)
        if known != text:
            raise DataFormatError(
                *where, f"{kind} id {key!r} has another text on an earlier row: {known[:60]!r} vs {text[:60]!r}"
            )

    def query(self, qid: str) -> None:
        self.order.setdefault(qid, None)

    def positive(self, qid: str, pid: str, grade: int) -> None:
        judged = self.positives.setdefault(qid, {})
        judged[pid] = max(grade, judged.get(pid, grade))

    def negative(self, qid: str, pid: str) -> None:
        self.negatives.setdefault(qid, {})[pid] = None

    def score(self, qid: str, pid: str, score: float) -> None:
        scored = self.scores.setdefault(qid, {})
        if pid not in scored:
            scored[pid] = score
        elif scored[pid] != score:
            self.rescored += 1

    def wanted_passages(self) -> set[str]:
        """Every passage id a row named."""
        return {
            pid for table in (self.positives, self.negatives, self.scores) for named in table.values() for pid in named
        }

    def collection(self, name: str, source: str, *, negatives_run: str | None, teacher_run: str | None) -> IRCollection:
        """The collection: qrels of the positives, run ``negatives_run`` and run ``teacher_run`` (None: left out)."""
        qrels: Qrels = {qid: self.positives[qid] for qid in self.order if qid in self.positives}
        runs: dict[str, Run] = {}
        if negatives_run is not None:
            runs[negatives_run] = {}
            for qid in self.order:
                positives = self.positives.get(qid, {})
                negatives = [pid for pid in self.negatives.get(qid, {}) if pid not in positives]
                if positives or negatives:
                    runs[negatives_run][qid] = {**{pid: 1.0 for pid in positives}, **{pid: 0.0 for pid in negatives}}
        if teacher_run is not None:
            runs[teacher_run] = {
                qid: dict(sorted(self.scores[qid].items(), key=lambda item: -item[1]))
                for qid in self.order
                if qid in self.scores
            }
        if self.rescored:
            logger.warning(
                "%s: %d (query, passage) pairs are scored again with another score; the first score is kept",
                source,
                self.rescored,
            )
        sources = {"queries": source, "corpus": source, "qrels": source, **{f"run:{run}": source for run in runs}}
        return IRCollection(name, self.queries, self.corpus, qrels, runs, sources)


def warn_missing(source: str, kind: str, wanted: set[str], found: Mapping[str, str]) -> None:
    """One warning counting the ``wanted`` ids (``kind``: "queries", "passages") that have no text in ``found``."""
    missing = sorted(wanted.difference(found))
    if missing:
        logger.warning(
            "%s: %d of %d %s have no text and are left out of the collection: %s",
            source,
            len(missing),
            len(wanted),
            kind,
            ", ".join(missing[:10]),
        )


# --------------------------------------------------------------------------------------------
# Queries and corpus tables
# --------------------------------------------------------------------------------------------


def texts_from_rows(rows: Iterable[Row], kind: str, wanted: set[str], source: str) -> dict[str, str]:
    """``{id: text}`` of the ``wanted`` ids from a queries (``kind="query"``) or corpus (``"passage"``) table.

    Table columns: ``query_id, query`` / ``passage_id, passage`` (sentence-transformers/msmarco's
    ``queries`` and ``corpus``), or BEIR's ``_id, text`` with an optional ``title`` joined before
    the text with a space. Only the wanted ids are kept, and reading stops once all are found;
    an empty text is left out (callers count what is missing). Raises ValueError naming
    ``source`` and the columns when the first row fits neither layout.
    """
    remaining = set(wanted)
    texts: dict[str, str] = {}
    if not remaining:
        return texts
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return texts
    columns = list(first[1])
    if f"{kind}_id" in columns and kind in columns:
        id_column, text_column = f"{kind}_id", kind
    elif "_id" in columns and "text" in columns:
        id_column, text_column = "_id", "text"
    else:
        raise DataFormatError(
            source,
            None,
            f"columns {', '.join(columns)} are not a {kind} table: expected {kind}_id and {kind}, or _id and text",
        )
    title = "title" in columns and text_column == "text"
    for where, record in itertools.chain([first], rows):
        key = _key(_field(record, id_column, where), repr(id_column), where)
        if key not in remaining:
            continue
        remaining.discard(key)
        parts = (record.get("title") if title else None, record.get(text_column))
        text = " ".join(part.strip() for part in parts if isinstance(part, str) and part.strip())
        if text:
            texts[key] = text
        if not remaining:
            break
    return texts


# --------------------------------------------------------------------------------------------
# Column rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One query or passage of a column row.

    Attributes:
        role: ``query``, ``positive``, ``negative``, ``negative_I`` or ``passage``.
        id_column / text_column: the columns holding its id / text (at least one).
        score_column: the column of its teacher score (None: no score).
    """

    role: str
    id_column: str | None
    text_column: str | None
    score_column: str | None = None

    def columns(self) -> tuple[str, ...]:
        return tuple(column for column in (self.id_column, self.text_column, self.score_column) if column)


@dataclass(frozen=True)
class ColumnLayout:
    """Which columns hold what (see the module docstring's table).

    Attributes:
        query: the query's field.
        passages: ``(positive, negative...)`` for pair/triplet/list rows, or ``(passage,)`` for
            pointwise rows.
        label_column: ``label`` for pointwise rows that have it, else None.
        ignored: the columns that are not used.
    """

    query: Field
    passages: tuple[Field, ...]
    label_column: str | None
    ignored: tuple[str, ...]

    @property
    def pointwise(self) -> bool:
        return self.passages[0].role == "passage"

    @property
    def has_scores(self) -> bool:
        return any(field.score_column for field in self.passages)

    @property
    def has_negatives(self) -> bool:
        return len(self.passages) > 1 or self.label_column is not None


_NUMBERED = re.compile(r"negative_(\d+)(?:_id|_score)?")


def column_layout(columns: Sequence[str], source: str) -> ColumnLayout:
    """The layout of rows with these column names (the module docstring's table).

    Raises ValueError naming ``source``, the columns found, what does not fit and the known
    layouts: no query column; both ``positive`` and ``passage``; both ``negative`` and
    ``negative_I``; a ``negative_I_score`` or ``negative_I_id`` without its negative; some but not
    all teacher score columns; a bare ``score`` beside ``positive``; pointwise rows with neither
    ``label`` nor ``score``.
    """
    present = list(columns)

    def fail(problem: str) -> ValueError:
        return ValueError(f"{source}: columns {', '.join(present)} fit no known layout: {problem} ({KNOWN_LAYOUTS})")

    def field(role: str, score_column: str | None = None) -> Field | None:
        id_column = f"{role}_id" if f"{role}_id" in present else None
        text_column = role if role in present else None
        return Field(role, id_column, text_column, score_column) if id_column or text_column else None

    query = field("query")
    if query is None:
        raise fail("no query or query_id column")
    positive, passage = field("positive"), field("passage")
    label_column = None
    if positive is not None and passage is not None:
        raise fail("both positive and passage columns; use one layout")
    if passage is not None:
        score_column = "score" if "score" in present else None
        label_column = "label" if "label" in present else None
        if score_column is None and label_column is None:
            raise fail("(query, passage) rows need a label column (relevance grade) or a score column (teacher score)")
        passages: tuple[Field, ...] = (Field("passage", passage.id_column, passage.text_column, score_column),)
    elif positive is not None:
        numbers = sorted({int(match.group(1)) for column in present if (match := _NUMBERED.fullmatch(column))})
        if field("negative") is not None and numbers:
            raise fail("both negative and negative_I columns; use one or the other")
        roles = (
            ["negative"]
            if field("negative") is not None or "negative_score" in present
            else [f"negative_{n}" for n in numbers]
        )
        fields = [field(role) for role in ("positive", *roles)]
        lacking = [role for role, found in zip(("positive", *roles), fields) if found is None]
        if lacking:
            raise fail(f"no {' or '.join(f'{role}/{role}_id' for role in lacking)} column for its score or id")
        score_columns = [f"{role}_score" for role in ("positive", *roles)]
        given = [column for column in score_columns if column in present]
        if given and len(given) < len(score_columns):
            missing = [column for column in score_columns if column not in present]
            raise fail(f"teacher scores need all of {', '.join(score_columns)}; missing {', '.join(missing)}")
        if "score" in present:
            raise fail(
                "a score column beside positive is ambiguous (a margin positive - negative, or the positive's score?): "
                "name teacher scores positive_score and negative_score / negative_I_score, or drop the column"
            )
        passages = tuple(
            Field(found.role, found.id_column, found.text_column, f"{found.role}_score" if given else None)
            for found in fields
            if found is not None
        )
    else:
        raise fail("no positive/positive_id or passage/passage_id column")
    used = {column for found in (query, *passages) for column in found.columns()}
    used.update([label_column] if label_column else [])
    return ColumnLayout(query, passages, label_column, tuple(column for column in present if column not in used))


def _identify(builder: _Builder, record: Mapping[str, Any], field: Field, kind: str, where: Where) -> str:
    """The id of ``field``'s query or passage on this row (its id column, else the hash of its text)."""
    text = (
        _text(_field(record, field.text_column, where), repr(field.text_column), where) if field.text_column else None
    )
    if field.id_column:
        key = _key(_field(record, field.id_column, where), repr(field.id_column), where)
    else:
        key = text_id(QUERY_PREFIX if kind == "query" else PASSAGE_PREFIX, text)
    if text is not None:
        builder.text(kind, key, text, where)
    return key


def collection_from_column_rows(
    rows: Iterable[Row],
    *,
    name: str,
    source: str,
    queries: Iterable[Row] | None = None,
    corpus: Iterable[Row] | None = None,
) -> IRCollection:
    """Build a collection from rows in a column layout (:func:`column_layout`, read off the first row).

    Inputs:
        rows: ``(where, record)``; every record has the first record's layout columns.
        queries / corpus: tables (:func:`texts_from_rows`) giving the texts of queries / passages
            that the rows name by id only; required then, and rejected when the rows hold the texts.
            Read after the rows, keeping only the ids they named.
        name: the collection's label; source: names the data in errors, warnings and ``sources``.

    Output (conventions in the module docstring): queries, corpus, qrels, run ``negatives`` when
    the rows have negatives (or a ``label``), run ``teacher`` when they have score columns. Ids
    named by the rows that have no text in a table are counted in one warning each.

    Raises ValueError for an unknown layout or an empty input, DataFormatError for a bad value.
    """
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise DataFormatError(source, None, "no rows")
    layout = column_layout(list(first[1]), source)
    if layout.ignored:
        logger.warning("%s: columns %s are not used (%s)", source, ", ".join(layout.ignored), KNOWN_LAYOUTS)
    query_ids_only = layout.query.text_column is None
    passage_ids_only = any(field.text_column is None for field in layout.passages)
    for table, needed, option, kind in (
        (queries, query_ids_only, "queries", "query"),
        (corpus, passage_ids_only, "corpus", "passage"),
    ):
        if needed and table is None:
            raise UsageError(f"{source}: the rows name {kind} ids only; pass {option}= (a table with their texts)")
        if not needed and table is not None:
            raise UsageError(f"{source}: the rows hold the {kind} texts; {option}= does not apply")

    builder = _Builder()
    for where, record in itertools.chain([first], rows):
        qid = _identify(builder, record, layout.query, "query", where)
        builder.query(qid)
        for field in layout.passages:
            pid = _identify(builder, record, field, "passage", where)
            if field.role == "positive":
                builder.positive(qid, pid, 1)
            elif field.role != "passage":
                builder.negative(qid, pid)
            elif layout.label_column is not None:
                grade = _grade(_field(record, layout.label_column, where), repr(layout.label_column), where)
                if grade > 0:
                    builder.positive(qid, pid, grade)
                else:
                    builder.negative(qid, pid)
            if field.score_column:
                builder.score(
                    qid, pid, _score(_field(record, field.score_column, where), repr(field.score_column), where)
                )

    if queries is not None:
        builder.queries = texts_from_rows(queries, "query", set(builder.order), source)
        warn_missing(source, "queries", set(builder.order), builder.queries)
    if corpus is not None:
        wanted = builder.wanted_passages()
        builder.corpus.update(texts_from_rows(corpus, "passage", wanted.difference(builder.corpus), source))
        warn_missing(source, "passages", wanted, builder.corpus)
    return builder.collection(
        name,
        source,
        negatives_run=NEGATIVES_RUN if layout.has_negatives else None,
        teacher_run=TEACHER_RUN if layout.has_scores else None,
    )


# --------------------------------------------------------------------------------------------
# FlagEmbedding rows
# --------------------------------------------------------------------------------------------


def _flag_texts(record: Mapping[str, Any], key: str, where: Where) -> list[str]:
    value = record[key]
    if not isinstance(value, (list, tuple)):
        raise DataFormatError(*where, f"'{key}' must be a list of strings, found {_type_name(value)}")
    return [_text(item, f"'{key}'[{index}]", where) for index, item in enumerate(value)]


def _flag_scores(record: Mapping[str, Any], key: str, texts_key: str, count: int, where: Where) -> list[float]:
    value = record[key]
    if not isinstance(value, (list, tuple)):
        raise DataFormatError(*where, f"'{key}' must be a list of numbers, found {_type_name(value)}")
    if len(value) != count:
        raise DataFormatError(*where, f"'{key}' has {len(value)} scores for {count} passages in '{texts_key}'")
    return [_score(item, f"'{key}'[{index}]", where) for index, item in enumerate(value)]


def collection_from_flag_rows(rows: Iterable[Row], *, name: str, source: str) -> IRCollection:
    """Build a collection from FlagEmbedding rows (a FlagEmbedding JSONL file's objects).

    Input records: ``{"query": str, "pos": [str], "neg": [str]}`` plus, optionally,
    ``"pos_scores": [float], "neg_scores": [float]`` (one finite number per passage; both or
    neither, on every row or on none; a ``null`` counts as absent). Other keys (``prompt``,
    ``type``) are ignored.

    Output (conventions in the module docstring): ids from the texts (``q-``/``p-`` hashes),
    qrels of ``pos`` at grade 1, run ``negatives`` (``pos`` at 1.0, then ``neg`` at 0.0), run
    ``teacher`` from the scores when the rows have them.

    Raises DataFormatError (``PATH:LINE: problem``) for a missing key, a value of the wrong type,
    an empty text, an empty ``pos``, scores that do not match their passages, or rows with and
    without scores.
    """
    builder = _Builder()
    scored: tuple[bool, Where] | None = None  # whether the first row had scores, and where it was
    for where, record in rows:
        missing = [key for key in FLAG_KEYS if key not in record]
        if missing:
            found = ", ".join(map(repr, record)) or "none"
            raise DataFormatError(
                *where,
                f"missing key {', '.join(map(repr, missing))} "
                f"(FlagEmbedding rows need 'query', 'pos' and 'neg'; found {found})",
            )
        query = _text(record["query"], "'query'", where)
        positives, negatives = _flag_texts(record, "pos", where), _flag_texts(record, "neg", where)
        if not positives:
            raise DataFormatError(*where, "'pos' is empty: every row needs a positive")
        has_pos, has_neg = record.get("pos_scores") is not None, record.get("neg_scores") is not None
        if has_pos != has_neg:
            given, absent = ("pos_scores", "neg_scores") if has_pos else ("neg_scores", "pos_scores")
            raise DataFormatError(*where, f"'{given}' without '{absent}': give both or neither")
        if scored is None:
            scored = (has_pos, where)
        elif has_pos != scored[0]:
            now, then = ("has", "has none") if has_pos else ("has no", "has them")
            raise DataFormatError(
                *where,
                f"{now} teacher scores (pos_scores, neg_scores) but {_describe(scored[1])} {then}: "
                "give them on every row or on none",
            )
        qid = text_id(QUERY_PREFIX, query)
        builder.text("query", qid, query, where)
        builder.query(qid)
        scores = (
            (
                _flag_scores(record, "pos_scores", "pos", len(positives), where)
                + _flag_scores(record, "neg_scores", "neg", len(negatives), where)
            )
            if has_pos
            else None
        )
        for index, text in enumerate(positives + negatives):
            pid = text_id(PASSAGE_PREFIX, text)
            builder.text("passage", pid, text, where)
            if index < len(positives):
                builder.positive(qid, pid, 1)
            else:
                builder.negative(qid, pid)
            if scores is not None:
                builder.score(qid, pid, scores[index])
    if scored is None:
        raise DataFormatError(source, None, "no rows")
    return builder.collection(name, source, negatives_run=NEGATIVES_RUN, teacher_run=TEACHER_RUN if scored[0] else None)


def collection_from_rows(
    rows: Iterable[Row],
    *,
    name: str,
    source: str,
    queries: Iterable[Row] | None = None,
    corpus: Iterable[Row] | None = None,
) -> IRCollection:
    """FlagEmbedding rows (the first record has a ``pos`` or ``neg`` key) or column rows, by the first row.

    Arguments as :func:`collection_from_column_rows`; ``queries``/``corpus`` do not apply to
    FlagEmbedding rows (ValueError). Raises ValueError when there are no rows.
    """
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        raise DataFormatError(source, None, "no rows")
    rows = itertools.chain([first], rows)
    if "pos" in first[1] or "neg" in first[1]:
        if queries is not None or corpus is not None:
            raise UsageError(f"{source}: FlagEmbedding rows hold their texts; queries= and corpus= do not apply")
        return collection_from_flag_rows(rows, name=name, source=source)
    return collection_from_column_rows(rows, name=name, source=source, queries=queries, corpus=corpus)


# --------------------------------------------------------------------------------------------
# Teacher margins
# --------------------------------------------------------------------------------------------


def collection_from_margin_rows(
    rows: Iterable[Row],
    queries: Iterable[Row],
    corpus: Iterable[Row],
    *,
    name: str,
    source: str,
    negatives_run: str = NEGATIVES_RUN,
) -> IRCollection:
    """Build a collection from teacher margins: rows ``{query_id, positive_id, negative_id, score}``
    with ``score = teacher(q, positive) - teacher(q, negative)`` (sentence-transformers/msmarco's
    ``bert-ensemble-margin-mse``), plus its ``queries`` and ``corpus`` tables (:func:`texts_from_rows`).

    A margin is a difference, so it fixes each query's teacher scores only up to a constant of
    that query. Putting each pair's positive at the margin and its negative at 0.0 would be wrong
    as soon as a query has two pairs (the positive would get two scores, and negatives of
    different pairs would be compared on different scales). Instead:

    - runs[``teacher_margin``]: per query, the teacher's scores *relative to the query's first
      positive*, which is set to 0.0; a pair ``(p, n, m)`` with ``p`` placed puts ``n`` at
      ``s(p) - m``, one with ``n`` placed puts ``p`` at ``s(n) + m``, until no pair adds a passage.
      Differences within a query are the teacher's (any pair's margin is ``s(p) - s(n)``), so the
      run suits margin-MSE and listwise (softmax) distillation, which only use differences; its
      absolute values are not the teacher's scores, so it does not suit pointwise MSE.
      Passages by score descending. Pairs not linked to the first positive through shared
      passages (a second positive with negatives of its own) cannot be put on that scale and are
      left out of this run; pairs whose margin contradicts the scores already placed (by more
      than 1e-3) keep the earlier placement. Each is counted in one warning.
    - qrels (positives at 1) and run ``negatives_run`` (positives 1.0, negatives 0.0) as usual.

    Ids missing from the tables are counted in one warning each.
    """
    builder = _Builder()
    pairs: dict[str, list[tuple[str, str, float]]] = {}
    for where, record in rows:
        qid = _key(_field(record, "query_id", where), "'query_id'", where)
        positive = _key(_field(record, "positive_id", where), "'positive_id'", where)
        negative = _key(_field(record, "negative_id", where), "'negative_id'", where)
        margin = _score(_field(record, "score", where), "'score'", where)
        builder.query(qid)
        builder.positive(qid, positive, 1)
        builder.negative(qid, negative)
        pairs.setdefault(qid, []).append((positive, negative, margin))

    unlinked = contradicting = 0
    for qid, query_pairs in pairs.items():
        scores = {query_pairs[0][0]: 0.0}
        pending = query_pairs
        while True:
            left = []
            for positive, negative, margin in pending:
                if positive in scores and negative in scores:
                    contradicting += abs(scores[positive] - scores[negative] - margin) > MARGIN_TOLERANCE
                elif positive in scores:
                    scores[negative] = scores[positive] - margin
                elif negative in scores:
                    scores[positive] = scores[negative] + margin
                else:
                    left.append((positive, negative, margin))
            if len(left) == len(pending):
                break
            pending = left
        unlinked += len(pending)
        builder.scores[qid] = scores
    if unlinked:
        logger.warning(
            "%s: %d of %d pairs are not linked to their query's first positive and are left out of run %r",
            source,
            unlinked,
            sum(map(len, pairs.values())),
            TEACHER_MARGIN_RUN,
        )
    if contradicting:
        logger.warning(
            "%s: %d pairs have a margin that differs by more than %g from the scores placed before them",
            source,
            contradicting,
            MARGIN_TOLERANCE,
        )

    builder.queries = texts_from_rows(queries, "query", set(builder.order), source)
    warn_missing(source, "queries", set(builder.order), builder.queries)
    wanted = builder.wanted_passages()
    builder.corpus = texts_from_rows(corpus, "passage", wanted, source)
    warn_missing(source, "passages", wanted, builder.corpus)
    return builder.collection(name, source, negatives_run=negatives_run, teacher_run=TEACHER_MARGIN_RUN)
