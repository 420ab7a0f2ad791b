"""Distilling embedding models: score losses on cosine scores of a teacher's lists.

Equivalence with sentence-transformers' bi-encoder ``DistillKLDivLoss`` and ``MarginMSELoss`` on
random embeddings; training on a tiny random BERT; the refusals; a tiny ``train_embedding`` run
with ``--teacher`` on the bundled sample.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModel

from hf_rerank.data.collators import BiEncoderCollator
from hf_rerank.data.examples import GroupExample, TripletExample
from hf_rerank.losses import build_loss
from hf_rerank.training.arguments import EmbeddingTrainingArguments
from hf_rerank.training.embedding import EmbeddingTrainer, list_cosine_scores
from hf_rerank.training.run_embedding import EmbeddingDataArguments, EmbeddingModelArguments, train_embedding
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

BATCH, WAYS, DIM = 6, 4, 16  # 6 queries, each with a positive and 3 negatives


def random_columns(seed: int):
    """sentence-transformers' columns ``[queries, positives, negative_1, ...]`` (each (B, d)) and
    the teacher's scores ``(B, WAYS)`` of a spread like a cross-encoder's logits."""
    generator = torch.Generator().manual_seed(seed)
    columns = [torch.randn(BATCH, DIM, generator=generator).requires_grad_() for _ in range(WAYS + 1)]
    teacher = 3 * torch.randn(BATCH, WAYS, generator=generator)
    return columns, teacher


def our_scores(columns):
    """Our (B, G) cosine matrix from the same columns, through the trainer's own function."""
    queries, passages = columns[0], torch.stack(columns[1:], dim=1)  # (B, G, d)
    mask = torch.ones(BATCH, WAYS, dtype=torch.bool)
    return list_cosine_scores(queries, passages.reshape(-1, DIM), mask), mask


@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.05])
def test_kl_on_cosine_scores_equals_sentence_transformers_distill_kl_div(temperature):
    from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss
    from sentence_transformers.util import pairwise_cos_sim

    columns, teacher = random_columns(0)
    theirs = DistillKLDivLoss(None, similarity_fct=pairwise_cos_sim, temperature=temperature)
    expected = theirs.compute_loss_from_embeddings(columns, teacher)
    expected_grads = torch.autograd.grad(expected, columns)
    scores, mask = our_scores(columns)
    ours = build_loss("kl", temperature=temperature)(scores, teacher, mask)
    grads = torch.autograd.grad(ours, columns)
    print(
        f"kl T={temperature}: ours {ours.item():.8f} sentence-transformers {expected.item():.8f} "
        f"|diff| {abs(ours.item() - expected.item()):.2e}"
    )
    assert ours.item() == pytest.approx(expected.item(), abs=1e-5, rel=1e-5)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=1e-4)


def test_margin_mse_on_cosine_scores_equals_sentence_transformers_margin_mse():
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss
    from sentence_transformers.util import pairwise_cos_sim

    columns, teacher = random_columns(1)
    theirs = MarginMSELoss(None, similarity_fct=pairwise_cos_sim)
    # it takes the teacher's scores (B, 1 + negatives) or their margins t_pos - t_neg (B, negatives)
    from_scores = theirs.compute_loss_from_embeddings(columns, teacher)
    from_margins = theirs.compute_loss_from_embeddings(columns, teacher[:, :1] - teacher[:, 1:])
    scores, mask = our_scores(columns)
    ours = build_loss("margin_mse")(scores, teacher, mask)
    print(
        f"margin_mse: ours {ours.item():.8f} sentence-transformers {from_scores.item():.8f} (scores), "
        f"{from_margins.item():.8f} (margins) |diff| {abs(ours.item() - from_scores.item()):.2e}"
    )
    assert ours.item() == pytest.approx(from_scores.item(), abs=1e-5, rel=1e-5)
    assert ours.item() == pytest.approx(from_margins.item(), abs=1e-5, rel=1e-5)
    grads = torch.autograd.grad(ours, columns)
    for grad, expected in zip(grads, torch.autograd.grad(from_scores, columns)):
        torch.testing.assert_close(grad, expected, atol=1e-5, rtol=1e-4)


