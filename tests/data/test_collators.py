"""CrossEncoderCollator: passage-side truncation, group flattening, dynamic padding, long queries."""

import logging

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.data.examples import GroupExample, PairExample

LONG_PID = "msmarco_passage_08_24643970"
QUERIES = {
    "19335": "anthropological definition of environment",
    "1037798": "who is robert gray",
    "long": " ".join(f"word{i}" for i in range(30)),
}
CORPUS = {
    LONG_PID: (
        "the environment in anthropology is the sum of the physical and social surroundings "
        "in which people live and work"
    ),
    "p1": "robert gray is a poet",
    "p2": "gray",
    "p3": "environment",
}


def decoded(tokenizer, batch):
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in batch["input_ids"]]


def test_pairs_truncate_the_passage_never_the_query(tokenizer):
    collate = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=16)
    batch = collate([PairExample("19335", LONG_PID, 1.0), PairExample("1037798", "p1", 0.0)])
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == (2, 16)
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [1.0, 0.0]
    first = decoded(tokenizer, batch)[0]
    assert first.startswith("anthropological definition of environment the environment in")
    assert not first.endswith("work") and int(batch["attention_mask"][0].sum()) == 16


def test_groups_flatten_row_major(tokenizer):
    collate = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=64)
    groups = [
        GroupExample("19335", (LONG_PID, "p3", "p2"), (1.0, 0.0, 0.0)),
        GroupExample("1037798", ("p1", "p2", "p3"), (3.0, 1.0, 0.0)),
    ]
    batch = collate(groups)
    assert batch["input_ids"].shape[0] == 6
    assert batch["labels"].shape == (2, 3) and batch["labels"].tolist() == [[1.0, 0.0, 0.0], [3.0, 1.0, 0.0]]
    expected = [f"{QUERIES[group.qid]} {CORPUS[pid]}" for group in groups for pid in group.pids]
    assert decoded(tokenizer, batch) == expected


def test_groups_of_different_lengths_are_padded_and_masked_without_encoding_padding(tokenizer):
    collate = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=64)
    groups = [
        GroupExample("19335", (LONG_PID, "p3"), (1.0, 0.0), (0.9, 0.2)),
        GroupExample("1037798", ("p1", "p2", "p3"), (3.0, 1.0, 0.0), (0.8, 0.5, -0.1)),
    ]
    batch = collate(groups)
    assert batch["input_ids"].shape[0] == 5  # real pairs only
    assert decoded(tokenizer, batch) == [f"{QUERIES[g.qid]} {CORPUS[pid]}" for g in groups for pid in g.pids]
    assert batch["mask"].tolist() == [[True, True, False], [True, True, True]]
    assert batch["labels"].tolist() == [[1.0, 0.0, 0.0], [3.0, 1.0, 0.0]]
    assert torch.equal(batch["teacher_scores"], torch.tensor([[0.9, 0.2, 0.0], [0.8, 0.5, -0.1]]))
    row_scores = torch.arange(5, dtype=torch.float32)
    placed = torch.zeros(batch["mask"].shape).masked_scatter(batch["mask"], row_scores)
    assert placed.tolist() == [[0.0, 1.0, 0.0], [2.0, 3.0, 4.0]]  # rows land in their groups' places
    assert "teacher_scores" not in collate([GroupExample("19335", ("p1", "p2"), (1.0, 0.0))])


def test_padding_is_dynamic(tokenizer):
    collate = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=128)
    batch = collate([PairExample("1037798", "p1", 1.0), PairExample("1037798", "p2", 0.0)])
    longest = len(tokenizer("who is robert gray", "robert gray is a poet")["input_ids"])
    assert batch["input_ids"].shape == (2, longest) and longest < 128
    assert batch["attention_mask"].sum(dim=1).tolist() == [longest, longest - 4]
    padded = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=128, pad_to_multiple_of=8)
    assert padded([PairExample("1037798", "p1", 1.0)])["input_ids"].shape == (1, 16)


def test_a_query_too_long_for_max_length_is_truncated_with_one_warning(tokenizer, caplog):
    collate = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=16)
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        batch = collate([PairExample("long", "p1", 1.0), PairExample("19335", LONG_PID, 0.0)])
        collate([PairExample("long", "p2", 1.0)])
    assert caplog.text.count("too long to leave room for a passage") == 1
    assert "query long is 60 tokens" in caplog.text
    assert batch["input_ids"].shape == (2, 16)
    long_row, normal_row = decoded(tokenizer, batch)
    assert long_row.startswith("word0 word1") and long_row.endswith("robert gray is a poet")  # both kept a share
    assert normal_row.startswith("anthropological definition of environment the")  # other rows: passage-only cut


