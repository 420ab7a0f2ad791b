"""``hf-rerank``: the command line. Each subcommand parses arguments and calls library functions."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from hf_rerank.errors import HfRerankError, UsageError
from hf_rerank.precision import PRECISIONS

#: The first line under "examples:": what the placeholder data directories of the examples hold.
DATA_DIRS = """  (data/trec-dl/dl19, data/trec-dl/dl20: your collection directories of TREC DL 2019 and 2020's passage
  task, each holding queries.tsv, collection.tsv, qrels.txt and runs/NAME.run)
"""

EXAMPLES = f"""examples:
{DATA_DIRS}  hf-rerank evaluate --data data/trec-dl/dl19 --run bm25
      score the BM25 run itself (TREC DL conventions)
  hf-rerank evaluate --data data/trec-dl/dl19 --run bm25 \\
      --model sentence-transformers/all-MiniLM-L6-v2 --depth 100 --output out/dl19-minilm
      rerank BM25's top-100 with the bundled all-MiniLM-L6-v2 (bi-encoder, cosine), write
      out/dl19-minilm/metrics.json and out/dl19-minilm/run.trec
  hf-rerank evaluate --data sample --run bm25 --model sentence-transformers/all-MiniLM-L6-v2
      the same on the small sample shipped with the package (a demo, not a benchmark)
