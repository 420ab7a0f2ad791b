"""Training throughput: hf-rerank's CrossEncoderTrainer vs sentence-transformers' CrossEncoderTrainer.

What is compared: ``trainer.train()`` of each library, from the same checkpoint (the bundled
all-MiniLM-L6-v2 encoder with a fresh seeded one-logit head, saved once and loaded fresh by each
side each round), on the same rows: the 5,004 judged TREC DL 2020 pairs (label 1 for grade >= 2),
the same (query text, passage text, label) in the same dataset order. Same batch size, max length
(hf-rerank cuts only the passage, sentence-transformers ``longest_first``: the same here, as DL20
queries are short), precision (TrainingArguments ``bf16`` on the CPU), optimizer (torch
AdamW, lr 2e-5, weight decay 0.01, no warmup, linear decay), loss (BCE on the logit), seed,
``max_steps`` optimizer steps, no evaluation, no saving, no data-loader workers.

What differs is each library's own way of feeding the model, which is what is measured:
hf-rerank tokenises in its collator and, by default, batches pairs of similar length
(``length_bucketing``); sentence-transformers (defaults: random batches) hands raw text to the
loss, which tokenises and pads each batch to its longest row. The two therefore draw different
rows; samples/s depends on which rows were drawn, real tokens/s (non-padding tokens trained on
per second, counted from the attention masks of exactly the batches each side trained on) much less.

How: in one process the two alternate, sentence-transformers first, ``--rounds`` times, each a
fresh model and trainer; speed is rows trained on / wall seconds of ``trainer.train()`` (its setup
included, for both). Prints each round, a table of medians and a last line of JSON. ``--eval``
then reranks the DL19 BM25 top-100 with each side's last model (hf-rerank's evaluation, same
precision) and prints nDCG@10, so speed is never bought with quality.

    .venv/bin/python benchmarks/train_speed.py [--steps 40] [--rounds 2] [--precision bf16|fp32] [--eval]
    .venv/bin/python benchmarks/train_speed.py --quick          # smoke check: 8 steps, 1 round
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import transformers
from rerank_throughput import make_checkpoint  # sibling script
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.data.collection import IRCollection
from hf_rerank.data.examples import make_judged_pairs
from hf_rerank.evaluation.report import evaluate_reranking
from hf_rerank.models.cross_encoder import CrossEncoder
from hf_rerank.models.inference import native_bf16
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer

TREC_DL = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-dl"
SEED = 12


class TokenCounter:
    """Wraps a callable that returns tokenised batches; records (rows, real, padded) tokens per batch."""

    def __init__(self, tokenise):
        self.tokenise = tokenise
        self.batches: list[tuple[int, int, int]] = []

    def __call__(self, *args, **kwargs):
        batch = self.tokenise(*args, **kwargs)
        mask = batch["attention_mask"]
        self.batches.append((mask.shape[0], int(mask.sum()), mask.numel()))
        return batch

    def __getattr__(self, name):  # hf-rerank's trainer reads collator.queries / collator.corpus
        return getattr(self.tokenise, name)

    def totals(self, steps: int) -> tuple[int, int, int]:
        """Rows, real and padded tokens of the first ``steps`` batches: those trained on (accelerate's
        data loader fetches one batch ahead, so a collator sees one batch more than the steps)."""
        rows, real, padded = (sum(column) for column in zip(*self.batches[:steps]))
        return rows, real, padded


def training_arguments(args, output_dir: str) -> dict:
    """The TrainingArguments both sides share."""
    return {
        "output_dir": output_dir, "per_device_train_batch_size": args.batch_size, "max_steps": args.steps,
        "learning_rate": 2e-5, "weight_decay": 0.01, "warmup_steps": 0, "seed": SEED,
        "bf16": args.precision == "bf16", "use_cpu": True, "dataloader_num_workers": 0,
        "eval_strategy": "no", "save_strategy": "no", "logging_strategy": "no", "report_to": "none", "disable_tqdm": True,
    }


def train_hf_rerank(checkpoint: str, pairs, collection: IRCollection, args, output_dir: str):
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    counter = TokenCounter(CrossEncoderCollator(tokenizer, collection.queries, collection.corpus, args.max_length))
    training_args = CrossEncoderTrainingArguments(
        **training_arguments(args, output_dir), optimizer="adamw", loss="bce", max_length=args.max_length,
    )  # length_bucketing: its default, on
    trainer = CrossEncoderTrainer(model=model, args=training_args, train_dataset=pairs, data_collator=counter,
                                  processing_class=tokenizer)
    return timed_train(trainer, counter, args.steps), model, tokenizer


def train_sentence_transformers(checkpoint: str, dataset, args, output_dir: str):
    from sentence_transformers import cross_encoder as st
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    model = st.CrossEncoder(checkpoint, max_length=args.max_length, device="cpu")
    training_args = st.CrossEncoderTrainingArguments(**training_arguments(args, output_dir), optim="adamw_torch")
    trainer = st.CrossEncoderTrainer(model=model, args=training_args, train_dataset=dataset,
                                     loss=BinaryCrossEntropyLoss(model))  # batch_sampler: its default, random
    # The loss tokenises each batch with model.preprocess. Wrapped after the trainer is built: its
    # model-card callback tokenises sample rows at init, which are not trained on.
    counter = model.preprocess = TokenCounter(model.preprocess)
    return timed_train(trainer, counter, args.steps), model[0].model, model.tokenizer


def timed_train(trainer, counter: TokenCounter, steps: int) -> dict[str, float]:
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    if trainer.state.global_step != steps:
        raise RuntimeError(f"trained {trainer.state.global_step} steps, expected {steps}")
    rows, real, padded = counter.totals(steps)
    return {"samples_per_s": rows / seconds, "tokens_per_s": real / seconds, "padding": 1 - real / padded,
            "loss": output.training_loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-data", type=Path, default=TREC_DL / "dl20")
    parser.add_argument("--eval-data", type=Path, default=TREC_DL / "dl19")
    parser.add_argument("--steps", type=int, help="optimizer steps per training run (default 40; --quick: 8)")
    parser.add_argument("--rounds", type=int, help="alternations of the two (default 2; --quick: 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16" if native_bf16("cpu") else "fp32")
    parser.add_argument("--quick", action="store_true", help="smoke check: 8 steps, 1 round")
    parser.add_argument("--eval", action="store_true", help="rerank DL19 BM25 top-100 with each side's last model")
    args = parser.parse_args()
    args.steps = args.steps or (8 if args.quick else 40)
    args.rounds = args.rounds or (1 if args.quick else 2)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    from datasets import Dataset

    collection = IRCollection.from_dir(args.train_data)
    pairs = make_judged_pairs(collection, positive_grade=2)
    dataset = Dataset.from_dict({  # column order: sentence A, sentence B, label
        "query": [collection.queries[pair.qid] for pair in pairs],
        "passage": [collection.corpus[pair.pid] for pair in pairs],
        "label": [pair.label for pair in pairs],
    })
    with tempfile.TemporaryDirectory() as workspace:
        checkpoint = str(Path(workspace) / "checkpoint")
        make_checkpoint(Path(checkpoint), SEED)
        systems = {
            "sentence-transformers": lambda: train_sentence_transformers(checkpoint, dataset, args, workspace),
            "hf-rerank": lambda: train_hf_rerank(checkpoint, pairs, collection, args, workspace),
        }
        results: dict[str, list[dict]] = {name: [] for name in systems}
        for round_number in range(1, args.rounds + 1):
            for name, train in systems.items():
                result, model, tokenizer = train()
                results[name].append(result)
                print(f"round {round_number} {name:<22} {result['samples_per_s']:7.1f} samples/s "
                      f"{result['tokens_per_s']:9.0f} real tokens/s  padding {result['padding']:.1%}  "
                      f"loss {result['loss']:.4f}", flush=True)
                if args.eval and round_number == args.rounds:
                    result["model"] = CrossEncoder(model, tokenizer, max_length=args.max_length, device="cpu",
                                                   precision=args.precision)

    keys = ("samples_per_s", "tokens_per_s", "padding")
    medians = {name: {key: statistics.median(run[key] for run in runs) for key in keys} for name, runs in results.items()}
    print(f"\n{len(pairs)} pairs ({args.train_data.name}), {args.steps} steps x batch {args.batch_size}, max length "
          f"{args.max_length}, {args.precision}, {args.rounds} round(s), torch threads {torch.get_num_threads()}")
    print(f"{'system':<22} {'samples/s':>10} {'real tokens/s':>14} {'padding':>8}")
    for name, median in medians.items():
        print(f"{name:<22} {median['samples_per_s']:>10.1f} {median['tokens_per_s']:>14.0f} {median['padding']:>8.1%}")
    ratio = medians["hf-rerank"]["samples_per_s"] / medians["sentence-transformers"]["samples_per_s"]
    token_ratio = medians["hf-rerank"]["tokens_per_s"] / medians["sentence-transformers"]["tokens_per_s"]
    print(f"hf-rerank / sentence-transformers: {ratio:.2f}x samples/s, {token_ratio:.2f}x real tokens/s")
    summary = {"cross_encoder_speedup": round(ratio, 3), "real_tokens_speedup": round(token_ratio, 3),
               "samples_per_s": {name: round(m["samples_per_s"], 2) for name, m in medians.items()},
               "padding": {name: round(m["padding"], 4) for name, m in medians.items()},
               "steps": args.steps, "batch_size": args.batch_size, "max_length": args.max_length,
               "precision": args.precision, "rounds": args.rounds}

    if args.eval:
        evaluation = IRCollection.from_dir(args.eval_data)
        summary["ndcg@10"] = {}
        for name, runs in results.items():
            report, _ = evaluate_reranking(evaluation, "bm25", runs[-1]["model"], depth=100, show_progress=False)
            summary["ndcg@10"][name] = round(report.metrics["ndcg@10"], 4)
            print(f"{args.eval_data.name} BM25 top-100 nDCG@10: {name:<22} {report.metrics['ndcg@10']:.4f} "
                  f"(BM25 {report.first_stage['ndcg@10']:.4f})")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
