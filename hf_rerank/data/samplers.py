"""Length-bucketed sampling for training, so batches pad little.

A batch of cross-encoder rows is padded to its longest row; batching examples of similar length
wastes less compute on padding than a random permutation does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import Sampler

from hf_rerank.data.examples import GroupExample, PairExample
from hf_rerank.errors import DataError, UsageError


class LengthBucketSampler(Sampler[int]):
    """A per-example sampler (a ``Trainer`` train sampler) that yields similar lengths together.

    Each epoch, seeded by ``seed + epoch`` (call :meth:`set_epoch`; the ``Trainer`` does):

    1. shuffle all indices;
    2. cut them into mega-batches of ``batch_size * mega_batch_factor`` and sort each by length,
       longest first;
    3. cut the result into batches of ``batch_size`` and shuffle the batch order, except that the
       batch holding the longest example goes first (an out-of-memory error shows at step one)
       and the one short batch, if ``len(lengths)`` is not a multiple of ``batch_size``, goes
       last (so the ``DataLoader``'s consecutive ``batch_size`` chunks are exactly these batches).
       If the longest example is in that short batch, the longest full batch goes first.

    The order depends only on ``lengths``, ``batch_size``, ``seed`` and the epoch, so every
    process agrees on it and a resumed run replays it exactly.

    One index is one dataset item, that is one whole example: a :class:`GroupExample` (a
    positive and its negatives) is one item, so when accelerate splits batches across processes
    under DDP, a group is never split; each process gets whole batches of whole examples.

    Args:
        lengths: one length per dataset item (e.g. from :func:`example_lengths`).
        batch_size: the per-device batch size of the ``DataLoader`` this sampler feeds.
        seed: base seed.
        mega_batch_factor: batches per mega-batch: larger sorts more globally (less padding),
            smaller keeps more randomness.
    Yields:
        each index in ``range(len(lengths))`` exactly once per epoch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, mega_batch_factor: int = 50):
        if batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        if mega_batch_factor < 1:
            raise UsageError(f"mega_batch_factor must be >= 1, got {mega_batch_factor}")
        super().__init__()
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.mega_batch_factor = mega_batch_factor
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths))
        mega = self.batch_size * self.mega_batch_factor
        batches = []
        for start in range(0, len(order), mega):
            chunk = order[start : start + mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        # A mega-batch is a whole number of batches, so only the very last batch can be short.
        short = batches.pop() if batches and len(batches[-1]) < self.batch_size else None
        if batches:
            longest = int(np.argmax([self.lengths[batch].max() for batch in batches]))
            first = batches.pop(longest)
            rest = [batches[i] for i in rng.permutation(len(batches))]
            batches = [first, *rest]
        if short is not None:
            batches.append(short)
        for batch in batches:
            yield from (int(index) for index in batch)


def example_lengths(
    examples: Sequence[PairExample | GroupExample],
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    tokenizer=None,
) -> list[int]:
    """A cheap length per example for :class:`LengthBucketSampler`.

    Args:
        examples: pairs or groups.
        queries, corpus: ``{id: text}``.
        tokenizer: if given, lengths count its tokens (no special tokens, untruncated);
            otherwise whitespace-separated words.
    Returns:
        per example, the length of its longest (query, passage) row: query + passage for a
        pair; query + its longest passage for a group (a batch pads every row to its longest).
    """
    qids = {example.qid for example in examples}
    pids = {
        pid for example in examples for pid in ((example.pid,) if isinstance(example, PairExample) else example.pids)
    }
    query_length = _text_lengths(queries, qids, tokenizer)
    passage_length = _text_lengths(corpus, pids, tokenizer)
    return [
        query_length[example.qid]
        + (
            passage_length[example.pid]
            if isinstance(example, PairExample)
            else max(passage_length[p] for p in example.pids)
        )
        for example in examples
    ]


def _text_lengths(texts: Mapping[str, str], keys: set[str], tokenizer) -> dict[str, int]:
    keys = sorted(keys)
    if tokenizer is None:
        return {key: len(texts[key].split()) for key in keys}
    encoded = tokenizer([texts[key] for key in keys], add_special_tokens=False)["input_ids"] if keys else []
    return {key: len(ids) for key, ids in zip(keys, encoded)}


class NoDuplicateQuerySampler(Sampler[int]):
    """A per-example sampler whose consecutive ``batch_size`` chunks never repeat a query.

    For in-batch-negative losses: two examples of one query in a batch would make each one's
    positive a false negative of the other. Each epoch (seeded by ``seed + epoch``):

    1. batch b takes one example of each of the ``batch_size`` queries with the most examples
       left (ties broken at random), until fewer than ``batch_size`` queries have examples left;
       those leftovers are not used this epoch;
    2. which of its examples a query gives to each of its batches: without ``lengths``, the next
       of its examples in a shuffled queue; with ``lengths``, batch b of B targets the
       (b + 1/2) / B quantile of all lengths and each query gives it its example of about that
       length (in length order across its batches, ties at random), so the texts of a batch have
       similar lengths and pad less (DL20 positives, batch 32: 36% padding instead of 50%);
    3. the batch order is shuffled.

    Taking the queries with the most left first makes as many full batches as the per-query
    counts allow, and their number depends only on those counts, so :meth:`__len__` is the same
    every epoch (the ``Trainer`` plans its steps from it). :attr:`dropped` says how many
    examples an epoch leaves out (e.g. a query with more positives than there are batches).

    Args:
        qids: the query of each dataset item.
        batch_size: the per-device batch size of the ``DataLoader`` this sampler feeds.
        seed: base seed.
        lengths: optional length of each item (e.g. its passage's tokens) for step 2.
    Yields:
        ``len(self)`` distinct indices, a multiple of ``batch_size``.
    """

    def __init__(self, qids: Sequence[str], batch_size: int, seed: int, lengths: Sequence[int] | None = None):
        if batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        super().__init__()
        self.by_query: dict[str, list[int]] = {}
        for index, qid in enumerate(qids):
            self.by_query.setdefault(qid, []).append(index)
        if len(self.by_query) < batch_size:
            raise DataError(
                f"batches of {batch_size} distinct queries need at least {batch_size} queries, "
                f"the data has {len(self.by_query)}"
            )
        if lengths is not None and len(lengths) != len(qids):
            raise ValueError(f"{len(lengths)} lengths for {len(qids)} items")
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self.batches = self._count_batches([len(indices) for indices in self.by_query.values()])
        self.dropped = len(qids) - self.batches * batch_size

    def _count_batches(self, counts: list[int]) -> int:
        counts, batches = sorted(counts, reverse=True), 0
        while len(counts) >= self.batch_size and counts[self.batch_size - 1] > 0:
            counts = sorted(
                [count - 1 for count in counts[: self.batch_size]] + counts[self.batch_size :], reverse=True
            )
            batches += 1
        return batches

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed + self.epoch)
        groups = list(self.by_query.values())
        left = [len(indices) for indices in groups]
        batch_of_query: list[list[int]] = [[] for _ in groups]  # the batches each query is in, ascending
        batches: list[list[int]] = []
        for b in range(self.batches):
            tie_break = rng.random(len(groups))
            chosen = sorted(range(len(groups)), key=lambda q: (-left[q], tie_break[q]))[: self.batch_size]
            for q in chosen:
                left[q] -= 1
                batch_of_query[q].append(b)
            batches.append([])
        for q, indices in enumerate(groups):
            for b, index in zip(batch_of_query[q], self._pick(np.asarray(indices), batch_of_query[q], rng)):
                batches[b].append(int(index))
        for position in rng.permutation(len(batches)):
            yield from batches[position]

    def _pick(self, indices: np.ndarray, batches: list[int], rng: np.random.Generator) -> np.ndarray:
        """One of ``indices`` (a query's items) per batch in ``batches`` (ascending): see step 2."""
        shuffled = rng.permutation(indices)
        if self.lengths is None:
            return shuffled[: len(batches)]
        by_length = shuffled[np.argsort(self.lengths[shuffled], kind="stable")]
        count, wanted = len(by_length), len(batches)
        targets = np.quantile(self.lengths, [(b + 0.5) / self.batches for b in batches])
        positions = np.searchsorted(self.lengths[by_length], targets).tolist()
        for j in range(1, wanted):  # strictly increasing ...
            positions[j] = max(positions[j], positions[j - 1] + 1)
        for j in range(wanted - 1, -1, -1):  # ... and within range
            positions[j] = min(positions[j], count - wanted + j, positions[j + 1] - 1 if j + 1 < wanted else count - 1)
        return by_length[positions]