"""


def add_metric_set_argument(parser: argparse.ArgumentParser) -> None:
    """Declare ``--metrics NAME``: a set of :data:`~hf_rerank.evaluation.metrics.METRIC_SETS` (default trec-dl)."""
    from hf_rerank.evaluation.metrics import METRIC_SETS

    parser.add_argument(
        "--metrics", choices=sorted(METRIC_SETS), default="trec-dl", help="metric set and convention (default: trec-dl)"
    )


def add_evaluate(subparsers) -> None:
    from hf_rerank.evaluation.metrics import describe_metric_sets

    parser = subparsers.add_parser(
        "evaluate",
        help="score a first-stage run, or rerank its top-k with a model and compare",
        description=(
            "Evaluate a first-stage run of a collection; with --model, rerank its top-k with a "
            "cross-encoder or bi-encoder and compare the two with paired significance tests."
        ),
        epilog=EXAMPLES + "\n" + describe_metric_sets(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="DIR_OR_NAME",
        help="a collection directory (queries.tsv, collection.tsv, qrels.txt, runs/NAME.run), "
        "'sample' for the bundled sample, or a registered source name",
    )
    parser.add_argument("--run", required=True, metavar="NAME", help="the first-stage run to evaluate (runs/NAME.run)")
    parser.add_argument(
        "--depth", type=int, default=100, metavar="K", help="rerank (and evaluate) the top-K of the run (default: 100)"
    )
    add_metric_set_argument(parser)
    parser.add_argument("--output", metavar="DIR", help="write DIR/metrics.json and DIR/run.trec (both or neither)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the metrics.json and run.trec already in --output"
    )
    parser.add_argument(
        "--base-of",
        metavar="RUN_DIR",
        help="--model is the untrained base model of the training run in RUN_DIR: store this evaluation's "
        "comparison with the run's evaluation of the same --data, --run and --depth (model minus base, paired "
        "t-test and randomisation test per metric) in RUN_DIR/metrics.json, where its model card shows it",
    )
    add_model_arguments(parser, required=False, note="Without it the first-stage run itself is evaluated")
    parser.set_defaults(handler=run_evaluate)


def load_scorer(args: argparse.Namespace):
    """The cross-encoder or bi-encoder ``--model`` names (``--model-type``, ``--max-length``, ``--device``,
    ``--precision``, ``--trust-remote-code``), logged with its class, dtype and length limit."""
    from hf_rerank.models.auto import load_reranker

    started = time.perf_counter()
    model = load_reranker(
        args.model,
        args.model_type,
        max_length=args.max_length,
        device=args.device,
        precision=args.precision,
        trust_remote_code=args.trust_remote_code,
    )
    logging.getLogger("hf_rerank").info(
        "loaded %s as a %s (%s, max length %d) in %.1f s",
        args.model,
        type(model).__name__,
        str(model.dtype).removeprefix("torch."),
        model.max_length,
        time.perf_counter() - started,
    )
    return model


def run_evaluate(args: argparse.Namespace) -> int:
    from hf_rerank.data.sources import load_collection
    from hf_rerank.evaluation.report import evaluate_reranking

    check_report_output(args)
    if args.depth < 1:
        raise UsageError(f"--depth must be >= 1, got {args.depth}")
    base_of = base_of_evaluation(args) if args.base_of else None
    collection = load_collection(args.data)
    model = load_scorer(args) if args.model else None
    report, run = evaluate_reranking(
        collection,
        args.run,
        model,
        model_name=args.model,
        depth=args.depth,
        metric_set=args.metrics,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )
    show_report(report, run, args)
    if base_of:
        from hf_rerank.training.base_comparison import store_base_comparison

        store_base_comparison(args.base_of, base_of, report.to_json())
        print(f"stored the comparison with the base model in {args.base_of}/metrics.json (evaluation {base_of!r})")
    return 0


def base_of_evaluation(args: argparse.Namespace) -> str:
    """Before any work: the evaluation of ``--base-of``'s run that this one is the base model's of; raises
    UsageError without ``--model`` or when the run has no evaluation of the same data, run and depth."""
    from pathlib import Path

    from hf_rerank.training.base_comparison import evaluation_matching
    from hf_rerank.training.record import RunRecord

    if not args.model:
        raise UsageError("--base-of needs --model (the base model to evaluate)")
    run_dir = Path(args.base_of)
    record = RunRecord.load(run_dir / "metrics.json")
    return evaluation_matching(record, run_dir, data=args.data, run=args.run, depth=args.depth)


def check_report_output(args: argparse.Namespace) -> None:
    """Before any work: ``--output`` must be a directory (or not exist yet) and hold no report
    unless ``--overwrite``; raises UsageError saying which."""
    from pathlib import Path

    if not args.output:
        return
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: exists and is not a directory")
    existing = [name for name in ("metrics.json", "run.trec") if (output / name).exists()]
    if existing and not args.overwrite:
        raise UsageError(
            f"--output {output}: already holds {' and '.join(existing)}; pass --overwrite to replace them, "
            "or choose another directory"
        )


def show_report(report, run, args: argparse.Namespace) -> None:
    """Print ``report``'s table; write ``--output``'s metrics.json and run.trec, or with ``--quiet``
    print the metrics as JSON."""
    import json

    from hf_rerank.evaluation.report import write_report

    print(report.table())
    if args.output:
        write_report(report, run, args.output)
        print(f"wrote {args.output}/metrics.json and {args.output}/run.trec")
    elif args.quiet:
        print(json.dumps(report.metrics))


TRAIN_COMMANDS = {
    "train": {
        "help": "fine-tune a cross-encoder (the same code as recipes/ce_lion.py)",
        "description": "Fine-tune a cross-encoder reranker from a YAML config plus overrides, then evaluate it. "
        "Every training argument is a flag: hf-rerank train --config C.yaml --max_steps 20 --seed 1. "
        "For several processes use: accelerate launch recipes/ce_lion.py --config C.yaml",
        "epilog": "configs: recipes/configs/*.yaml (paper_*: the first paper's six runs on MS MARCO; offline_*: "
        "DL20 -> DL19; demo_sample.yaml: the bundled sample)",
    },
    "train-embedding": {
        "help": "fine-tune an embedding model (bi-encoder), fully or with LoRA "
        "(the code of recipes/paper2_variants.py)",
        "description": "Fine-tune a bi-encoder from a YAML config plus overrides, then evaluate it "
        "(reranking and dense retrieval) and measure its embedding space. Every training argument is a flag: "
        "hf-rerank train-embedding --config C.yaml --lora_r 16 --negatives mined. The variant configs of "
        "recipes/configs/paper2_*.yaml hold shared settings plus a 'variants' mapping: run those with "
        "python recipes/paper2_variants.py --config ...",
    },
}


def add_train(subparsers, command: str) -> None:
    """Declare ``hf-rerank train`` (a cross-encoder) or ``hf-rerank train-embedding`` (a bi-encoder), with
    the texts of ``TRAIN_COMMANDS[command]``. Only ``-h/--help`` is declared here: :func:`run_train` parses
    the training arguments from what argparse leaves over."""
    parser = subparsers.add_parser(command, **TRAIN_COMMANDS[command], add_help=False)
    parser.add_argument("-h", "--help", action="store_true", help="show the training arguments and exit")
    parser.set_defaults(handler=run_train)


def training_run(command: str) -> tuple[tuple, Callable[..., dict]]:
    """``(argument dataclasses, train function)`` of a train command: ``(ModelArguments, DataArguments,
    CrossEncoderTrainingArguments), train_cross_encoder`` for ``train``, the embedding run's for
    ``train-embedding`` (imported here: they pull in transformers)."""
    if command == "train":
        from hf_rerank.training.arguments import CrossEncoderTrainingArguments
        from hf_rerank.training.run_cross_encoder import DataArguments, ModelArguments, train_cross_encoder

        return (ModelArguments, DataArguments, CrossEncoderTrainingArguments), train_cross_encoder
    from hf_rerank.training.arguments import EmbeddingTrainingArguments
    from hf_rerank.training.run_embedding import EmbeddingDataArguments, EmbeddingModelArguments, train_embedding

    return (EmbeddingModelArguments, EmbeddingDataArguments, EmbeddingTrainingArguments), train_embedding


def run_train(args: argparse.Namespace) -> int:
    """Parse ``--config`` + overrides (``args.rest``) into the dataclasses of ``args.command``'s run
    (:func:`training_run`) and train (``--help``: list them)."""
    from transformers import HfArgumentParser

    from hf_rerank.training.config import parse_args

    dataclasses, train = training_run(args.command)
    parser = HfArgumentParser(dataclasses, prog=f"hf-rerank {args.command}")
    if args.help:
        parser.print_help()
        return 0
    train(*parse_args(parser, args.rest))
    return 0


RETRIEVE_EXAMPLES = f"""examples:
{DATA_DIRS}  hf-rerank retrieve --model sentence-transformers/all-MiniLM-L6-v2 --data data/trec-dl/dl19 \\
      --k 1000 --cache-dir cache/embeddings --output out/dl19-dense
      exact cosine top-1000 over DL19's passages for its 43 judged queries; writes
      out/dl19-dense/metrics.json and out/dl19-dense/run.trec, keeps the corpus embeddings in
      cache/embeddings (a second run with the same model and corpus skips encoding)
  hf-rerank retrieve --model out/my-bi-encoder --data data/trec-dl/dl19 \\
      --data data/trec-dl/dl20
      one search over the union of both corpora (24,884 passages) for all 97 judged queries
  hf-rerank retrieve --model sentence-transformers/all-MiniLM-L6-v2 --data sample --k 100
      the same on the small sample shipped with the package (a demo, not a benchmark)

