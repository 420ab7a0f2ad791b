"""Training throughput: hf-rerank vs sentence-transformers, cross-encoder and bi-encoder, same settings.

Cross-encoder: hf-rerank's ``CrossEncoderTrainer`` vs sentence-transformers' ``CrossEncoderTrainer``,
from the same checkpoint (the bundled all-MiniLM-L6-v2 encoder with a fresh seeded one-logit head,
saved once), on the same rows: the 5,004 judged TREC DL 2020 pairs (label 1 for grade >= 2), the
same (query, passage, label) in the same dataset order; loss BCE on the logit. hf-rerank cuts only
the passage, sentence-transformers ``longest_first``: the same here, as DL20 queries are short.

Bi-encoder: hf-rerank's ``EmbeddingTrainer`` vs sentence-transformers' ``SentenceTransformerTrainer``,
both from the bundled all-MiniLM-L6-v2 (mean pooling, normalised), on the same 1,097 DL20 (query,
positive passage) pairs (grade >= 2); loss in-batch-negatives InfoNCE (hf-rerank ``mnrl`` at
temperature 0.05 = sentence-transformers' ``MultipleNegativesRankingLoss`` at scale 20); batches
never hold one query twice on either side (hf-rerank: its default ``no_duplicate_queries``;
sentence-transformers: ``BatchSamplers.NO_DUPLICATES``).

Both: same batch size, max length, precision (``--precision auto``: bf16 where the CPU has it
natively, else fp32, decided by ``hf_rerank.precision``; printed with the CPU's flags), optimizer
(torch AdamW, lr 2e-5, weight decay 0.01, no warmup, linear decay), seed, ``max_steps`` optimizer
steps, no evaluation, no saving, no data-loader workers. What differs is each library's own way
of feeding and running the model, which is what is measured: hf-rerank tokenises in its collators,
batches cross-encoder pairs of similar length (``length_bucketing``), encodes a bi-encoder
batch's texts in chunks of similar length (``length_chunks``), draws dropout masks with NumPy and
computes attention eagerly on CPUs (``fast_cpu_dropout``) and uses torch's fused AdamW, all
default on; sentence-transformers (random batches) tokenises each batch and pads it to its longest
row. hf-rerank's own arguments can be changed with ``--hf-set KEY=VALUE`` (e.g. ``--hf-set
length_bucketing=false``) to measure its speed options.

Measured per training run, the same way for both libraries:

- samples/s: examples trained on (pairs; bi-encoder: queries) / wall seconds of ``trainer.train()``
  (its setup included, for both);
- real tokens/s and padding: non-padding tokens, counted from the attention masks of exactly the
  batches each side trained on (its collator, or sentence-transformers' cross-encoder tokeniser,
  is wrapped; the data loader collates one batch ahead, which is not counted);
- MFU: model FLOPs of those batches (``hf_rerank.training.efficiency.flops.TransformerFlops``:
  6 N per real token + attention) per second of ``train()``, over one matmul peak measured at
  the start for the precision in use (``measure_matmul_peak``, best of 9 rounds); the peak is
  measured again at the end, and a difference of more than 10% is reported (the CPU was shared);
- step samples/s and step MFU (hf-rerank only): what its ``EfficiencyCallback`` reports in every
  run's metrics.json, over the optimizer steps after two warm-up steps (the trainer's set-up and
  the first steps' one-off work, e.g. oneDNN kernel creation, excluded);
- peak RSS: the run's process's resident memory, sampled every 0.1 s during ``train()``, and its
  rise over the RSS at the start of ``train()`` (activations, gradients, optimizer state).

The two sides alternate, sentence-transformers first, ``--rounds`` times; every run is a fresh
spawned process (one process tree), so no run inherits another's memory, caches or allocator
state, and both sides import the same modules. What a process does before ``train()`` (imports,
data, model loading, and filling hf-rerank's matmul-peak cache, ~1 s that a real run pays once)
is not timed. The table shows medians and the hf-rerank / sentence-transformers ratios. Each
side's last model then (unless ``--no-eval``) reranks the DL19 BM25 top-100 in its process
(hf-rerank's evaluation, same precision) and nDCG@10 is printed with the difference and its
two-sided paired t-test over the 43 queries, so speed is never bought with quality. With
``--systems hf-rerank`` only hf-rerank trains (to compare its ``--hf-set`` options; no ratios).
The last line is JSON:
``{"cross_encoder_speedup": ..., "bi_encoder_speedup": ..., ...}`` (hf-rerank samples/s divided
by sentence-transformers').

    .venv/bin/python benchmarks/train_speed.py [--steps 40] [--rounds 2] [--precision auto|bf16|fp32]
        [--only cross-encoder|bi-encoder] [--systems hf-rerank] [--hf-set KEY=VALUE ...] [--no-eval]
    .venv/bin/python benchmarks/train_speed.py --quick          # 8 steps, 1 round
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import transformers
from datasets import Dataset
from rerank_throughput import make_checkpoint  # sibling script
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers import cross_encoder as st_cross_encoder
from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.training_args import BatchSamplers
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, PrinterCallback

from hf_rerank.data.collators import BiEncoderCollator, CrossEncoderCollator
from hf_rerank.data.collection import IRCollection
from hf_rerank.data.examples import TripletExample, make_judged_pairs
from hf_rerank.evaluation.report import evaluate_reranking
from hf_rerank.evaluation.significance import paired_t_test
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.models.cross_encoder import CrossEncoder
from hf_rerank.models.resolve import bundled_model_path
from hf_rerank.precision import PrecisionError, choose_precision, cpu_flags
from hf_rerank.training.arguments import CrossEncoderTrainingArguments, EmbeddingTrainingArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from hf_rerank.training.efficiency.counts import count_batch
from hf_rerank.training.efficiency.device import device_name
from hf_rerank.training.efficiency.flops import TransformerFlops
from hf_rerank.training.efficiency.memory import MIB
from hf_rerank.training.efficiency.peak import measure_matmul_peak
from hf_rerank.training.efficiency.sampler import UsageSampler
from hf_rerank.training.embedding import EmbeddingTrainer

TREC_DL = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-dl"
SEED = 12
SYSTEMS = ("sentence-transformers", "hf-rerank")
KEYS = ("samples_per_s", "tokens_per_s", "padding", "mfu", "peak_rss_mib", "rss_rise_mib")
# hf-rerank's EfficiencyCallback's own numbers (None for sentence-transformers): ours -> its metric
STEP_KEYS = {"step_samples_per_s": "eff_samples_per_second", "step_mfu": "eff_mfu"}


class TokenCounter:
    """Wraps a callable that returns model-input batches; counts each batch (``count_batch``;
    ``samples(batch)``, if given, says how many training examples it holds)."""

    def __init__(self, tokenise, samples=None):
        self.tokenise, self.samples = tokenise, samples
        self.batches = []

    def __call__(self, *args, **kwargs):
        batch = self.tokenise(*args, **kwargs)
        self.batches.append(count_batch(batch, None if self.samples is None else self.samples(batch)))
        return batch

    def __getattr__(self, name):  # trainers read the wrapped collator's attributes (queries, corpus, ...)
        return getattr(self.tokenise, name)

    def totals(self, steps: int, flops: TransformerFlops) -> dict[str, float]:
        """Samples, real and padded tokens and model FLOPs of the first ``steps`` batches: those
        trained on (the data loader collates one batch ahead)."""
        trained = self.batches[:steps]
        return {
            "samples": sum(b.samples for b in trained),
            "real": sum(b.real_tokens for b in trained),
            "padded": sum(b.padded_tokens for b in trained),
            "flops": sum(flops.training_flops(b.lengths) for b in trained),
        }


def training_arguments(args, output_dir: str) -> dict:
    """The TrainingArguments both sides share."""
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": args.batch_size,
        "max_steps": args.steps,
        "learning_rate": 2e-5,
        "weight_decay": 0.01,
        "warmup_steps": 0,
        "seed": SEED,
        "bf16": args.precision == "bf16",
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "eval_strategy": "no",
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
    }


def hf_arguments(cls, args, output_dir: str, **fields):
    """hf-rerank's arguments: the shared ones, ``fields``, then the ``--hf-set`` overrides this class has."""
    names = {f.name for f in dataclasses.fields(cls)}
    overrides = {key: value for key, value in args.hf_set.items() if key in names}
    return cls(**{**training_arguments(args, output_dir), "optimizer": "adamw", **fields, **overrides})