def test_bad_batches(tokenizer):
    collate = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)
    with pytest.raises(ValueError, match="mixes groups with and without teacher scores"):
        collate(
            [
                GroupExample("19335", ("p1", "p2"), (1.0, 0.0), (0.3, 0.1)),
                GroupExample("19335", ("p1", "p2"), (1.0, 0.0)),
            ]
        )
    with pytest.raises(TypeError, match="all PairExample or all GroupExample"):
        collate([PairExample("19335", "p1", 1.0), GroupExample("19335", ("p1", "p2"), (1.0, 0.0))])
    with pytest.raises(KeyError, match="passage 'absent' has no text"):
        collate([PairExample("19335", "absent", 1.0)])
    with pytest.raises(ValueError, match="max_length"):
        CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=4)


def test_batch_feeds_a_sequence_classification_model(tokenizer, tiny_cross_encoder_dir):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder_dir)
    batch = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)(
        [PairExample("19335", LONG_PID, 1.0), PairExample("1037798", "p2", 0.0)]
    )
    output = model(**batch)
    assert output.logits.shape == (2, 1) and output.loss is not None


# --------------------------------------------------------------------------- bi-encoder batches
from hf_rerank.data.collators import BiEncoderCollator  # noqa: E402
from hf_rerank.data.examples import TripletExample  # noqa: E402


def field_texts(tokenizer, batch, field):
    """The decoded texts of ``field``, example by example, wherever the chunks put them."""
    rows = [row for chunk in batch["chunks"] for row in decoded(tokenizer, chunk)]
    return [rows[i] for i in batch["rows"][field].tolist()]


def test_bi_encoder_collator_fields_rows_and_truncation(tokenizer):
    collator = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=8)
    batch = collator([TripletExample("19335", LONG_PID, "p2"), TripletExample("1037798", "p1", "p3")])
    assert set(batch) == {"chunks", "rows"} and set(batch["rows"]) == {"query", "positive", "negative"}
    assert len(batch["chunks"]) == 3  # one per field
    assert field_texts(tokenizer, batch, "query") == ["anthropological definition of environment", "who is robert gray"]
    assert field_texts(tokenizer, batch, "negative") == ["gray", "environment"]
    assert batch["chunks"][1]["input_ids"].shape == (2, 8)  # the positives: the long passage is cut to max_length
    assert batch["chunks"][2]["attention_mask"].sum(dim=1).tolist() == [3, 3]  # [CLS] word [SEP], padding excluded
    without = collator([TripletExample("19335", LONG_PID), TripletExample("1037798", "p1")])
    assert set(without["rows"]) == {"query", "positive"} and len(without["chunks"]) == 2


def test_bi_encoder_collator_chunks_by_length_with_the_same_rows(tokenizer):
    examples = [TripletExample("19335", LONG_PID, "p2"), TripletExample("1037798", "p1", "p3")]
    plain = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)(examples)
    chunked = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32, chunk_overhead_tokens=2)(examples)
    for field in ("query", "positive", "negative"):
        assert field_texts(tokenizer, chunked, field) == field_texts(tokenizer, plain, field)
    lengths = [chunk["attention_mask"].sum(dim=1).tolist() for chunk in chunked["chunks"]]
    padded = sum(chunk["attention_mask"].numel() for chunk in chunked["chunks"])
    assert sorted(n for chunk in lengths for n in chunk) == sorted(
        n for chunk in plain["chunks"] for n in chunk["attention_mask"].sum(dim=1).tolist()
    )
    assert padded < sum(chunk["attention_mask"].numel() for chunk in plain["chunks"])
    one = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32, chunk_overhead_tokens=10_000)(examples)
    assert len(one["chunks"]) == 1  # a forward pass costing more than any padding: everything in one chunk


