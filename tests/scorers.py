"""A stand-in pair scorer for the reranking and scoring tests: a passage scores its length."""

from __future__ import annotations

import numpy as np


class LengthScorer:
    """Scores each (query, passage) pair by the passage's length (longer is better); records every call
    as ``(queries, passages)`` in :attr:`calls`, and :attr:`pairs` lists the pairs asked for, in order."""

    def __init__(self):
        self.calls = []

    def score_pairs(self, queries, passages, *, batch_size, show_progress):
        self.calls.append((list(queries), list(passages)))
        return np.array([len(p) for p in passages], dtype=np.float32)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [pair for queries, passages in self.calls for pair in zip(queries, passages)]