def timed_train(trainer, counter: TokenCounter, model, args) -> dict[str, float]:
    """Train, timing ``trainer.train()`` and sampling the process's memory; the measures of KEYS."""
    trainer.remove_callback(PrinterCallback)  # logging is off; it would print the final metrics only
    sampler = UsageSampler(interval_s=0.1).start()
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    samples = sampler.stop()
    if trainer.state.global_step != args.steps:
        raise RuntimeError(f"trained {trainer.state.global_step} steps, expected {args.steps}")
    totals = counter.totals(args.steps, TransformerFlops.from_model(model))
    peak = max(s.rss_bytes for s in samples)
    return {
        "samples_per_s": totals["samples"] / seconds,
        "tokens_per_s": totals["real"] / seconds,
        "padding": 1 - totals["real"] / totals["padded"],
        "mfu": totals["flops"] / seconds / args.peak,
        "peak_rss_mib": peak / MIB,
        "rss_rise_mib": (peak - samples[0].rss_bytes) / MIB,
        "loss": output.training_loss,
        **{key: output.metrics.get(metric) for key, metric in STEP_KEYS.items()},
    }


# ------------------------------------------------------------------------------------ cross-encoder


def train_hf_rerank_cross_encoder(data: dict, args, output_dir: str):
    model = AutoModelForSequenceClassification.from_pretrained(data["checkpoint"])
    tokenizer = AutoTokenizer.from_pretrained(data["checkpoint"])
    collection = data["collection"]
    counter = TokenCounter(CrossEncoderCollator(tokenizer, collection.queries, collection.corpus, args.max_length))
    training_args = hf_arguments(
        CrossEncoderTrainingArguments, args, output_dir, loss="bce", max_length=args.max_length
    )
    trainer = CrossEncoderTrainer(
        model=model, args=training_args, train_dataset=data["pairs"], data_collator=counter, processing_class=tokenizer
    )
    result = timed_train(trainer, counter, model, args)
    return result, CrossEncoder(model, tokenizer, max_length=args.max_length, device="cpu", precision=args.precision)


