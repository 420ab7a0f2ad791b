"""EmbeddingTrainer and train_embedding end to end on tiny random encoders and the bundled sample.

The bundled sample (``sample-train``: 20 queries; ``sample-test``: 10 queries, BM25 top-50) is
small enough that a few steps of a 2-layer 32-dim BERT run in seconds.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hf_rerank.data.sources import load_collection
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.training.arguments import EmbeddingTrainingArguments
from hf_rerank.training.callbacks import EmbeddingSpaceCallback
from hf_rerank.training.run_embedding import (
    EmbeddingDataArguments,
    EmbeddingModelArguments,
    evaluation_callbacks,
    train_embedding,
)
from tests import processes

TEXTS = ["what do bees make", "bees make honey from nectar", "who wrote hamlet", "shakespeare wrote hamlet"]


def run(tmp_path, model_dir, *, negatives="random", **overrides):
    args = dict(
        output_dir=str(tmp_path),
        loss="mnrl",
        per_device_train_batch_size=4,
        per_device_eval_batch_size=32,
        max_steps=3,
        learning_rate=1e-3,
        max_length=48,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=3,
        eval_on_start=True,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=3,
    )
    args.update(overrides)
    data = EmbeddingDataArguments(
        train_data="sample-train",
        positive_grade=2,
        negatives=negatives,
        eval_data="sample-test",
        eval_name="sample",
        eval_depth=50,
        retrieval_data=["sample-train"],
        retrieval_k=100,
        space_pairs=20,
        mine_window=[5, 30],
    )
    return train_embedding(EmbeddingModelArguments(str(model_dir)), data, EmbeddingTrainingArguments(**args))


def test_train_embedding_writes_a_sentence_transformers_model_and_metrics(tmp_path, tiny_encoder_dir):
    from sentence_transformers import SentenceTransformer

    summary = run(tmp_path, tiny_encoder_dir)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert set(saved["eval"]) == {"sample", "sample_dense"}
    assert saved["eval_protocol"]["sample_dense"]["corpus_passages"] == 300  # sample-test + sample-train corpora
    assert {"anisotropy", "effective_rank", "alignment", "uniformity"} <= set(saved["embedding_space"])
    assert saved["trainable_parameters"] == saved["total_parameters"] and saved["lora"] is None
    assert saved["global_steps"] == 3 and saved["train_seconds"] > 0
    history = json.loads((tmp_path / "log_history.json").read_text())
    evaluations = [entry for entry in history if "eval_sample_ndcg@10" in entry]
    assert [entry["step"] for entry in evaluations] == [0, 3]
    assert all("eval_space_effective_rank" in entry for entry in evaluations)
    for name in ("eval_sample", "eval_sample_dense"):
        assert (tmp_path / name / "run.trec").is_file()
    # sentence-transformers loads the output directory and embeds as hf-rerank does
    ours = BiEncoder.from_pretrained(tmp_path, precision="fp32").encode(TEXTS, show_progress=False)
    theirs = SentenceTransformer(str(tmp_path), device="cpu").encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(ours, theirs.float(), atol=1e-5, rtol=1e-4)
    space = np.load(tmp_path / "space_embeddings.npz")
    assert space["queries"].shape == space["passages"].shape == (20, 32)


def test_lora_adapters_and_merged_model_give_the_same_embeddings(tmp_path, tiny_encoder_dir):
    summary = run(
        tmp_path, tiny_encoder_dir, lora_r=4, lora_alpha=8, lora_dropout=0.0, learning_rate=5e-2, eval_on_start=False
    )
    lora = summary["lora"]
    assert lora["r"] == 4 and lora["alpha"] == 8 and lora["target_modules"] == ["query", "value"]
    # 2 layers x (query + value) x (A: 32x4 + B: 4x32) = 1,024 adapter parameters
    assert lora["trainable_parameters"] == 1024 == summary["trainable_parameters"]
    assert lora["trainable_share"] == pytest.approx(1024 / lora["total_parameters"])
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert not (adapter / "model.safetensors").exists()  # the adapters alone
    merged = BiEncoder.from_pretrained(tmp_path, precision="fp32").encode(TEXTS, show_progress=False)
    reloaded = BiEncoder.from_pretrained(adapter, precision="fp32").encode(TEXTS, show_progress=False)
    torch.testing.assert_close(reloaded, merged, atol=1e-5, rtol=1e-5)
    base = BiEncoder.from_pretrained(tiny_encoder_dir, precision="fp32").encode(TEXTS, show_progress=False)
    assert (merged - base).abs().max() > 1e-3  # the adapters changed the model


def test_triplet_loss_with_mined_negatives(tmp_path, tiny_encoder_dir):
    summary = run(
        tmp_path,
        tiny_encoder_dir,
        negatives="mined",
        loss="triplet",
        distance="cosine",
        margin=0.5,
        eval_on_start=False,
    )
    assert summary["negatives"] == "mined" and summary["mine_window"] == [5, 30]
    lines = (tmp_path / "negatives.tsv").read_text().splitlines()
    assert lines and all(len(line.split("\t")) == 2 for line in lines)
    assert summary["loss_options"] == {"distance": "cosine", "margin": 0.5}


def test_triplet_loss_without_negatives_is_refused(tmp_path, tiny_encoder_dir):
    with pytest.raises(ValueError, match="needs examples with negatives"):
        run(tmp_path, tiny_encoder_dir, negatives="none", loss="triplet", eval_on_start=False)


def test_embedding_space_callback_warns_loudly_below_the_start(caplog):
    callback = EmbeddingSpaceCallback([("q", "p"), ("q2", "p2")], watch="eval_x_ndcg@10")
    state = type("State", (), {"global_step": 0})()
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        callback.on_evaluate(None, state, None, metrics={"eval_x_ndcg@10": 0.6})
        state.global_step = 10
        callback.on_evaluate(None, state, None, metrics={"eval_x_ndcg@10": 0.61})
        assert caplog.text == ""
        state.global_step = 20
        callback.on_evaluate(None, state, None, metrics={"eval_x_ndcg@10": 0.55})
    assert "fell to 0.5500 at step 20, below its starting point 0.6000" in caplog.text
    assert callback.regressed_at == [20]


class JudgeScorer:
    """Scores a (query, passage) pair by its judged grade (``sign=-1``: the worst possible ranking)."""

    def __init__(self, collection, sign: float):
        by_text = {text: qid for qid, text in collection.queries.items()}
        passages = {text: pid for pid, text in collection.corpus.items()}
        self.grade = lambda q, p: collection.qrels.get(by_text[q], {}).get(passages[p], 0)
        self.sign = sign

    def score_pairs(self, queries, passages, *, batch_size, show_progress):
        return np.array([self.sign * self.grade(q, p) for q, p in zip(queries, passages)], dtype=np.float32)


class ScorerTrainer:
    """What IREvaluationCallback.compute uses of a trainer, on one process, with a fixed scorer."""

    def __init__(self, scorer):
        self.model, self.args = torch.nn.Linear(1, 1), SimpleNamespace(world_size=1, process_index=0)
        self.accelerator = SimpleNamespace(unwrap_model=lambda model: model)
        self.scorer = lambda model: scorer

    def is_world_process_zero(self):
        return True


def evaluation_arguments(tmp_path, **fields):
    data = EmbeddingDataArguments(eval_data="sample-test", eval_name="sample", eval_depth=50, **fields)
    args = EmbeddingTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", seed=3)
    return data, args


@pytest.mark.parametrize(("metric_set", "headline"), [("trec-dl", "ndcg@10"), ("msmarco-dev", "mrr@10")])
def test_the_regression_watch_fires_on_the_metric_sets_headline_metric(tmp_path, caplog, metric_set, headline):
    # under msmarco-dev (mrr@10, no ndcg@10) the watch used to look for eval_<name>_ndcg@10 and never fired
    collection = load_collection("sample-test")
    data, args = evaluation_arguments(tmp_path, eval_metrics=metric_set, positive_grade=2, space_pairs=5)
    ir_callback, space_callback = evaluation_callbacks(collection, data, args)
    assert space_callback.watch == ir_callback.headline == f"eval_sample_{headline}"
    state = SimpleNamespace(global_step=0)
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        for step, sign in ((0, 1.0), (5, -1.0)):  # the best ranking first, then the worst
            state.global_step = step
            metrics = ir_callback.compute(ScorerTrainer(JudgeScorer(collection, sign)))
            space_callback.on_evaluate(args, state, None, metrics=metrics)
    assert space_callback.regressed_at == [5]
    assert f"eval_sample_{headline} fell to" in caplog.text


def test_the_embedding_space_pairs_follow_space_seed_not_the_runs_seed(tmp_path):
    collection = load_collection("sample-test")
    data, args = evaluation_arguments(tmp_path, positive_grade=1, space_pairs=5)
    assert data.space_seed == 42
    pairs = evaluation_callbacks(collection, data, args)[1].pairs
    args.seed = 4
    assert evaluation_callbacks(collection, data, args)[1].pairs == pairs
    data.space_seed = 7
    assert evaluation_callbacks(collection, data, args)[1].pairs != pairs


GATHER_SCRIPT = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    from hf_rerank.losses import in_batch_infonce
    from hf_rerank.training.embedding import gather_with_grad
    rank = int(sys.argv[1])
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:" + sys.argv[2], rank=rank, world_size=2)
    torch.manual_seed(0)
    queries, positives = torch.randn(4, 8), torch.randn(4, 8)   # the same global batch on both ranks
    full = (in_batch_infonce(queries, positives, temperature=0.1))
    q = queries[2 * rank: 2 * rank + 2].clone().requires_grad_()
    p = positives[2 * rank: 2 * rank + 2].clone().requires_grad_()
    local = in_batch_infonce(q, gather_with_grad(p), temperature=0.1, query_offset=2 * rank)
    total = local.detach().clone(); dist.all_reduce(total); total /= 2
    # the gather's backward sums every rank's gradient into the slice's owner; DDP then averages
    # over the 2 ranks, so grad / 2 must be the big batch's gradient for this rank's slice
    local.backward()
    reference = positives.clone().requires_grad_(); in_batch_infonce(queries, reference, temperature=0.1).backward()
    print("RESULT", rank, abs(total.item() - full.item()),
          (p.grad / 2 - reference.grad[2 * rank: 2 * rank + 2]).abs().max().item())
""")