def test_a_padded_list_scores_as_the_list_alone():
    columns, teacher = random_columns(2)
    queries, passages = columns[0], torch.stack(columns[1:], dim=1)
    mask = torch.ones(BATCH, WAYS, dtype=torch.bool)
    mask[0, 2:] = False  # list 0 has its positive and one negative only
    scores = list_cosine_scores(queries, passages[mask], mask)
    assert scores.shape == (BATCH, WAYS) and scores[0, 2:].tolist() == [0.0, 0.0]
    full, _ = our_scores(columns)
    torch.testing.assert_close(scores[mask], full[mask])
    kl = build_loss("kl", temperature=0.1)
    batch = kl(scores, teacher, mask)
    per_list = [
        kl(full[b : b + 1, : int(mask[b].sum())], teacher[b : b + 1, : int(mask[b].sum())]) for b in range(BATCH)
    ]
    assert batch.item() == pytest.approx(torch.stack(per_list).mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="5 passages for a mask of 22 real candidates"):
        list_cosine_scores(queries, passages[mask][:5], mask)


QUERIES = {"q1": "what do bees make", "q2": "who wrote hamlet", "q3": "how tall is the tallest mountain on earth"}
CORPUS = {
    "p1": "bees make honey from the nectar of flowers they visit",
    "p2": "shakespeare wrote hamlet",
    "p3": "mount everest is 8849 metres tall",
    "n1": "rain",
    "n2": "the sea is blue and deep and wide",
    "n3": "honey is sweet",
    "n4": "a play about a danish prince",
}
LISTS = [
    GroupExample("q1", ("p1", "n3", "n1", "n2"), (1.0, 0.0, 0.0, 0.0), (9.0, 4.0, -2.0, -5.0)),
    GroupExample("q2", ("p2", "n4", "n2"), (1.0, 1.0, 0.0), (8.0, 6.5, -4.0)),
    GroupExample("q3", ("p3", "n1"), (1.0, 0.0), (7.0, -1.0)),
]


def tiny_trainer(tmp_path, tokenizer, **overrides) -> EmbeddingTrainer:
    torch.manual_seed(0)
    model = AutoModel.from_config(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    args = EmbeddingTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", max_length=32, efficiency_metrics=False, **overrides
    )
    return EmbeddingTrainer(model=model, args=args, processing_class=tokenizer, pooling="mean", normalize=True)


@pytest.mark.parametrize("loss, options", [("kl", {"loss_temperature": 0.1}), ("margin_mse", {"loss_scale": 0.1})])
def test_training_on_a_fixed_batch_reduces_the_loss(tmp_path, tokenizer, loss, options):
    trainer = tiny_trainer(tmp_path, tokenizer, loss=loss, **options)
    batch = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32, chunk_overhead_tokens=4)(LISTS)
    optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        value, outputs = trainer.compute_loss(trainer.model, batch, return_outputs=True)
        value.backward()
        optimizer.step()
        losses.append(value.item())
    assert outputs["scores"].shape == (3, 4) and outputs["scores"][2, 2:].tolist() == [0.0, 0.0]
    print(f"{loss}: {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[-1] < 0.5 * losses[0]


def test_losses_refuse_the_wrong_batches(tmp_path, tokenizer):
    collator = BiEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)
    triplets = collator([TripletExample("q1", "p1", "n1"), TripletExample("q2", "p2", "n2")])
    kl = tiny_trainer(tmp_path, tokenizer, loss="kl")
    with pytest.raises(ValueError, match="the data gave triplets: give --teacher"):
        kl.compute_loss(kl.model, triplets)
    unscored = collator([GroupExample("q1", ("p1", "n1"), (1.0, 0.0)), GroupExample("q2", ("p2", "n2"), (1.0, 0.0))])
    with pytest.raises(ValueError, match="learns from a teacher's scores; the data has none"):
        kl.compute_loss(kl.model, unscored)
    listnet = tiny_trainer(tmp_path, tokenizer, loss="listnet")
    assert listnet.compute_loss(listnet.model, unscored).item() > 0  # grades are enough for a label loss
    mnrl = tiny_trainer(tmp_path, tokenizer, loss="mnrl")
    with pytest.raises(ValueError, match="trains on triplets; the data gave lists"):
        mnrl.compute_loss(mnrl.model, collator(LISTS))