def train_st_cross_encoder(data: dict, args, output_dir: str):
    model = st_cross_encoder.CrossEncoder(data["checkpoint"], max_length=args.max_length, device="cpu")
    training_args = st_cross_encoder.CrossEncoderTrainingArguments(
        **training_arguments(args, output_dir), optim="adamw_torch"
    )
    trainer = st_cross_encoder.CrossEncoderTrainer(
        model=model, args=training_args, train_dataset=data["dataset"], loss=BinaryCrossEntropyLoss(model)
    )  # batch_sampler: its default, random
    # The loss tokenises each batch with model.preprocess. Wrapped after the trainer is built: its
    # model-card callback tokenises sample rows at init, which are not trained on.
    counter = model.preprocess = TokenCounter(model.preprocess)
    result = timed_train(trainer, counter, model[0].model, args)
    return result, CrossEncoder(
        model[0].model, model.tokenizer, max_length=args.max_length, device="cpu", precision=args.precision
    )


def cross_encoder_data(collection: IRCollection, workspace: str) -> dict:
    """The 5,004 judged DL20 pairs, as hf-rerank examples and as a sentence-transformers dataset, and
    the checkpoint both start from."""
    pairs = make_judged_pairs(collection, positive_grade=2)
    dataset = Dataset.from_dict(
        {  # column order: sentence A, sentence B, label
            "query": [collection.queries[pair.qid] for pair in pairs],
            "passage": [collection.corpus[pair.pid] for pair in pairs],
            "label": [pair.label for pair in pairs],
        }
    )
    return {
        "collection": collection,
        "pairs": pairs,
        "dataset": dataset,
        "size": f"{len(pairs)} judged pairs",
        "checkpoint": str(Path(workspace) / "cross-encoder"),
    }


def bench_cross_encoder(args, workspace: str) -> dict:
    """Alternate the two cross-encoder trainers ``args.rounds`` times; ``{system: [round results]}``."""
    make_checkpoint(Path(workspace) / "cross-encoder", SEED)
    return alternate("cross-encoder", args, workspace)


# ------------------------------------------------------------------------------------ bi-encoder


