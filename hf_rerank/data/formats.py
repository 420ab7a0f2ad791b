"""Readers and writers for the file formats of IR collections.

Every id is a ``str`` (``"19335"`` and ``"msmarco_passage_08_24643970"`` alike).

Formats
-------
- TSV (MS MARCO style), queries or passages: ``id<TAB>text`` per line -> ``{id: text}``.
- JSONL (BEIR style): one JSON object per line with ``_id``, ``text`` and optionally ``title``
  -> ``{id: text}``; a non-empty title is joined before the text with a space, as BEIR does.
- TREC qrels: ``qid iteration pid grade`` per line (whitespace separated, grade an integer)
  -> ``{qid: {pid: grade}}``.
- TREC run: ``qid Q0 pid rank score tag`` per line -> ``{qid: {pid: score}}``, each query's
  passages in rank order (score descending; ties keep the file's rank order).

Readers raise :class:`DataFormatError` naming the file and line of the first bad line.
Writers are atomic: they write a temporary file beside the target and rename it, so a
crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


class DataFormatError(ValueError):
    """A malformed input file; the message reads ``PATH:LINE: problem``."""

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def _lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for non-blank lines, line numbers from 1, newline stripped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield number, line


def read_tsv(path: str | os.PathLike, *, kind: str = "text") -> dict[str, str]:
    """Read ``id<TAB>text`` lines. ``kind`` ("query", "passage") only words the errors.

    Errors: a line without a tab, an empty id, an empty text, a duplicate id.
    """
    records = []
    for number, line in _lines(path):
        if "\t" not in line:
            raise DataFormatError(path, number, f"expected 'id<TAB>{kind} text', found no tab: {line[:80]!r}")
        key, text = line.split("\t", 1)
        records.append((number, key, text))
    return _texts(path, records, kind)


def _texts(path, records, kind: str) -> dict[str, str]:
    """``{id: text}`` from ``(line, id, text)``; errors for an empty id or text and a duplicate id."""
    texts: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    for number, key, text in records:
        key, text = key.strip(), text.strip()
        if not key:
            raise DataFormatError(path, number, f"empty {kind} id")
        if not text:
            raise DataFormatError(path, number, f"empty {kind} text for id {key!r}")
        if key in texts:
            raise DataFormatError(path, number, f"duplicate {kind} id {key!r} (first on line {first_seen[key]})")
        texts[key] = text
        first_seen[key] = number
    return texts


def read_jsonl(path: str | os.PathLike, *, kind: str = "text") -> dict[str, str]:
    """Read BEIR-style JSONL (``_id``, ``text``, optional ``title``) -> ``{id: "title text"}``."""
    records = []
    for number, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, number, f"invalid JSON: {error.msg}") from None
        if not isinstance(record, dict) or "_id" not in record or "text" not in record:
            raise DataFormatError(path, number, "expected an object with '_id' and 'text'")
        text = " ".join(part for part in (str(record.get("title") or "").strip(), str(record["text"]).strip()) if part)
        records.append((number, str(record["_id"]), text))
    return _texts(path, records, kind)


def read_texts(path: str | os.PathLike, *, kind: str = "text") -> dict[str, str]:
    """Read queries or passages from ``.tsv`` or ``.jsonl`` (chosen by suffix)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".json"):
        return read_jsonl(path, kind=kind)
    return read_tsv(path, kind=kind)


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Read TREC qrels ``qid iteration pid grade``.

    Errors: not four fields, a grade that is not an integer, a negative grade, the same
    (qid, pid) judged twice.
    """
    qrels: Qrels = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise DataFormatError(path, number, f"expected 4 fields 'qid iteration pid grade', found {len(fields)}: {line[:80]!r}")
        qid, _, pid, grade_text = fields
        try:
            grade = int(grade_text)
        except ValueError:
            raise DataFormatError(path, number, f"grade must be an integer, found {grade_text!r}") from None
        if grade < 0:
            raise DataFormatError(path, number, f"grade must be >= 0, found {grade}")
        judged = qrels.setdefault(qid, {})
        if pid in judged:
            raise DataFormatError(path, number, f"passage {pid!r} judged twice for query {qid!r}")
        judged[pid] = grade
    return qrels


def read_run(path: str | os.PathLike) -> Run:
    """Read a TREC run ``qid Q0 pid rank score tag``.

    Each query's passages come back in rank order: score descending, ties broken by the rank
    column. Errors: not six fields, a rank that is not an integer, a score that is not a
    number, the same (qid, pid) twice (naming both lines).
    """
    rows: dict[str, list[tuple[float, int, str]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise DataFormatError(path, number, f"expected 6 fields 'qid Q0 pid rank score tag', found {len(fields)}: {line[:80]!r}")
        qid, _, pid, rank_text, score_text, _ = fields
        try:
            rank = int(rank_text)
        except ValueError:
            raise DataFormatError(path, number, f"rank must be an integer, found {rank_text!r}") from None
        try:
            score = float(score_text)
        except ValueError:
            raise DataFormatError(path, number, f"score must be a number, found {score_text!r}") from None
        if score != score:
            raise DataFormatError(path, number, "score is NaN")
        if (qid, pid) in seen:
            raise DataFormatError(
                path, number, f"duplicate (query {qid!r}, passage {pid!r}): already on line {seen[qid, pid]}"
            )
        seen[qid, pid] = number
        rows.setdefault(qid, []).append((score, rank, pid))
    return {qid: {pid: score for score, _, pid in sorted(items, key=lambda r: (-r[0], r[1]))} for qid, items in rows.items()}


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w"):
    """Open a temporary file beside ``path``; on success rename it over ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_tsv(path: str | os.PathLike, texts: Mapping[str, str]) -> None:
    """Write ``id<TAB>text`` lines; tabs and newlines inside a text are folded to spaces."""
    with atomic_write(path) as handle:
        for key, text in texts.items():
            handle.write(f"{key}\t{' '.join(text.split())}\n")


def write_jsonl(path: str | os.PathLike, texts: Mapping[str, str]) -> None:
    """Write BEIR-style JSONL ``{"_id": ..., "title": "", "text": ...}``."""
    with atomic_write(path) as handle:
        for key, text in texts.items():
            handle.write(json.dumps({"_id": key, "title": "", "text": text}, ensure_ascii=False) + "\n")


def write_qrels(path: str | os.PathLike, qrels: Qrels) -> None:
    """Write TREC qrels ``qid 0 pid grade``."""
    with atomic_write(path) as handle:
        for qid, judged in qrels.items():
            for pid, grade in judged.items():
                handle.write(f"{qid} 0 {pid} {grade}\n")


def write_run(path: str | os.PathLike, run: Run, tag: str = "hf-rerank") -> None:
    """Write a TREC run, each query's passages by score descending, ranks from 1."""
    with atomic_write(path) as handle:
        for qid, scored in run.items():
            ranked = sorted(scored.items(), key=lambda item: -item[1])
            for rank, (pid, score) in enumerate(ranked, start=1):
                handle.write(f"{qid} Q0 {pid} {rank} {score:.6f} {tag}\n")