def test_arguments_accept_the_registry_and_refuse_what_does_not_fit(tmp_path):
    def make(**overrides):
        return EmbeddingTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **overrides)

    for loss in (
        "mnrl",
        "triplet",
        "kl",
        "margin_mse",
        "mse",
        "listnet",
        "lambdaloss",
        "listwise",
        "ranknet",
        "margin",
    ):
        assert make(loss=loss).loss == loss
    assert make(loss="kl", loss_temperature=0.05).loss_options() == {"temperature": 0.05}
    assert (
        make(loss="lambdaloss", loss_gain="exponential", loss_k=5).build_score_loss().describe()
        == "lambdaloss(gain=exponential, k=5, sigma=1.0, mu=10.0)"
    )
    with pytest.raises(ValueError, match="loss must be mnrl, triplet or a score loss .*kl.*got 'distill'"):
        make(loss="distill")
    with pytest.raises(ValueError, match="has no option --loss_margin"):
        make(loss="kl", loss_margin=1.0)
    with pytest.raises(
        ValueError, match="--loss_temperature configure the score losses, not mnrl: mnrl takes --temperature"
    ):
        make(loss="mnrl", loss_temperature=0.05)


def data_arguments(**overrides) -> EmbeddingDataArguments:
    fields = dict(
        train_data="sample-train",
        positive_grade=2,
        eval_data="sample-test",
        eval_name="sample",
        eval_depth=20,
        retrieval_data=None,
        retrieval_k=20,
        space_pairs=10,
    )
    fields.update(overrides)
    return EmbeddingDataArguments(**fields)


def training_arguments(tmp_path, **overrides) -> EmbeddingTrainingArguments:
    fields = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=32,
        max_steps=3,
        learning_rate=1e-3,
        max_length=48,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=3,
        precision="fp32",
    )
    fields.update(overrides)
    return EmbeddingTrainingArguments(**fields)


def test_train_embedding_with_a_teacher_records_it(tmp_path, tiny_encoder_dir):
    from hf_rerank.data.sources import load_collection

    bm25 = load_collection("sample-train").run("bm25")
    args = training_arguments(tmp_path, loss="kl", loss_temperature=0.5, group_size=4)
    data = data_arguments(teacher="bm25", teacher_depth=10, groups_per_query=2)
    summary = train_embedding(EmbeddingModelArguments(str(tiny_encoder_dir)), data, args)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["teacher"] == {
        "sources": [{"source": "bm25", "queries": len(bm25), "passages": sum(map(len, bm25.values()))}],
        "candidates": "each query's teacher-scored passages, the teacher's top 10",
        "group_size": 4,
        "groups_per_query": 2,
    }
    assert saved["loss"] == "kl" and saved["loss_options"] == {"temperature": 0.5}
    assert saved["example_type"] == "GroupExample" and saved["train_examples"] == 2 * len(bm25)
    assert saved["negatives"] is None and saved["global_steps"] == 3
    assert set(saved["eval"]) == {"sample", "sample_dense"}


def test_train_embedding_refuses_a_loss_the_data_cannot_feed(tmp_path, tiny_encoder_dir):
    model = EmbeddingModelArguments(str(tiny_encoder_dir))
    with pytest.raises(ValueError, match="loss 'kl' learns from a teacher's scores: give --teacher"):
        train_embedding(model, data_arguments(), training_arguments(tmp_path / "a", loss="kl"))
    with pytest.raises(ValueError, match="loss 'lambdaloss' scores lists of candidates: give --teacher"):
        train_embedding(model, data_arguments(), training_arguments(tmp_path / "b", loss="lambdaloss"))
    with pytest.raises(ValueError, match="loss 'mnrl' trains on triplets, not on a teacher's lists: drop --teacher"):
        train_embedding(model, data_arguments(teacher=["bm25"]), training_arguments(tmp_path / "c", loss="mnrl"))
    with pytest.raises(ValueError, match="--negatives mined and --teacher exclude each other"):
        train_embedding(
            model, data_arguments(teacher="bm25", negatives="mined"), training_arguments(tmp_path / "d", loss="kl")
        )
