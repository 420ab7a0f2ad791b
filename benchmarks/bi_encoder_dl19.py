"""all-MiniLM-L6-v2 as a bi-encoder reranking DL19 BM25 top-100: hf-rerank vs sentence-transformers.

Both encode the same queries and passages (max length 256, mean pooling, normalised, cosine) and
rerank the same 4,300 candidates; both runs are scored by hf-rerank's ``trec-dl`` metric set.
hf-rerank uses its default precision (bf16 where native), sentence-transformers fp32. Prints
nDCG@10 (and the rest) of each, their difference, and wall times; last line JSON.

    .venv/bin/python benchmarks/bi_encoder_dl19.py [--data ../shared/data/trec-dl/dl19]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hf_rerank.data.collection import IRCollection
from hf_rerank.evaluation.metrics import evaluate_run
from hf_rerank.evaluation.rerank import merge_scores, rerank
from hf_rerank.models import BiEncoder
from hf_rerank.models.resolve import bundled_model_path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-dl" / "dl19"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--run", default="bm25")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer

    collection = IRCollection.from_dir(args.data)
    candidates = collection.candidates(args.run, args.depth).pairs

    start = time.perf_counter()
    reference = SentenceTransformer(str(bundled_model_path()), device="cpu")
    queries = sorted({q for q, _ in candidates})
    passages = sorted({p for _, p in candidates})
    query_vectors = dict(
        zip(
            queries,
            reference.encode(
                [collection.queries[q] for q in queries], batch_size=args.batch_size, normalize_embeddings=True
            ),
        )
    )
    passage_vectors = dict(
        zip(
            passages,
            reference.encode(
                [collection.corpus[p] for p in passages], batch_size=args.batch_size, normalize_embeddings=True
            ),
        )
    )
    st_scores = np.array([query_vectors[q] @ passage_vectors[p] for q, p in candidates], dtype=np.float32)
    st_run, _ = merge_scores(collection.run(args.run), candidates, st_scores, args.depth)
    st_seconds = time.perf_counter() - start

    start = time.perf_counter()
    ours = BiEncoder.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    our_run = rerank(collection, args.run, ours, depth=args.depth, batch_size=args.batch_size, show_progress=False).run
    our_seconds = time.perf_counter() - start

    st_metrics = evaluate_run(collection.qrels, st_run, "trec-dl").means
    our_metrics = evaluate_run(collection.qrels, our_run, "trec-dl").means
    print(
        f"{len(candidates)} pairs ({len(queries)} queries, {len(passages)} passages); hf-rerank dtype "
        f"{str(ours.dtype).removeprefix('torch.')}, sentence-transformers float32"
    )
    print(f"{'metric':<15} {'sentence-tr.':>12} {'hf-rerank':>10} {'difference':>11}")
    for name in st_metrics:
        print(
            f"{name:<15} {st_metrics[name]:>12.4f} {our_metrics[name]:>10.4f} "
            f"{our_metrics[name] - st_metrics[name]:>+11.4f}"
        )
    print(f"{'wall seconds':<15} {st_seconds:>12.1f} {our_seconds:>10.1f}   (model load + encoding + scoring)")
    print(
        json.dumps(
            {
                "st_ndcg@10": round(st_metrics["ndcg@10"], 4),
                "hf_rerank_ndcg@10": round(our_metrics["ndcg@10"], 4),
                "st_seconds": round(st_seconds, 1),
                "hf_rerank_seconds": round(our_seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
