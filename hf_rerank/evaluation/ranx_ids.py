"""Passage ids handed to ranx at one fixed width, so that ranx compiles its code once per install.

ranx stores a run's passage ids as a numpy string array as wide as the run's longest id
(``<U7`` for MS MARCO's, ``<U2`` for a toy run) and numba compiles its dict builders and
converters once per width and score type: a few seconds each, on first use of each width in
an installation (numba caches them on disk afterwards). A fresh environment evaluating collections
with different id lengths paid that again and again (21 compilations of one ranx function in this
package's test suite). :class:`RanxIds` gives every passage id a code of exactly :data:`WIDTH`
characters (its position in one vocabulary, zero-padded) before ranx sees it and turns codes
back into the ids afterwards, so ranx always sees one width. Codes preserve equality only;
nothing here or in ranx orders passages by id (ties are moved apart before ranx sorts, see
:func:`~hf_rerank.data.ranking.untie_in_order`).
"""

from __future__ import annotations

from collections.abc import Mapping

#: Characters of every code: up to 10**12 distinct passages.
WIDTH = 12


class RanxIds:
    """One vocabulary of passage ids for the runs and qrels of one ranx call.

    ``encode({qid: {pid: value}}) -> {qid: {code: value}}`` (same queries, values and order;
    a pid seen before keeps its code); ``decode(code) -> pid``.
    """

    def __init__(self) -> None:
        self._codes: dict[str, str] = {}
        self._ids: list[str] = []

    def encode(self, ranking: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
        return {qid: {self._code(pid): value for pid, value in scored.items()} for qid, scored in ranking.items()}

    def decode(self, code: str) -> str:
        return self._ids[int(code)]

    def _code(self, pid: str) -> str:
        code = self._codes.get(pid)
        if code is None:
            code = self._codes[pid] = f"{len(self._ids):0{WIDTH}d}"
            self._ids.append(pid)
        return code
