"""Batch collation for training: examples (ids) -> tokenised, dynamically padded tensors.

The collator is the one place where training text is tokenised.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from hf_rerank.data.examples import GroupExample, PairExample, TripletExample
from hf_rerank.errors import UnknownNameError, UsageError

logger = logging.getLogger("hf_rerank")


@dataclass
class CrossEncoderCollator:
    """Turn a list of :class:`PairExample` or of :class:`GroupExample` into a cross-encoder batch.

    Usable as a Hugging Face ``Trainer`` ``data_collator``.

    Each row is ``[CLS] query [SEP] passage [SEP]`` cut to ``max_length`` tokens on the passage,
    never the query. A query so long that not one passage token would fit beside it is the
    exception: its rows are truncated ``longest_first`` (the query is cut until the passage,
    cut too if needed, gets an equal share), with a warning the first time.

    Args:
        tokenizer: the model's tokenizer.
        queries: ``{qid: text}``.
        corpus: ``{pid: text}``.
        max_length: tokens per row, special tokens included.
        pad_to_multiple_of: pad the batch's length up to a multiple of this (e.g. 8 for tensor
            cores); ``None`` pads to the longest row only.
    Returns (``__call__``):
        the tokenizer's model inputs (``input_ids``, ``attention_mask``, and ``token_type_ids``
        where the model has them), ``(rows, length)``, padded to the batch's longest row, plus
        float32 ``labels``: ``(B,)`` for B pairs. For B groups, ``G`` is the longest group's size:
        the rows are each group's real pairs in order, group after group (no padded pairs are
        encoded), ``labels`` is ``(B, G)``, ``mask`` (bool, ``(B, G)``) marks the real positions
        (``scores.masked_scatter(mask, row_scores)`` puts row scores in place), and where the
        groups carry teacher scores ``teacher_scores`` is ``(B, G)`` float32. Padded positions of
        ``labels`` and ``teacher_scores`` are 0.
    """

    tokenizer: PreTrainedTokenizerBase
    queries: Mapping[str, str]
    corpus: Mapping[str, str]
    max_length: int
    pad_to_multiple_of: int | None = None
    _query_lengths: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _warned_long_query: bool = field(default=False, init=False, repr=False)

    def __post_init__(self):
        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        if self.max_length < specials + 2:
            raise UsageError(
                f"max_length must hold {specials} special tokens plus a query and a passage token, "
                f"got {self.max_length}"
            )

    def __call__(self, examples: Sequence[PairExample | GroupExample]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        if all(isinstance(example, PairExample) for example in examples):
            qids = [example.qid for example in examples]
            pids = [example.pid for example in examples]
            labels = torch.tensor([example.label for example in examples], dtype=torch.float32)
        elif all(isinstance(example, GroupExample) for example in examples):
            return self._collate_groups(examples)
        else:
            kinds = sorted({type(example).__name__ for example in examples})
            raise TypeError(f"a batch must be all PairExample or all GroupExample, got {', '.join(kinds)}")
        return {**self._pad(self._encode(qids, pids)), "labels": labels}

    def _collate_groups(self, groups: Sequence[GroupExample]) -> dict[str, torch.Tensor]:
        qids = [group.qid for group in groups for _ in group.pids]
        pids = [pid for group in groups for pid in group.pids]
        return {**self._pad(self._encode(qids, pids)), **list_targets(groups)}

    def _pad(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        return dict(
            self.tokenizer.pad(features, padding=True, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt")
        )

    def _encode(self, qids: list[str], pids: list[str]) -> list[dict[str, list[int]]]:
        """Token lists per row, unpadded (:func:`encode_pairs`), warning once about overlong queries."""
        queries = [_text(self.queries, qid, "query") for qid in qids]
        rows, overlong = encode_pairs(
            self.tokenizer,
            queries,
            [_text(self.corpus, pid, "passage") for pid in pids],
            self.max_length,
            self._query_lengths,
        )
        if overlong and not self._warned_long_query:
            first = overlong[0]
            logger.warning(
                "query %s is %d tokens, too long to leave room for a passage in max_length=%d; such queries are "
                "truncated along with their passages (warned once)",
                qids[first],
                self._query_lengths[queries[first]],
                self.max_length,
            )
            self._warned_long_query = True
        return rows


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    queries: Sequence[str],
    passages: Sequence[str],
    max_length: int,
    query_lengths: dict[str, int] | None = None,
) -> tuple[list[dict[str, list[int]]], list[int]]:
    """Token lists of ``[CLS] query [SEP] passage [SEP]`` rows, unpadded, for training and scoring alike.

    The passage is cut to fit ``max_length``, never the query; a query so long that not one
    passage token would fit beside it is the exception: its rows are truncated ``longest_first``
    (the query is cut until the passage, cut too if needed, gets an equal share).

    Args:
        query_lengths: a cache ``{query text: tokens without special tokens}``, filled as needed.
    Returns:
        the rows (``input_ids``, ``attention_mask``, ``token_type_ids`` where the model has them),
        and the indices of the rows whose query was too long.
    """
    lengths = {} if query_lengths is None else query_lengths
    for text in set(queries) - lengths.keys():
        lengths[text] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    overlong = [lengths[text] >= room for text in queries]
    rows: list[dict[str, list[int]]] = [{} for _ in queries]
    for strategy, selected in (("only_second", False), ("longest_first", True)):
        indices = [i for i, flag in enumerate(overlong) if flag is selected]
        if not indices:
            continue
        encoded = tokenizer(
            [queries[i] for i in indices], [passages[i] for i in indices], truncation=strategy, max_length=max_length
        )
        for position, i in enumerate(indices):
            rows[i] = {key: values[position] for key, values in encoded.items()}
    return rows, [i for i, flag in enumerate(overlong) if flag]


def length_chunks(lengths: Sequence[int], overhead_tokens: int) -> list[list[int]]:
    """Split texts into chunks, each to be padded to its own longest text, at the least cost.

    Args:
        lengths: tokens per text.
        overhead_tokens: the cost of one more chunk (one more forward pass), in padded tokens.
    Returns:
        chunks of indices into ``lengths`` covering each index once, each chunk a run of the
        texts sorted by length (shortest first): the partition minimising ``sum(len(chunk) *
        longest in chunk) + overhead_tokens * chunks`` (exact, dynamic programming over the sorted
        lengths).
    """
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    sorted_lengths = np.asarray(lengths, dtype=np.int64)[order]
    n = len(order)
    best = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):  # best[end]: cheapest split of the `end` shortest texts
        costs = best[:end] + (end - np.arange(end)) * sorted_lengths[end - 1] + overhead_tokens
        cut[end] = int(np.argmin(costs))
        best[end] = costs[cut[end]]
    chunks, end = [], n
    while end > 0:
        chunks.append(order[cut[end] : end].tolist())
        end = int(cut[end])
    return chunks[::-1]


@dataclass
class BiEncoderCollator:
    """Turn a list of :class:`TripletExample`, or of :class:`GroupExample`, into a bi-encoder batch:
    every text tokenised on its own.

    Usable as a Hugging Face ``Trainer`` ``data_collator``.

    Args:
        tokenizer: the encoder's tokenizer.
        queries: ``{qid: text}``.
        corpus: ``{pid: text}``.
        max_length: tokens per text, special tokens included (longer texts are truncated).
        chunk_overhead_tokens: ``None``: one chunk per field (queries, positives, negatives; or
            queries, passages), each padded to its longest text. A number: all the batch's texts
            are split jointly into chunks of similar length (:func:`length_chunks` with this cost
            per chunk), so much less padding is encoded; the embeddings are the same.
    Returns (``__call__``):
        ``{"chunks": [inputs, ...], "rows": {field: (n,) int64}, ...}``: ``inputs`` are the
        tokenizer's model inputs ``(rows, length)`` of one chunk, padded to its longest text;
        ``rows[field]`` says where that field's texts are in the chunks' rows concatenated in
        order. For B triplets: ``rows`` has ``"query"``, ``"positive"`` (and ``"negative"`` when the
        examples have negatives; all or none of them must), each ``(B,)``, entry i from example i.
        For B groups, with ``G`` the longest list and ``R`` the lists' passages in all: ``rows``
        has ``"query"`` ``(B,)`` (each list's query encoded once) and ``"passages"`` ``(R,)``
        (each list's passages in order, list after list; no padded passage is encoded), and the
        batch has :func:`list_targets`' ``mask``, ``labels`` and, where the groups carry teacher
        scores, ``teacher_scores``, each ``(B, G)``.
    """

    tokenizer: PreTrainedTokenizerBase
    queries: Mapping[str, str]
    corpus: Mapping[str, str]
    max_length: int
    chunk_overhead_tokens: int | None = None

    def __call__(self, examples: Sequence[TripletExample | GroupExample]) -> dict:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        if all(isinstance(example, GroupExample) for example in examples):
            fields = {
                "query": [_text(self.queries, group.qid, "query") for group in examples],
                "passages": [_text(self.corpus, pid, "passage") for group in examples for pid in group.pids],
            }
            return {**self._encode(fields), **list_targets(examples)}
        if not all(isinstance(example, TripletExample) for example in examples):
            kinds = sorted({type(example).__name__ for example in examples})
            raise TypeError(
                f"a bi-encoder batch must be all TripletExample or all GroupExample, got {', '.join(kinds)}"
            )
        with_negative = [example.negative is not None for example in examples]
        if any(with_negative) and not all(with_negative):
            raise ValueError("a batch mixes examples with and without negatives")
        fields = {
            "query": [_text(self.queries, example.qid, "query") for example in examples],
            "positive": [_text(self.corpus, example.positive, "passage") for example in examples],
        }
        if all(with_negative):
            fields["negative"] = [_text(self.corpus, example.negative, "passage") for example in examples]
        return self._encode(fields)

    def _encode(self, fields: dict[str, list[str]]) -> dict:
        """``{"chunks", "rows"}`` (see the class docstring) for the texts of each field."""
        texts = [text for field_texts in fields.values() for text in field_texts]
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        features = [dict(zip(encoded.keys(), values)) for values in zip(*encoded.values())]
        ends = np.cumsum([len(field_texts) for field_texts in fields.values()]).tolist()
        starts = [0, *ends[:-1]]
        if self.chunk_overhead_tokens is None:
            chunks = [list(range(start, end)) for start, end in zip(starts, ends)]
        else:
            chunks = length_chunks([len(feature["input_ids"]) for feature in features], self.chunk_overhead_tokens)
        position = torch.empty(len(texts), dtype=torch.int64)
        position[torch.tensor([i for chunk in chunks for i in chunk])] = torch.arange(len(texts))
        return {
            "chunks": [
                dict(self.tokenizer.pad([features[i] for i in chunk], padding=True, return_tensors="pt"))
                for chunk in chunks
            ],
            "rows": {name: position[start:end] for name, start, end in zip(fields, starts, ends)},
        }

    @staticmethod
    def examples_in(batch: dict) -> int:
        """The number of examples in a ``batch`` this collator made."""
        return len(batch["rows"]["query"])


def list_targets(groups: Sequence[GroupExample]) -> dict[str, torch.Tensor]:
    """The targets of a batch of B lists padded to the longest, ``G`` candidates.

    Returns:
        ``mask`` (bool ``(B, G)``, the real candidates: ``scores.masked_scatter(mask, per_candidate)``
        puts per-candidate scores, list after list, in place), ``labels`` (float32 ``(B, G)``) and,
        when the groups carry teacher scores, ``teacher_scores`` (float32 ``(B, G)``); padded
        positions are 0. Raises ``ValueError`` when only some groups carry teacher scores.
    """
    with_teacher = [group.teacher is not None for group in groups]
    if any(with_teacher) and not all(with_teacher):
        raise ValueError("a batch mixes groups with and without teacher scores")
    size = max(len(group.pids) for group in groups)
    mask = torch.tensor([[i < len(group.pids) for i in range(size)] for group in groups])
    labels = torch.zeros(mask.shape, dtype=torch.float32)
    labels[mask] = torch.tensor([label for group in groups for label in group.labels], dtype=torch.float32)
    targets = {"mask": mask, "labels": labels}
    if all(with_teacher):
        teacher = torch.zeros(mask.shape, dtype=torch.float32)
        teacher[mask] = torch.tensor([score for group in groups for score in group.teacher], dtype=torch.float32)
        targets["teacher_scores"] = teacher
    return targets


def _text(texts: Mapping[str, str], key: str, kind: str) -> str:
    try:
        return texts[key]
    except KeyError:
        raise UnknownNameError(f"{kind} {key!r} has no text") from None
