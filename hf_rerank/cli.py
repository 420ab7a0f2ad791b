"""``hf-rerank``: the command line. Each subcommand parses arguments and calls library functions."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from hf_rerank.models.inference import PRECISIONS

EXAMPLES = """examples:
  hf-rerank evaluate --data ../shared/data/trec-dl/dl19 --run bm25
      score the BM25 run itself (TREC DL conventions)
  hf-rerank evaluate --data ../shared/data/trec-dl/dl19 --run bm25 \\
      --model sentence-transformers/all-MiniLM-L6-v2 --depth 100 --output out/dl19-minilm
      rerank BM25's top-100 with the bundled all-MiniLM-L6-v2 (bi-encoder, cosine), write
      out/dl19-minilm/metrics.json and out/dl19-minilm/run.trec
  hf-rerank evaluate --data sample --run bm25 --model sentence-transformers/all-MiniLM-L6-v2
      the same on the small sample shipped with the package (a demo, not a benchmark)
"""


def add_evaluate(subparsers) -> None:
    from hf_rerank.evaluation.metrics import METRIC_SETS
    from hf_rerank.models.auto import MODEL_TYPES

    parser = subparsers.add_parser(
        "evaluate",
        help="score a first-stage run, or rerank its top-k with a model and compare",
        description=(
            "Evaluate a first-stage run of a collection; with --model, rerank its top-k with a "
            "cross-encoder or bi-encoder and compare the two with paired significance tests."
        ),
        epilog=EXAMPLES + "\nmetric sets:\n" + "\n".join(f"  {name}: {s.convention}" for name, s in METRIC_SETS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, metavar="DIR_OR_NAME",
                        help="a collection directory (queries.tsv, collection.tsv, qrels.txt, runs/NAME.run), "
                             "'sample' for the bundled sample, or a registered source name")
    parser.add_argument("--run", required=True, metavar="NAME", help="the first-stage run to evaluate (runs/NAME.run)")
    parser.add_argument("--model", metavar="PATH_OR_ID",
                        help="checkpoint directory, Hub id, or id@revision; 'sentence-transformers/all-MiniLM-L6-v2' "
                             "uses the bundled copy. Without it the first-stage run itself is evaluated")
    parser.add_argument("--model-type", choices=MODEL_TYPES, default="auto",
                        help="auto: *ForSequenceClassification checkpoints are cross-encoders, others bi-encoders (default: auto)")
    parser.add_argument("--depth", type=int, default=100, metavar="K", help="rerank (and evaluate) the top-K of the run (default: 100)")
    parser.add_argument("--metrics", choices=sorted(METRIC_SETS), default="trec-dl", help="metric set and convention (default: trec-dl)")
    parser.add_argument("--output", metavar="DIR", help="write DIR/metrics.json and DIR/run.trec")
    parser.add_argument("--batch-size", type=int, default=64, help="pairs (or texts) per forward pass (default: 64)")
    parser.add_argument("--max-length", type=int, help="tokens per input (default: the checkpoint's own limit)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: bf16 where the hardware has it natively, else fp32 (default: auto)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow checkpoints with custom code (e.g. GTE)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    import json

    from hf_rerank.data.sources import load_collection
    from hf_rerank.evaluation.report import evaluate_reranking, write_report
    from hf_rerank.models.auto import load_reranker

    collection = load_collection(args.data)
    model = None
    if args.model:
        started = time.perf_counter()
        model = load_reranker(
            args.model, args.model_type, max_length=args.max_length, device=args.device,
            precision=args.precision, trust_remote_code=args.trust_remote_code,
        )
        logging.getLogger("hf_rerank").info(
            "loaded %s as a %s (%s, max length %d) in %.1f s", args.model, type(model).__name__,
            str(model.dtype).removeprefix("torch."), model.max_length, time.perf_counter() - started,
        )
    report, run = evaluate_reranking(
        collection, args.run, model, model_name=args.model, depth=args.depth, metric_set=args.metrics,
        batch_size=args.batch_size, show_progress=not args.quiet,
    )
    print(report.table())
    if args.output:
        write_report(report, run, args.output)
        print(f"wrote {args.output}/metrics.json and {args.output}/run.trec")
    elif args.quiet:
        print(json.dumps(report.metrics))
    return 0


def add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune a cross-encoder (the same code as recipes/ce_lion.py)",
        description="Fine-tune a cross-encoder reranker from a YAML config plus overrides, then evaluate it. "
                    "Every training argument is a flag: hf-rerank train --config C.yaml --max_steps 20 --seed 1. "
                    "For several processes use: accelerate launch recipes/ce_lion.py --config C.yaml",
        epilog="configs: recipes/configs/*.yaml (paper_*: the first paper's six runs on MS MARCO; offline_*: "
               "DL20 -> DL19; demo_sample.yaml: the bundled sample)",
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="store_true", help="show the training arguments and exit")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from transformers import HfArgumentParser

    from hf_rerank.training.arguments import CrossEncoderTrainingArguments
    from hf_rerank.training.config import parse_args
    from hf_rerank.training.run_cross_encoder import DataArguments, ModelArguments, train_cross_encoder

    parser = HfArgumentParser((ModelArguments, DataArguments, CrossEncoderTrainingArguments), prog="hf-rerank train")
    if args.help:
        parser.print_help()
        return 0
    train_cross_encoder(*parse_args(parser, args.rest))
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
    add_train(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, rest = make_parser().parse_known_args(argv)
    if rest and args.command != "train":
        make_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="hf-rerank: %(levelname)s: %(message)s")
    for noisy in ("httpx", "urllib3", "numba", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from hf_rerank.data.formats import DataFormatError
    from hf_rerank.data.sources import SourceUnavailableError
    from hf_rerank.models.resolve import ModelUnavailableError

    try:
        return args.handler(args)
    except (DataFormatError, SourceUnavailableError, ModelUnavailableError, FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"hf-rerank: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