def train_hf_rerank_bi_encoder(data: dict, args, output_dir: str):
    path = bundled_model_path()
    model, tokenizer = AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    collection = data["collection"]
    training_args = hf_arguments(
        EmbeddingTrainingArguments, args, output_dir, loss="mnrl", temperature=0.05, max_length=args.max_length
    )
    counter = TokenCounter(
        BiEncoderCollator(
            tokenizer,
            collection.queries,
            collection.corpus,
            args.max_length,
            chunk_overhead_tokens=training_args.chunk_overhead_tokens,
        ),
        samples=BiEncoderCollator.examples_in,
    )
    trainer = EmbeddingTrainer(
        model=model,
        args=training_args,
        train_dataset=data["triplets"],
        data_collator=counter,
        processing_class=tokenizer,
        pooling="mean",
        normalize=True,
    )
    result = timed_train(trainer, counter, model, args)
    return result, BiEncoder(
        model,
        tokenizer,
        max_length=args.max_length,
        pooling="mean",
        normalize=True,
        device="cpu",
        precision=args.precision,
    )


def train_st_bi_encoder(data: dict, args, output_dir: str):
    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    model.max_seq_length = args.max_length
    training_args = SentenceTransformerTrainingArguments(
        **training_arguments(args, output_dir), optim="adamw_torch", batch_sampler=BatchSamplers.NO_DUPLICATES
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=training_args,
        train_dataset=data["dataset"],
        loss=MultipleNegativesRankingLoss(model, scale=20.0),
    )
    # Its data collator tokenises each column into {column}_input_ids / {column}_attention_mask.
    counter = trainer.data_collator = TokenCounter(trainer.data_collator)
    result = timed_train(trainer, counter, model[0].auto_model, args)
    return result, BiEncoder(
        model[0].auto_model,
        model.tokenizer,
        max_length=args.max_length,
        pooling="mean",
        normalize=True,
        device="cpu",
        precision=args.precision,
    )


def bi_encoder_data(collection: IRCollection, workspace: str) -> dict:
    """The DL20 (query, positive passage) pairs, grade >= 2, as hf-rerank triplets (in-batch negatives
    only) and as a sentence-transformers (anchor, positive) dataset, in the same order."""
    positives = [pair for pair in make_judged_pairs(collection, positive_grade=2) if pair.label == 1.0]
    dataset = Dataset.from_dict(
        {
            "anchor": [collection.queries[pair.qid] for pair in positives],
            "positive": [collection.corpus[pair.pid] for pair in positives],
        }
    )
    return {
        "collection": collection,
        "triplets": [TripletExample(p.qid, p.pid) for p in positives],
        "dataset": dataset,
        "size": f"{len(positives)} (query, positive) pairs",
    }


def bench_bi_encoder(args, workspace: str) -> dict:
    """Alternate the two bi-encoder trainers ``args.rounds`` times; ``{system: [round results]}``."""
    return alternate("bi-encoder", args, workspace)


# ------------------------------------------------------------------------------------ both

TRAINERS = {
    "cross-encoder": {"sentence-transformers": train_st_cross_encoder, "hf-rerank": train_hf_rerank_cross_encoder},
    "bi-encoder": {"sentence-transformers": train_st_bi_encoder, "hf-rerank": train_hf_rerank_bi_encoder},
}
DATA = {"cross-encoder": cross_encoder_data, "bi-encoder": bi_encoder_data}


def run_system(kind: str, system: str, args, workspace: str, evaluate: bool) -> dict:
    """In a fresh process: train ``system``'s ``kind`` once; with ``evaluate``, add its DL19 nDCG@10."""
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    measure_matmul_peak("cpu", args.dtype)  # fills the cache hf-rerank's EfficiencyCallback reads: not timed
    data = DATA[kind](IRCollection.from_dir(args.train_data), workspace)
    result, scorer = TRAINERS[kind][system](data, args, workspace)
    result["data"] = data["size"]
    if evaluate:
        report, _ = evaluate_reranking(
            IRCollection.from_dir(args.eval_data), "bm25", scorer, depth=100, show_progress=False
        )
        result["ndcg@10"], result["bm25_ndcg@10"] = report.metrics["ndcg@10"], report.first_stage["ndcg@10"]
        result["per_query_ndcg@10"] = report.per_query["ndcg@10"]
    return result


def in_fresh_process(function, *arguments):
    """``function(*arguments)`` in a new spawned process: each run starts with clean memory and state."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *arguments).result()


def alternate(kind: str, args, workspace: str) -> dict[str, list[dict]]:
    """Each system of ``kind`` in turn, ``args.rounds`` times, each run in its own process; the last
    round's models are evaluated unless ``--no-eval``."""
    results: dict[str, list[dict]] = {name: [] for name in args.systems}
    for round_number in range(1, args.rounds + 1):
        for name in args.systems:
            result = in_fresh_process(
                run_system, kind, name, args, workspace, not args.no_eval and round_number == args.rounds
            )
            results[name].append(result)
            print(
                f"  round {round_number} {kind:<13} {name:<22} {result['samples_per_s']:7.1f} samples/s "
                f"{result['tokens_per_s']:9.0f} real tokens/s  padding {result['padding']:.1%}  MFU {result['mfu']:.1%}"
                f"{step_note(result)}  "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB  loss {result['loss']:.4f}  ({result['data']})",
                flush=True,
            )
    return results