def test_gathered_in_batch_negatives_equal_one_big_batch(tmp_path):
    script = tmp_path / "gather.py"
    script.write_text(GATHER_SCRIPT)
    port = str(29500 + os.getpid() % 1000)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ranks = [processes.start([sys.executable, str(script), str(rank), port], env=env) for rank in (0, 1)]
    try:
        done = [processes.finish(rank, timeout=120) for rank in ranks]
    finally:
        for rank in ranks:
            processes.stop(rank)
    for process in done:
        assert process.returncode == 0, process.stderr[-2000:]
        _, _, loss_error, grad_error = next(
            line for line in process.stdout.splitlines() if line.startswith("RESULT")
        ).split()
        assert float(loss_error) < 1e-6 and float(grad_error) < 1e-6


def test_chunked_batches_give_the_same_loss_and_gradients(tmp_path, tokenizer):
    from transformers import AutoModel

    from hf_rerank.data.collators import BiEncoderCollator
    from hf_rerank.data.examples import TripletExample
    from hf_rerank.training.embedding import EmbeddingTrainer
    from tests.conftest import tiny_config

    queries = {"q1": "what do bees make", "q2": "who wrote hamlet", "q3": "how tall is the tallest mountain on earth"}
    corpus = {
        "p1": "bees make honey from the nectar of flowers they visit",
        "p2": "shakespeare",
        "p3": "mount everest is 8849 metres tall",
        "n1": "rain",
        "n2": "the sea is blue and deep and wide",
    }
    examples = [TripletExample("q1", "p1", "n1"), TripletExample("q2", "p2", "n2"), TripletExample("q3", "p3", "n1")]
    torch.manual_seed(0)
    model = AutoModel.from_config(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    args = EmbeddingTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", max_length=32)
    assert args.chunk_overhead_tokens == 256  # on by default on a CPU
    assert (
        EmbeddingTrainingArguments(
            output_dir=str(tmp_path), use_cpu=True, length_chunk_overhead=7
        ).chunk_overhead_tokens
        == 7
    )
    with pytest.raises(ValueError, match="length_chunk_overhead must be >= 0"):
        EmbeddingTrainingArguments(output_dir=str(tmp_path), use_cpu=True, length_chunk_overhead=-1)
    assert (
        EmbeddingTrainingArguments(output_dir=str(tmp_path), use_cpu=True, length_chunks=False).chunk_overhead_tokens
        is None
    )
    trainer = EmbeddingTrainer(model=model, args=args, processing_class=tokenizer, pooling="mean", normalize=True)
    results = []
    for overhead in (None, 2):
        batch = BiEncoderCollator(tokenizer, queries, corpus, max_length=32, chunk_overhead_tokens=overhead)(examples)
        assert trainer.batch_samples(batch) == 3
        model.zero_grad()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        results.append(
            (len(batch["chunks"]), loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
        )
    (plain_chunks, plain_loss, plain_grads), (chunks, loss, grads) = results
    assert plain_chunks == 3 and chunks > 3  # split by length, not by field
    assert len(grads) == len(plain_grads) > 0
    torch.testing.assert_close(loss, plain_loss, rtol=1e-5, atol=1e-6)
    for grad, plain in zip(grads, plain_grads):
        torch.testing.assert_close(grad, plain, rtol=1e-4, atol=1e-6)