def test_length_chunks_minimise_padding_plus_overhead():
    from hf_rerank.data.collators import length_chunks

    lengths = [10, 3, 11, 4, 50, 3]
    assert length_chunks(lengths, overhead_tokens=0) == [[1, 5], [3], [0], [2], [4]]  # no overhead: no padding
    assert length_chunks(lengths, overhead_tokens=10_000) == [[1, 5, 3, 0, 2, 4]]
    # overhead 20: {3,3,4} 12 + {10,11} 22 + {50} 50 = 84 + 60 beats e.g. {3,3,4,10,11} 55 + 50 + 40 = 145
    assert length_chunks(lengths, overhead_tokens=20) == [[1, 5, 3], [0, 2], [4]]

    def cost(chunks, overhead):
        return sum(len(c) * max(lengths[i] for i in c) + overhead for c in chunks)

    import itertools

    order = [1, 5, 3, 0, 2, 4]  # by length
    for overhead in (0, 5, 20, 60):
        best = min(
            cost([order[a:b] for a, b in zip((0, *cuts), (*cuts, 6))], overhead)
            for k in range(6)
            for cuts in itertools.combinations(range(1, 6), k)
        )
        assert cost(length_chunks(lengths, overhead), overhead) == best  # exhaustive check


def test_bi_encoder_collator_rejects_mixed_and_unknown(tokenizer):
    collator = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=16)
    with pytest.raises(ValueError, match="mixes examples with and without negatives"):
        collator([TripletExample("19335", "p1", "p2"), TripletExample("19335", "p1")])
    with pytest.raises(KeyError, match="passage 'nope' has no text"):
        collator([TripletExample("19335", "nope")])
    with pytest.raises(TypeError, match="TripletExample"):
        collator([PairExample("19335", "p1", 1.0)])


# --------------------------------------------------------------------------- bi-encoder lists (distillation)
def test_bi_encoder_collator_lists_of_different_lengths_are_padded_and_masked(tokenizer):
    groups = [
        GroupExample("19335", (LONG_PID, "p3"), (1.0, 0.0), (0.9, 0.2)),
        GroupExample("1037798", ("p1", "p2", "p3"), (3.0, 1.0, 0.0), (0.8, 0.5, -0.1)),
    ]
    batch = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)(groups)
    assert set(batch) == {"chunks", "rows", "mask", "labels", "teacher_scores"}
    assert set(batch["rows"]) == {"query", "passages"} and BiEncoderCollator.examples_in(batch) == 2
    assert len(batch["chunks"]) == 2 and batch["chunks"][0]["input_ids"].shape[0] == 2  # each query once
    assert batch["chunks"][1]["input_ids"].shape[0] == 5  # real passages only, list after list
    assert field_texts(tokenizer, batch, "query") == [QUERIES["19335"], QUERIES["1037798"]]
    assert field_texts(tokenizer, batch, "passages") == [CORPUS[pid] for group in groups for pid in group.pids]
    assert batch["mask"].tolist() == [[True, True, False], [True, True, True]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [[1.0, 0.0, 0.0], [3.0, 1.0, 0.0]]
    assert torch.equal(batch["teacher_scores"], torch.tensor([[0.9, 0.2, 0.0], [0.8, 0.5, -0.1]]))
    without_teacher = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)(
        [GroupExample("19335", ("p1", "p2"), (1.0, 0.0))]
    )
    assert "teacher_scores" not in without_teacher and without_teacher["mask"].shape == (1, 2)


def test_bi_encoder_collator_chunks_lists_by_length_with_the_same_rows(tokenizer):
    groups = [
        GroupExample("19335", (LONG_PID, "p3"), (1.0, 0.0), (0.9, 0.2)),
        GroupExample("1037798", ("p1", "p2", "p3"), (3.0, 1.0, 0.0), (0.8, 0.5, -0.1)),
    ]
    plain = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)(groups)
    chunked = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32, chunk_overhead_tokens=2)(groups)
    for field in ("query", "passages"):
        assert field_texts(tokenizer, chunked, field) == field_texts(tokenizer, plain, field)
    assert sum(chunk["attention_mask"].numel() for chunk in chunked["chunks"]) < sum(
        chunk["attention_mask"].numel() for chunk in plain["chunks"]
    )
    for key in ("mask", "labels", "teacher_scores"):
        assert torch.equal(chunked[key], plain[key])


def test_bi_encoder_collator_rejects_mixed_lists(tokenizer):
    collator = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=16)
    with pytest.raises(ValueError, match="mixes groups with and without teacher scores"):
        collator(
            [
                GroupExample("19335", ("p1", "p2"), (1.0, 0.0), (0.3, 0.1)),
                GroupExample("19335", ("p1", "p2"), (1.0, 0.0)),
            ]
        )
    with pytest.raises(TypeError, match="all TripletExample or all GroupExample"):
        collator([TripletExample("19335", "p1"), GroupExample("19335", ("p1", "p2"), (1.0, 0.0))])