def step_note(result: dict) -> str:
    """`` (steps: N samples/s, MFU M)`` from hf-rerank's callback, or nothing."""
    if result["step_mfu"] is None:
        return ""
    return f" (steps: {result['step_samples_per_s']:.1f} samples/s, MFU {result['step_mfu']:.1%})"


def number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def quality_difference(ours: dict, theirs: dict) -> dict[str, float]:
    """hf-rerank's DL19 nDCG@10 minus sentence-transformers', with the two-sided paired t-test over
    the queries both evaluated."""
    qids = sorted(ours["per_query_ndcg@10"])
    a = [ours["per_query_ndcg@10"][qid] for qid in qids]
    b = [theirs["per_query_ndcg@10"][qid] for qid in qids]
    return {
        "difference": statistics.fmean(a) - statistics.fmean(b),
        "p_value": paired_t_test(a, b),
        "queries": len(qids),
    }


def parse_setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as JSON where it parses (true, 3, 1e-4), else as a string."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-data", type=Path, default=TREC_DL / "dl20")
    parser.add_argument("--eval-data", type=Path, default=TREC_DL / "dl19")
    parser.add_argument("--steps", type=int, help="optimizer steps per training run (default 40; --quick: 8)")
    parser.add_argument("--rounds", type=int, help="alternations of the two (default 2; --quick: 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto (default): bf16 where this CPU has it natively, else fp32 (hf_rerank.precision)",
    )
    parser.add_argument("--only", choices=("cross-encoder", "bi-encoder"), help="run one comparison (default both)")
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=SYSTEMS,
        default=list(SYSTEMS),
        help="whose training to run (default both; hf-rerank alone measures its --hf-set options, without ratios)",
    )
    parser.add_argument(
        "--hf-set",
        type=parse_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set one of hf-rerank's training arguments (e.g. length_bucketing=false); repeatable",
    )
    parser.add_argument("--quick", action="store_true", help="8 steps, 1 round")
    parser.add_argument("--no-eval", action="store_true", help="skip the DL19 nDCG@10 of each side's last model")
    args = parser.parse_args()
    args.steps = args.steps or (8 if args.quick else 40)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.hf_set = dict(args.hf_set)
    unknown = set(args.hf_set) - {
        f.name for cls in (CrossEncoderTrainingArguments, EmbeddingTrainingArguments) for f in dataclasses.fields(cls)
    }
    if unknown:
        parser.error(f"--hf-set: hf-rerank's training arguments have no {', '.join(sorted(unknown))}")
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    try:
        choice = choose_precision(args.precision, "cpu")
    except PrecisionError as exc:
        parser.error(str(exc))
    args.precision, args.dtype = choice.name, choice.dtype
    print(f"precision: {choice.reason}; CPU: {device_name(torch.device('cpu'))}", flush=True)
    peak = measure_matmul_peak("cpu", args.dtype)
    args.peak = peak.flops_per_second  # every run's MFU is relative to this one measurement
    print(f"matmul peak {peak.flops_per_second / 1e9:.1f} GFLOP/s ({peak.method})", flush=True)

    benches = {"cross-encoder": bench_cross_encoder, "bi-encoder": bench_bi_encoder}
    with tempfile.TemporaryDirectory() as workspace:
        results = {kind: bench(args, workspace) for kind, bench in benches.items() if args.only in (None, kind)}

    peak_end = in_fresh_process(measure_matmul_peak, "cpu", args.dtype)  # a fresh process: not the cached one
    drift = peak_end.flops_per_second / args.peak - 1
    print(
        f"matmul peak at the end {peak_end.flops_per_second / 1e9:.1f} GFLOP/s ({drift:+.1%} from the start)"
        + (": the CPU was shared during the benchmark, timings and MFU are not reliable" if abs(drift) > 0.1 else ""),
        flush=True,
    )
    medians = {
        kind: {
            name: {
                key: statistics.median(run[key] for run in runs)
                for key in KEYS + (tuple(STEP_KEYS) if runs[0]["step_mfu"] is not None else ())
            }
            for name, runs in by_system.items()
        }
        for kind, by_system in results.items()
    }
    both = len(args.systems) == 2
    ratios = (
        {
            kind: {
                key: m["hf-rerank"][key] / m["sentence-transformers"][key]
                for key in ("samples_per_s", "tokens_per_s", "peak_rss_mib")
            }
            for kind, m in medians.items()
        }
        if both
        else {}
    )
    ndcg = {
        kind: {
            **{name: runs[-1]["ndcg@10"] for name, runs in by_system.items()},
            "bm25": next(iter(by_system.values()))[-1]["bm25_ndcg@10"],
        }
        for kind, by_system in results.items()
        if not args.no_eval
    }
    quality = {
        kind: quality_difference(by_system["hf-rerank"][-1], by_system["sentence-transformers"][-1])
        for kind, by_system in results.items()
        if both and not args.no_eval
    }

    print(
        f"\n{args.steps} steps x batch {args.batch_size}, max length {args.max_length}, {args.precision} "
        f"(CPU flags: {' '.join(cpu_flags())}), "
        f"{args.rounds} round(s) (medians), torch threads {torch.get_num_threads()}, "
        f"hf-rerank settings {args.hf_set or 'default'}; nDCG@10: {args.eval_data.name} BM25 top-100 reranked"
    )
    print(
        f"{'model':<14} {'system':<22} {'samples/s':>10} {'tokens/s':>9} {'padding':>8} {'MFU':>6} "
        f"{'step s/s':>9} {'step MFU':>9} {'peak RSS MiB':>13} {'rise MiB':>9} {'nDCG@10':>8}"
    )
    for kind, by_system in medians.items():
        for name, m in by_system.items():
            score = ndcg.get(kind, {}).get(name)
            print(
                f"{kind:<14} {name:<22} {m['samples_per_s']:>10.1f} {m['tokens_per_s']:>9.0f} {m['padding']:>8.1%} "
                f"{m['mfu']:>6.1%} {number(m.get('step_samples_per_s'), '.1f'):>9} "
                f"{number(m.get('step_mfu'), '.1%'):>9} "
                f"{m['peak_rss_mib']:>13.0f} {m['rss_rise_mib']:>9.0f} "
                f"{'-' if score is None else f'{score:.4f}':>8}"
            )
        if kind in ratios:
            print(
                f"{kind:<14} {'hf-rerank / ST':<22} {ratios[kind]['samples_per_s']:>9.2f}x "
                f"{ratios[kind]['tokens_per_s']:>8.2f}x"
                f"{'':>36} {ratios[kind]['peak_rss_mib']:>12.2f}x"
                + (f"{'BM25':>11} {ndcg[kind]['bm25']:.4f}" if kind in ndcg else "")
            )
        if kind in quality:
            q = quality[kind]
            print(
                f"{kind:<14} nDCG@10 hf-rerank - sentence-transformers {q['difference']:+.4f} "
                f"over {q['queries']} queries, "
                f"paired t-test p = {q['p_value']:.3f}"
            )
    summary = {
        "cross_encoder_speedup": round(ratios["cross-encoder"]["samples_per_s"], 3)
        if "cross-encoder" in ratios
        else None,
        "bi_encoder_speedup": round(ratios["bi-encoder"]["samples_per_s"], 3) if "bi-encoder" in ratios else None,
        "real_tokens_speedup": {kind: round(r["tokens_per_s"], 3) for kind, r in ratios.items()},
        "peak_rss_ratio": {kind: round(r["peak_rss_mib"], 3) for kind, r in ratios.items()},
        "medians": {
            kind: {name: {key: round(value, 4) for key, value in m.items()} for name, m in by_system.items()}
            for kind, by_system in medians.items()
        },
        "ndcg@10": {kind: {name: round(value, 4) for name, value in scores.items()} for kind, scores in ndcg.items()},
        "ndcg@10_difference": {kind: {key: round(value, 4) for key, value in q.items()} for kind, q in quality.items()},
        "matmul_peak_flops_per_second": round(args.peak),
        "matmul_peak_end_flops_per_second": round(peak_end.flops_per_second),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "precision": args.precision,
        "cpu_flags": list(cpu_flags()),
        "cpu": device_name(torch.device("cpu")),
        "rounds": args.rounds,
        "hf_set": args.hf_set,
        "systems": list(args.systems),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