notes:
  Search is exhaustive (no approximate index): products in bf16 where the hardware has it
  natively (--precision), the best 2k rescored in float32; the run holds float32 cosines, ties
  in corpus order. The cache key hashes the model's weights, tokenizer, pooling, length limit,
  dtype and every passage id and text, so a fine-tuned model never reuses another's embeddings.
"""

MINE_EXAMPLES = f"""examples:
{DATA_DIRS}  hf-rerank mine --model sentence-transformers/all-MiniLM-L6-v2 --data data/trec-dl/dl20 \\
      --window 50 200 --per-query 1 --seed 42 --output out/dl20-negatives.tsv
      for each DL20 query with a judged positive, one passage sampled from the model's dense
      ranks 50..200 (1-based, inclusive) that is not a judged positive (arXiv 2506.18535)
  hf-rerank mine --model sentence-transformers/all-MiniLM-L6-v2 --data sample --window 5 20 \\
      --per-query 3 --output negatives.tsv

output: one 'qid<TAB>pid' line per negative. Every passage judged at or above --positive-grade
is left out, not only the one a training pair uses; judged non-relevant passages stay
candidates. Each query is sampled with its own random.Random("SEED:QID"), so its negatives do
not depend on the other queries.
"""


def add_dense_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``retrieve`` and ``mine``: the model, the data and the search."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="PATH_OR_ID",
        help="a bi-encoder: checkpoint directory, Hub id, or id@revision; "
        "'sentence-transformers/all-MiniLM-L6-v2' uses the bundled copy",
    )
    parser.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="DIR_OR_NAME",
        help="a collection directory, 'sample', or a registered source name; give it several "
        "times to search the union of the collections (passage ids must agree, query ids must not overlap)",
    )
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="keep corpus embeddings in DIR/corpus-<sha256>.pt and reuse them"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="texts per forward pass (default: 128)")
    parser.add_argument("--max-length", type=int, help="tokens per text (default: the checkpoint's own limit)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="encoding and search dtype; auto: bf16 where the hardware has it natively, else fp32 (default: auto)",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow checkpoints with custom code (e.g. GTE)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def load_dense_inputs(args: argparse.Namespace):
    """``(collection, bi_encoder)`` from ``--data`` (unioned when repeated) and ``--model``."""
    from hf_rerank.data.collection import IRCollection
    from hf_rerank.data.sources import load_collection

    collections = [load_collection(data) for data in args.data]
    collection = collections[0] if len(collections) == 1 else IRCollection.union(*collections)
    model = load_bi_encoder(args.model, args)
    logging.getLogger("hf_rerank").info(
        "%s: %d passages, %d queries", collection.name, len(collection.corpus), len(collection.queries)
    )
    return collection, model


def load_bi_encoder(reference: str, args: argparse.Namespace):
    """The bi-encoder ``reference`` names, for dense search (``--max-length``, ``--device``, ``--precision``,
    ``--trust-remote-code``); a cross-encoder checkpoint is a UsageError (it cannot embed texts)."""
    from hf_rerank.models.auto import detect_model_type
    from hf_rerank.models.bi_encoder import BiEncoder
    from hf_rerank.models.resolve import resolve_model

    path = resolve_model(reference)
    if detect_model_type(path) == "cross-encoder":
        raise UsageError(
            f"{reference} is a cross-encoder checkpoint; dense retrieval needs a bi-encoder (it embeds texts)"
        )
    started = time.perf_counter()
    model = BiEncoder.from_pretrained(
        path,
        max_length=args.max_length,
        device=args.device,
        precision=args.precision,
        trust_remote_code=args.trust_remote_code,
    )
    logging.getLogger("hf_rerank").info(
        "loaded %s as a BiEncoder (%s, %s pooling, max length %d) in %.1f s",
        reference,
        str(model.dtype).removeprefix("torch."),
        model.pooling,
        model.max_length,
        time.perf_counter() - started,
    )
    return model


def add_retrieve(subparsers) -> None:
    from hf_rerank.evaluation.metrics import describe_metric_sets

    parser = subparsers.add_parser(
        "retrieve",
        help="dense-retrieve with a bi-encoder over a collection's corpus and evaluate the run",
        description="Embed a collection's corpus with a bi-encoder (optionally cached), retrieve the exact "
        "cosine top-k for every judged query, and evaluate the run.",
        epilog=RETRIEVE_EXAMPLES + "\n" + describe_metric_sets(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dense_arguments(parser)
    parser.add_argument("--k", type=int, default=1000, help="passages retrieved per query (default: 1000)")
    add_metric_set_argument(parser)
    parser.add_argument(
        "--chunk-size", type=int, default=65536, help="passages per matrix product, bounds memory (default: 65536)"
    )
    parser.add_argument("--output", metavar="DIR", help="write DIR/metrics.json and DIR/run.trec (both or neither)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the metrics.json and run.trec already in --output"
    )
    parser.set_defaults(handler=run_retrieve)


def run_retrieve(args: argparse.Namespace) -> int:
    from hf_rerank.evaluation.retrieve import evaluate_retrieval

    check_report_output(args)
    collection, model = load_dense_inputs(args)
    report, run = evaluate_retrieval(
        collection,
        model,
        model_name=args.model,
        k=args.k,
        metric_set=args.metrics,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        precision=args.precision,
        cache_dir=args.cache_dir,
        show_progress=not args.quiet,
    )
    show_report(report, run, args)
    return 0


def add_mine(subparsers) -> None:
    parser = subparsers.add_parser(
        "mine",
        help="mine hard negatives from a bi-encoder's dense ranking (qid<TAB>pid file)",
        description="For each query with a judged positive, sample passages from a rank window of the "
        "bi-encoder's exact dense ranking, leaving out every judged positive.",
        epilog=MINE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dense_arguments(parser)
    parser.add_argument(
        "--window",
        type=int,
        nargs=2,
        default=(50, 200),
        metavar=("FIRST", "LAST"),
        help="ranks to sample from, 1-based and inclusive (default: 50 200)",
    )
    parser.add_argument("--per-query", type=int, default=1, help="negatives per query (default: 1)")
    parser.add_argument(
        "--positive-grade",
        type=int,
        default=1,
        help="judged grades at or above this are positives, never negatives (default: 1)",
    )
    parser.add_argument("--seed", type=int, default=42, help="sampling seed (default: 42)")
    parser.add_argument("--output", required=True, metavar="FILE", help="write the negatives here (qid<TAB>pid lines)")
    parser.set_defaults(handler=run_mine)


def run_mine(args: argparse.Namespace) -> int:
    from hf_rerank.data.negatives import write_negatives
    from hf_rerank.mining.dense import mine_hard_negatives

    collection, model = load_dense_inputs(args)
    negatives = mine_hard_negatives(
        model,
        collection,
        window=tuple(args.window),
        per_query=args.per_query,
        positive_grade=args.positive_grade,
        seed=args.seed,
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        precision=args.precision,
        show_progress=not args.quiet,
    )
    write_negatives(negatives, args.output)
    print(
        f"{sum(map(len, negatives.values()))} negatives for {len(negatives)} queries of {collection.name} "
        f"(ranks {args.window[0]}-{args.window[1]}, seed {args.seed}): wrote {args.output}"
    )
    return 0


SCORE_EXAMPLES = f"""examples:
{DATA_DIRS}  hf-rerank score --model sentence-transformers/all-MiniLM-L6-v2 --data data/trec-dl/dl20 \\
      --run bm25 --depth 100 --output teachers/dl20-bm25-minilm.run
      the bundled all-MiniLM-L6-v2's cosines over DL20's BM25 top-100 (5,400 pairs), a teacher for
      distillation (DL20 is training material; DL19 is the test set, never a teacher's input)
  hf-rerank score --model out/my-cross-encoder --data sample --run bm25 --depth 20 --output sample-ce.run
      a fine-tuned cross-encoder's logits over the sample's BM25 top-20

output: a TREC run 'qid Q0 pid rank score tag', one line per scored pair, scores raw (a
cross-encoder's logit, a bi-encoder's cosine; higher = more relevant; per-query normalisation is
the loss's job) and in full precision, written atomically. The scores are the ones 'hf-rerank
evaluate' ranks by (the same scoring code). Candidates without a passage text are left out, not
given a made-up score; the summary says how many.
"""

FUSE_EXAMPLES = f"""examples:
{DATA_DIRS}  hf-rerank fuse --data data/trec-dl/dl20 --runs bm25 tasb splade_pp --method wsum \\
      --norm min-max --weights 0.2 0.4 0.4 --output teachers/dl20-fused.run
      per query, each run's scores min-max normalised, then 0.2 x bm25 + 0.4 x tasb + 0.4 x splade_pp
  hf-rerank fuse --runs a.run b.run --method rrf --norm none --output ab.run
      reciprocal rank fusion (k = 60) of two run files

Fusion and normalisation are ranx's (ranx.fuse). Methods: wsum, wmnz, mixed, w_bordafuse,
w_condorcet (weighted: --weights, default equal), rrf (--rrf-k), combsum, combmnz, combmax,
combmin, combmed, combanz, isr, log_isr, bordafuse, condorcet. Each input run is read in
trec_eval's order (ties: passage id descending); a passage missing from a run gets nothing from
it. The runs must cover the same queries. Output: a TREC run of the fused scores (higher = more
relevant), full precision, written atomically.
"""

MINE_CE_EXAMPLES = f"""examples:
{DATA_DIRS}  hf-rerank mine-ce --data data/trec-dl/dl20 --model sentence-transformers/all-MiniLM-L6-v2 \\
      --runs bm25 tasb --depth 100 --relative-margin 0.1 --output out/dl20-mined.run \\
      --negatives out/dl20-negatives.tsv
      candidates: the union of DL20's BM25 and TAS-B top-100; teacher: the bundled all-MiniLM-L6-v2;
      drops judged positives and every candidate scored above 0.9 x the query's best judged
      positive's cosine (s - |s| x 0.1)
  hf-rerank mine-ce --data data/trec-dl/dl20 --teacher-run teachers/dl20-fused.run \\
      --runs bm25 --window 11 100 --max-score 0.8 --output out/dl20-mined.run
      the teacher is a run file ('hf-rerank fuse' or 'hf-rerank score' output): no model is loaded
  hf-rerank mine-ce --data sample --model sentence-transformers/all-MiniLM-L6-v2 \\
      --retriever sentence-transformers/all-MiniLM-L6-v2 --depth 30 --relative-margin 0.05 --output sample.run
      candidates from dense retrieval (the search of 'hf-rerank retrieve')

filters (each optional, combinable; a removal counts under the first that applies, in this order):
  judged positives (grade >= --positive-grade) are never negatives (always on);
  --window FIRST LAST  keep ranks FIRST..LAST (1-based, inclusive) of the teacher's ranking of the candidates;
  --max-score X        drop a candidate scored above X;
  --relative-margin M  drop a candidate scored above s - |s| x M, s = the query's highest teacher score
                       among its judged positives (sentence-transformers' definition: (1 - M) x s for
                       s >= 0, still below s when s < 0); not applied to a query with no scored positive.

output (--output): a TREC run with, per query, every judged positive and every kept negative,
each with its raw teacher score; tell them apart with the qrels (grade >= --positive-grade). It is
both the mined negatives and the teacher scores for distillation. --negatives also writes the kept
negatives as 'qid<TAB>pid' lines (the format of 'hf-rerank mine'), in teacher order.
"""


def check_output_file(path: str | None, overwrite: bool, option: str = "--output") -> None:
    """Before any work: refuse a file ``path`` that exists unless ``overwrite``, and a directory always."""
    from pathlib import Path

    if path is None:
        return
    if Path(path).is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file name")
    if Path(path).exists() and not overwrite:
        raise UsageError(f"{option} {path}: already exists; pass --overwrite to replace it")


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool, note: str = "") -> None:
    """``--model`` (a cross-encoder or bi-encoder) and the options that load and run it (``evaluate``,
    ``score``, ``mine-ce``); ``note`` ends ``--model``'s help."""
    from hf_rerank.models.auto import MODEL_TYPES

    parser.add_argument(
        "--model",
        required=required,
        metavar="PATH_OR_ID",
        help="checkpoint directory, Hub id, or id@revision; 'sentence-transformers/all-MiniLM-L6-v2' "
        "uses the bundled copy" + (f". {note}" if note else ""),
    )
    parser.add_argument(
        "--model-type",
        choices=MODEL_TYPES,
        default="auto",
        help="auto: *ForSequenceClassification checkpoints are cross-encoders, others bi-encoders (default: auto)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="pairs (or texts) per forward pass (default: 64)")
    parser.add_argument("--max-length", type=int, help="tokens per input (default: the checkpoint's own limit)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 where the hardware has it natively, else fp32 (default: auto)",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow checkpoints with custom code (e.g. GTE)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_score(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="write a model's scores over a run's top-k as a TREC run (teacher scores for distillation)",
        description="Score the top-k candidates of a collection's run with a cross-encoder or bi-encoder, as "
        "'hf-rerank evaluate' does, and write the raw scores as a TREC run file.",
        epilog=SCORE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="DIR_OR_NAME",
        help="a collection directory, 'sample' for the bundled sample, or a registered source name",
    )
    parser.add_argument(
        "--run", required=True, metavar="NAME", help="the run whose candidates to score (runs/NAME.run)"
    )
    parser.add_argument("--depth", type=int, default=100, metavar="K", help="score the top-K of the run (default: 100)")
    parser.add_argument("--output", required=True, metavar="FILE", help="the TREC run file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    add_model_arguments(parser, required=True)
    parser.set_defaults(handler=run_score)


def run_score(args: argparse.Namespace) -> int:
    from hf_rerank.data.formats import write_run
    from hf_rerank.data.sources import load_collection
    from hf_rerank.inference.scoring import score_run

    check_output_file(args.output, args.overwrite)
    if args.depth < 1:
        raise UsageError(f"--depth must be >= 1, got {args.depth}")
    collection = load_collection(args.data)
    collection.run(args.run)  # an unknown run is an error before the model loads
    model = load_scorer(args)
    teacher = score_run(
        collection, args.run, model, depth=args.depth, batch_size=args.batch_size, show_progress=not args.quiet
    )
    write_run(args.output, teacher.run, tag=args.model.replace(" ", "_").replace("/", "_"))
    kind = "logits" if type(model).__name__ == "CrossEncoder" else "cosines"
    print(
        f"wrote {args.output}: {teacher.pairs} scores ({kind} of {args.model}, {type(model).__name__}, "
        f"{str(model.dtype).removeprefix('torch.')}) for {len(teacher.run)} queries x the top-{args.depth} of "
        f"{collection.name}/{args.run}"
    )
    if teacher.skipped:
        print(f"  {teacher.skipped} candidates have no passage text and are left out")
    if teacher.queries_without_text:
        print(
            f"  {len(teacher.queries_without_text)} run queries have no text and are left out: "
            f"{', '.join(teacher.queries_without_text[:10])}"
        )
    return 0


def add_fuse(subparsers) -> None:
    from hf_rerank.evaluation.fusion import FUSION_METHODS, NORMALISATIONS

    parser = subparsers.add_parser(
        "fuse",
        help="fuse runs with ranx (wsum, rrf, CombSUM, ...) into a TREC run (a teacher, or candidates)",
        description="Normalise each run per query and fuse them with ranx; write the fused run.",
        epilog=FUSE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", metavar="DIR_OR_NAME", help="the collection whose runs --runs names (not needed for run files)"
    )
    parser.add_argument(
        "--runs",
        required=True,
        nargs="+",
        metavar="NAME_OR_FILE",
        help="runs to fuse: names of --data's runs or paths to TREC run files; one run is only "
        "normalised per query (--norm), e.g. to put a teacher on [0, 1]",
    )
    parser.add_argument("--method", choices=list(FUSION_METHODS), default="wsum", help="fusion method (default: wsum)")
    parser.add_argument(
        "--norm",
        choices=NORMALISATIONS,
        default="min-max",
        help="per-query normalisation before fusing (default: min-max)",
    )
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        metavar="W",
        help="one weight per run, for weighted methods (default: equal weights 1/n)",
    )
    parser.add_argument("--rrf-k", type=int, metavar="K", help="rrf's k (default: 60)")
    parser.add_argument("--output", required=True, metavar="FILE", help="the TREC run file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.set_defaults(handler=run_fuse)


def run_fuse(args: argparse.Namespace) -> int:
    from hf_rerank.data.formats import write_run
    from hf_rerank.data.sources import load_collection
    from hf_rerank.data.teacher import load_runs
    from hf_rerank.evaluation.fusion import WEIGHTED_METHODS, fuse_runs, normalise_run

    check_output_file(args.output, args.overwrite)
    collection = load_collection(args.data) if args.data else None
    runs = load_runs(args.runs, collection)
    if len(runs) == 1:
        if args.weights or args.rrf_k:
            raise UsageError("--weights and --rrf-k fuse several runs; one run is only normalised")
        fused = normalise_run(next(iter(runs.values())), args.norm)
        write_run(args.output, fused, tag=f"norm-{args.norm}")
        print(
            f"wrote {args.output}: {sum(map(len, fused.values()))} scores for {len(fused)} queries "
            f"({args.runs[0]}, {args.norm} normalisation per query)"
        )
        return 0
    fused = fuse_runs(runs, method=args.method, norm=args.norm, weights=args.weights, rrf_k=args.rrf_k)
    write_run(args.output, fused, tag=f"fuse-{args.method}")
    if args.method in WEIGHTED_METHODS:
        weights = args.weights or [1 / len(runs)] * len(runs)
        how = f"{args.method} with weights {', '.join(f'{w:g}' for w in weights)}"
    elif args.method == "rrf":
        how = f"rrf with k = {args.rrf_k or 60}"
    else:
        how = args.method
    print(
        f"wrote {args.output}: {sum(map(len, fused.values()))} fused scores for {len(fused)} queries "
        f"({how} of {', '.join(runs)}, {args.norm} normalisation)"
    )
    return 0


def add_mine_ce(subparsers) -> None:
    parser = subparsers.add_parser(
        "mine-ce",
        help="mine hard negatives for cross-encoders: candidates from runs or dense retrieval, rescored by a "
        "teacher, false negatives filtered (a teacher run file)",
        description="Take candidates per query (the union of runs' top-k, or a bi-encoder's dense top-k), score "
        "them and the judged positives with a teacher (a cross-encoder, a bi-encoder, or a teacher run "
        "file), drop likely false negatives, and write positives and kept negatives with their "
        "teacher scores.",
        epilog=MINE_CE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="DIR_OR_NAME",
        help="a collection directory, 'sample', or a registered source name (texts and qrels)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--runs",
        nargs="+",
        metavar="NAME_OR_FILE",
        help="candidates: the union of the top --depth of these runs (names of --data's runs or run files)",
    )
    source.add_argument("--retriever", metavar="PATH_OR_ID", help="candidates: this bi-encoder's dense top --depth")
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="with --retriever: keep corpus embeddings in DIR and reuse them"
    )
    parser.add_argument(
        "--depth", type=int, default=100, metavar="K", help="candidates per run (or retrieved) per query (default: 100)"
    )
    parser.add_argument(
        "--teacher-run", metavar="FILE", help="take teacher scores from this TREC run file instead of a --model"
    )
    parser.add_argument(
        "--positive-grade",
        type=int,
        default=1,
        help="judged grades at or above this are positives, never negatives (default: 1)",
    )
    parser.add_argument(
        "--window",
        type=int,
        nargs=2,
        metavar=("FIRST", "LAST"),
        help="keep ranks FIRST..LAST of the teacher's ranking of the candidates (1-based, inclusive)",
    )
    parser.add_argument("--max-score", type=float, metavar="X", help="drop candidates whose teacher score is above X")
    parser.add_argument(
        "--relative-margin",
        type=float,
        metavar="M",
        help="drop candidates scored above s - |s| x M, s: the query's best judged positive's teacher score",
    )
    parser.add_argument(
        "--output", required=True, metavar="FILE", help="the TREC run file to write (positives and kept negatives)"
    )
    parser.add_argument("--negatives", metavar="FILE", help="also write the kept negatives as qid<TAB>pid lines")
    parser.add_argument("--overwrite", action="store_true", help="replace --output and --negatives if they exist")
    add_model_arguments(parser, required=False)
    parser.set_defaults(handler=run_mine_ce)


def run_mine_ce(args: argparse.Namespace) -> int:
    from hf_rerank.data.formats import read_run, write_run
    from hf_rerank.data.negatives import write_negatives
    from hf_rerank.data.sources import load_collection
    from hf_rerank.data.teacher import load_runs
    from hf_rerank.mining.teacher import (
        NegativeFilters,
        dense_candidates,
        filter_with_teacher,
        mine_with_teacher,
        union_candidates,
    )

    if bool(args.model) == bool(args.teacher_run):
        raise UsageError("give the teacher as either --model or --teacher-run (one of them)")
    if args.cache_dir and not args.retriever:
        raise UsageError("--cache-dir caches --retriever's corpus embeddings; it needs --retriever")
    if args.depth < 1:
        raise UsageError(f"--depth must be >= 1, got {args.depth}")
    check_output_file(args.output, args.overwrite)
    check_output_file(args.negatives, args.overwrite, "--negatives")
    filters = NegativeFilters(
        window=tuple(args.window) if args.window else None,
        max_score=args.max_score,
        relative_margin=args.relative_margin,
    )
    collection = load_collection(args.data)
    teacher_run = read_run(args.teacher_run) if args.teacher_run else None
    if args.runs:
        candidates = union_candidates(list(load_runs(args.runs, collection).values()), args.depth)
        origin = f"the union of the top-{args.depth} of {', '.join(args.runs)}"
    else:
        retriever = load_bi_encoder(args.retriever, args)
        candidates = dense_candidates(
            retriever,
            collection,
            args.depth,
            cache_dir=args.cache_dir,
            batch_size=args.batch_size,
            precision=args.precision,
            show_progress=not args.quiet,
        )
        origin = f"the dense top-{args.depth} of {args.retriever}"
    if teacher_run is not None:
        mined = filter_with_teacher(
            teacher_run, candidates, collection.qrels, positive_grade=args.positive_grade, filters=filters
        )
        teacher = args.teacher_run
    else:
        model = load_scorer(args)
        mined = mine_with_teacher(
            collection,
            candidates,
            model,
            positive_grade=args.positive_grade,
            filters=filters,
            batch_size=args.batch_size,
            show_progress=not args.quiet,
        )
        teacher = f"{args.model} ({type(model).__name__})"
    run = mined.run()
    write_run(args.output, run, tag="mine-ce")
    if args.negatives:
        write_negatives({qid: list(scores) for qid, scores in mined.negatives.items()}, args.negatives)
    print(
        f"wrote {args.output}: {sum(map(len, run.values()))} teacher scores for {len(run)} queries of "
        f"{collection.name} (candidates: {origin}; teacher: {teacher})"
        + (f"; kept negatives also in {args.negatives}" if args.negatives else "")
    )
    for line in mined.summary():
        print(f"  {line}")
    return 0


def add_card(subparsers) -> None:
    parser = subparsers.add_parser(
        "card",
        help="write a run's model card (README.md with Hub metadata, figures)",
        description="Write OUTPUT_DIR/README.md (YAML metadata with model-index, usage, evaluation protocol and "
        "table, training details, training-dynamics figure) from what a training run wrote.",
        epilog="examples:\n"
        "  hf-rerank card outputs/offline_minilm_dl20_lion\n"
        "  hf-rerank card outputs/x --into /tmp/card --license apache-2.0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="a training run's output directory")
    parser.add_argument("--into", metavar="DIR", help="write the card there (default: OUTPUT_DIR)")
    add_card_options(parser)
    parser.set_defaults(handler=run_card)


def add_card_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        choices=("auto", "cross-encoder", "embedding"),
        default="auto",
        help="auto: the kind the run recorded in its metrics.json (default: auto)",
    )
    parser.add_argument(
        "--license", help="licence to declare (default: the base model's, read from its card when on this machine)"
    )
    parser.add_argument("--language", nargs="+", default=["en"], help="language code(s) of the data (default: en)")


def run_card(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hf_rerank.hub.render import write_model_card
    from hf_rerank.hub.run_dir import load_record

    kind = load_record(Path(args.output_dir)).kind if args.kind == "auto" else args.kind
    path = write_model_card(args.output_dir, kind=kind, license=args.license, language=args.language, into=args.into)
    print(f"wrote {path}")
    return 0


def add_publish(subparsers) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="push a training run (model, card, figures; optionally its checkpoints) to the Hugging Face Hub",
        description="Create the repository (private unless --public) and push the run's final model, a freshly "
        "rendered model card and its figures in one commit; with --checkpoints, each checkpoint-<step>/ "
        "to its own branch. An existing repository whose main branch holds files is refused unless "
        "--allow-overwrite. The token comes from HF_TOKEN or `hf auth login` and is never printed.",
        epilog="examples:\n"
        "  hf-rerank publish outputs/offline_minilm_dl20_lion --repo-id me/minilm-dl20-lion\n"
        "  hf-rerank publish outputs/run --repo-id me/run --checkpoints --dry-run /tmp/tree   # nothing is sent",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help="a training run's output directory")
    parser.add_argument("--repo-id", required=True, metavar="ID", help="owner/name (or name, in the token's namespace)")
    parser.add_argument("--public", action="store_true", help="create the repository public (default: private)")
    parser.add_argument(
        "--allow-overwrite", action="store_true", help="replace the files of a repository that already has some"
    )
    parser.add_argument(
        "--checkpoints", action="store_true", help="also push each checkpoint-<step>/ to branch checkpoint-<step>"
    )
    parser.add_argument(
        "--dry-run", metavar="DIR", help="write the trees that would be pushed to DIR/<branch>/ and send nothing"
    )
    add_card_options(parser)
    parser.set_defaults(handler=run_publish)


def run_publish(args: argparse.Namespace) -> int:
    from hf_rerank.hub.errors import PublishError
    from hf_rerank.hub.publish import publish

    try:
        result = publish(
            args.path,
            args.repo_id,
            private=not args.public,
            allow_overwrite=args.allow_overwrite,
            checkpoints=args.checkpoints,
            dry_run=args.dry_run,
            kind=None if args.kind == "auto" else args.kind,
            license=args.license,
            language=args.language,
        )
    except PublishError as error:
        print(f"hf-rerank: error: {error}", file=sys.stderr)
        return 2
    for upload in result.uploads:
        where = f"{args.dry_run}/{upload.revision}" if args.dry_run else f"{result.url}/tree/{upload.revision}"
        print(f"{'would push' if args.dry_run else 'pushed'} {len(upload.files)} files to {upload.revision}: {where}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-rerank",
        description="Fine-tune, evaluate and publish neural rerankers with IR metrics people trust.",
        epilog="Run 'hf-rerank COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_evaluate(subparsers)
    add_train(subparsers, "train")
    add_train(subparsers, "train-embedding")
    add_retrieve(subparsers)
    add_mine(subparsers)
    add_score(subparsers)
    add_fuse(subparsers)
    add_mine_ce(subparsers)
    add_card(subparsers)
    add_publish(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``hf-rerank`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status: the command's,
    or 2 after printing an :class:`~hf_rerank.errors.HfRerankError` as one line ``hf-rerank: error: ...``.
    Any other exception is a bug and propagates with its traceback."""
    args, rest = make_parser().parse_known_args(argv)
    if rest and args.command not in ("train", "train-embedding"):
        make_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="hf-rerank: %(levelname)s: %(message)s"
    )
    for noisy in ("httpx", "urllib3", "numba", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except HfRerankError as error:  # the user's input; anything else is a bug and keeps its traceback
        print(f"hf-rerank: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
