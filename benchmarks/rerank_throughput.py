"""Reranking throughput: hf-rerank's CrossEncoder vs sentence-transformers' CrossEncoder.predict.

Same checkpoint (the bundled all-MiniLM-L6-v2 encoder with a fresh one-logit head, seeded), the
same DL19 BM25 top-100 pairs (4,300), the same batch size and max length; the two alternate in
one process, ``--rounds`` times each, after one untimed warm-up batch each. hf-rerank runs with
``--precision`` (default auto: bf16 where the CPU/GPU has it natively, else fp32, decided by
``hf_rerank.precision`` and printed with the CPU's flags); sentence-transformers with its default
(fp32). Prints pairs/s of each round, the ratio of the medians, the largest absolute difference
between the two score vectors (logits; sentence-transformers' sigmoid is switched off so both
report the same quantity), and the nDCG@10 of each side's reranked run with the paired t-test
over the queries (the head is untrained, so this checks that speed changed no ranking, not
that the ranking is good).

    .venv/bin/python benchmarks/rerank_throughput.py [--data ../shared/data/trec-dl/dl19] [--precision auto|bf16|fp32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hf_rerank.data.collection import IRCollection
from hf_rerank.evaluation.metrics import evaluate_run
from hf_rerank.evaluation.rerank import merge_scores
from hf_rerank.evaluation.significance import paired_t_test
from hf_rerank.models import CrossEncoder
from hf_rerank.models.resolve import bundled_model_path
from hf_rerank.precision import PrecisionError, choose_precision, describe_hardware
from hf_rerank.training.efficiency.device import device_name

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-dl" / "dl19"


def make_checkpoint(directory: Path, seed: int) -> None:
    """The bundled MiniLM encoder with a seeded, freshly initialised one-logit head."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(bundled_model_path(), num_labels=1)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(bundled_model_path()).save_pretrained(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--run", default="bm25")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs", type=int, help="use only the first N pairs (quick check)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="hf-rerank's precision; auto (default): bf16 where native, else fp32",
    )
    args = parser.parse_args()
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        choice = choose_precision(args.precision, device_type)
    except PrecisionError as exc:
        parser.error(str(exc))
    print(f"precision: {choice.reason}", flush=True)

    from sentence_transformers import CrossEncoder as STCrossEncoder

    collection = IRCollection.from_dir(args.data)
    pairs = collection.candidates(args.run, args.depth).pairs[: args.pairs]
    queries = [collection.queries[q] for q, _ in pairs]
    passages = [collection.corpus[p] for _, p in pairs]
    with tempfile.TemporaryDirectory() as checkpoint:
        make_checkpoint(Path(checkpoint), args.seed)
        ours = CrossEncoder.from_pretrained(checkpoint, max_length=args.max_length, precision=choice.name)
        theirs = STCrossEncoder(
            checkpoint,
            max_length=args.max_length,
            device="cpu" if ours.device.type == "cpu" else None,
            activation_fn=torch.nn.Identity(),
        )
        systems = {
            "sentence-transformers": lambda q, p: theirs.predict(
                list(zip(q, p)), batch_size=args.batch_size, show_progress_bar=False
            ),
            "hf-rerank": lambda q, p: ours.score_pairs(q, p, batch_size=args.batch_size, show_progress=False),
        }
        speeds: dict[str, list[float]] = {name: [] for name in systems}
        scores: dict[str, np.ndarray] = {}
        for name, score in systems.items():
            score(queries[: args.batch_size], passages[: args.batch_size])  # warm-up
        for round_number in range(1, args.rounds + 1):
            for name, score in systems.items():
                start = time.perf_counter()
                scores[name] = np.asarray(score(queries, passages), dtype=np.float32)
                speeds[name].append(len(pairs) / (time.perf_counter() - start))
                print(f"round {round_number} {name:<22} {speeds[name][-1]:8.1f} pairs/s", flush=True)
    medians = {name: statistics.median(values) for name, values in speeds.items()}
    difference = float(np.abs(scores["hf-rerank"] - scores["sentence-transformers"]).max())
    first_stage = collection.run(args.run)
    ndcg = {
        name: evaluate_run(
            collection.qrels, merge_scores(first_stage, pairs, values, args.depth)[0], "trec-dl"
        ).per_query["ndcg@10"]
        for name, values in scores.items()
    }
    qids = sorted(ndcg["hf-rerank"])
    means = {name: statistics.fmean(per_query[q] for q in qids) for name, per_query in ndcg.items()}
    p_value = paired_t_test([ndcg["hf-rerank"][q] for q in qids], [ndcg["sentence-transformers"][q] for q in qids])
    print(
        f"\n{len(pairs)} pairs, batch {args.batch_size}, max length {args.max_length}, "
        f"torch threads {torch.get_num_threads()}, "
        f"hf-rerank dtype {str(ours.dtype).removeprefix('torch.')}, sentence-transformers dtype float32; "
        f"{device_name(ours.device)}; {describe_hardware(ours.device.type)}"
    )
    print(f"{'system':<22} {'median pairs/s':>14} {'nDCG@10':>8}")
    for name, value in medians.items():
        print(f"{name:<22} {value:>14.1f} {means[name]:>8.4f}")
    ratio = medians["hf-rerank"] / medians["sentence-transformers"]
    print(
        f"speed-up {ratio:.2f}x; largest score difference {difference:.4f} (logits); nDCG@10 difference "
        f"{means['hf-rerank'] - means['sentence-transformers']:+.4f} over {len(qids)} queries, "
        f"paired t-test p = {p_value:.3f}"
    )
    print(
        json.dumps(
            {
                "rerank_speedup": round(ratio, 3),
                "max_abs_score_difference": round(difference, 5),
                "pairs": len(pairs),
                "ndcg@10": {name: round(value, 4) for name, value in means.items()},
                "ndcg@10_p_value": round(p_value, 4),
                "precision": choice.name,
                "hardware": describe_hardware(ours.device.type),
            }
        )
    )


if __name__ == "__main__":
    main()
