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
  passages in trec_eval's order (score descending, then passage id descending; the rank column
  is checked but, as trec_eval does, not used: :mod:`hf_rerank.data.ranking`).

Files are read as UTF-8; a byte-order mark at the start of a file is dropped (it would otherwise
become part of the first id). Readers raise :class:`DataFormatError` naming the file and line of
the first bad line.
Writers are atomic: they write a temporary file beside the target and rename it, so a
crash never leaves a half-written file.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from hf_rerank.data.ranking import trec_order
from hf_rerank.errors import DataError, MissingFileError

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


class DataFormatError(DataError):
    """A malformed input file; the message reads ``PATH:LINE: problem``."""

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


def text_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for the non-blank lines of a UTF-8 file, line numbers from 1,
    newline stripped, a leading byte-order mark dropped."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    with path.open(encoding="utf-8-sig") as handle:  # -sig: a leading byte-order mark is dropped
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if line.strip():
                yield number, line


def read_tsv(path: str | os.PathLike, *, kind: str = "text") -> dict[str, str]:
    """Read ``id<TAB>text`` lines. ``kind`` ("query", "passage") only words the errors.

    Errors: a line without a tab, an empty id, an empty text, a duplicate id.
    """
    records = []
    for number, line in text_lines(path):
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
    for number, line in text_lines(path):
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
    for number, line in text_lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise DataFormatError(
                path, number, f"expected 4 fields 'qid iteration pid grade', found {len(fields)}: {line[:80]!r}"
            )
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

    Each query's passages come back in trec_eval's order (:data:`~hf_rerank.data.ranking.TIE_RULE`:
    score descending, then passage id descending), whatever the file's line order or rank column.
    Errors: not six fields, a rank that is not an integer, a score that is not a finite number,
    the same (qid, pid) twice (naming both lines).
    """
    rows: dict[str, dict[str, float]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, line in text_lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise DataFormatError(
                path, number, f"expected 6 fields 'qid Q0 pid rank score tag', found {len(fields)}: {line[:80]!r}"
            )
        qid, _, pid, rank_text, score_text, _ = fields
        try:
            int(rank_text)
        except ValueError:
            raise DataFormatError(path, number, f"rank must be an integer, found {rank_text!r}") from None
        try:
            score = float(score_text)
        except ValueError:
            raise DataFormatError(path, number, f"score must be a number, found {score_text!r}") from None
        if not math.isfinite(score):
            raise DataFormatError(path, number, f"score must be a finite number, found {score_text!r}")
        if (qid, pid) in seen:
            raise DataFormatError(
                path, number, f"duplicate (query {qid!r}, passage {pid!r}): already on line {seen[qid, pid]}"
            )
        seen[qid, pid] = number
        rows.setdefault(qid, {})[pid] = score
    return {qid: trec_order(scored) for qid, scored in rows.items()}


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


@contextmanager
def staged_directory(path: str | os.PathLike):
    """Yield a new temporary directory beside ``path`` holding a copy of what ``path`` has (if it
    exists); on success it replaces ``path`` in one step (:func:`replace_directory`), else it is
    deleted and ``path`` is left as it was."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would otherwise become the output's mode
    try:
        if path.is_dir():
            shutil.copytree(path, staging, dirs_exist_ok=True)
        yield staging
        replace_directory(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_directory(source: Path, target: Path) -> None:
    """Put directory ``source`` at ``target`` (same file system). Where ``target`` exists, the two
    are swapped atomically (Linux ``renameat2(RENAME_EXCHANGE)``) and the old one deleted; where
    the system cannot swap, ``target`` is renamed aside first (a crash between the two renames
    leaves it beside, as ``.NAME.old-*``, never half-replaced)."""
    if not target.exists():
        os.rename(source, target)
        return
    if not _exchange(source, target):
        aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.rename(target, aside / target.name)
        os.rename(source, target)
        source = aside
    shutil.rmtree(source)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with Linux's ``renameat2(..., RENAME_EXCHANGE)``; False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def write_tsv(path: str | os.PathLike, texts: Mapping[str, str]) -> None:
    """Write ``id<TAB>text`` lines; tabs and newlines inside a text are folded to spaces."""
    with atomic_write(path) as handle:
        for key, text in texts.items():
            handle.write(f"{key}\t{' '.join(text.split())}\n")


def write_qrels(path: str | os.PathLike, qrels: Qrels) -> None:
    """Write TREC qrels ``qid 0 pid grade``."""
    with atomic_write(path) as handle:
        for qid, judged in qrels.items():
            for pid, grade in judged.items():
                handle.write(f"{qid} 0 {pid} {grade}\n")


def write_run(path: str | os.PathLike, run: Run, tag: str = "hf-rerank") -> None:
    """Write a TREC run, each query's passages in trec_eval's order (score descending, then
    passage id descending), ranks from 1, scores in full (shortest round-trip form), so that
    trec_eval, hf-rerank and the rank column read the same order back.

    Raises ValueError before writing anything if a score is NaN or infinite."""
    for qid, scored in run.items():
        bad = next((pid for pid, score in scored.items() if not math.isfinite(score)), None)
        if bad is not None:
            raise ValueError(f"{path}: not written: query {qid!r}, passage {bad!r} has score {scored[bad]!r}")
    with atomic_write(path) as handle:
        for qid, scored in run.items():
            for rank, (pid, score) in enumerate(trec_order(scored).items(), start=1):
                handle.write(f"{qid} Q0 {pid} {rank} {float(score)!r} {tag}\n")
