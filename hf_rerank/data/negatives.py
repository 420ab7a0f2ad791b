"""The negatives file (``negatives.tsv``): hard negatives per query, one ``qid<TAB>pid`` line each.

A query's negatives are on consecutive lines, in the order they were chosen (sampling order for
``hf-rerank mine``, teacher order for ``hf-rerank mine-ce --negatives``). In memory:
``{qid: [pid, ...]}``, queries and pids in file order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hf_rerank.data.formats import DataFormatError, atomic_write, text_lines


def write_negatives(negatives: Mapping[str, list[str]], path: str | Path) -> Path:
    """Write ``negatives`` as ``qid<TAB>pid`` lines (module docstring), atomically; returns ``path``."""
    path = Path(path)
    with atomic_write(path) as handle:
        for qid, pids in negatives.items():
            for pid in pids:
                handle.write(f"{qid}\t{pid}\n")
    return path


def read_negatives(path: str | Path) -> dict[str, list[str]]:
    """Read ``qid<TAB>pid`` lines -> ``{qid: [pid, ...]}`` in file order; blank lines are skipped.

    Errors (:class:`DataFormatError` naming ``PATH:LINE``): not exactly two tab-separated fields,
    an empty id, the same (qid, pid) twice.
    """
    negatives: dict[str, list[str]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, line in text_lines(path):
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != 2:
            raise DataFormatError(
                path, number, f"expected 'qid<TAB>pid', found {len(fields)} tab-separated fields: {line[:80]!r}"
            )
        qid, pid = fields
        if not qid or not pid:
            raise DataFormatError(path, number, f"empty {'query' if not qid else 'passage'} id")
        if (qid, pid) in seen:
            raise DataFormatError(
                path, number, f"duplicate (query {qid!r}, passage {pid!r}): already on line {seen[qid, pid]}"
            )
        seen[qid, pid] = number
        negatives.setdefault(qid, []).append(pid)
    return negatives
