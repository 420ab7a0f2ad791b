"""Teacher runs and candidates for the offline distillation recipe (``offline_minilm_dl20_distill.yaml``).

Training material (never DL19, the test set), all under ``../shared/data/trec-dl/``:

- ``dl20/``: 54 judged queries. Teacher: ``wsum`` of the min-max normalised scores of the bundled
  all-MiniLM-L6-v2 bi-encoder over BM25's top-100 and of the SPLADE++, TAS-B and ada-002 runs,
  equal weights (ranx fusion). On DL20 this teacher scores nDCG@10 0.7268 against 0.6081 for the
  bi-encoder alone (measured here; DL20 is training data, so choosing on it is fair).
- ``dl22-unjudged/``: 76 more real queries; only BM25 and BM25+RM3 exist there, and fusing them
  with the bi-encoder lowers DL20's nDCG@10 (0.5713 vs 0.6081), so the teacher is the bi-encoder
  over BM25's top-100, min-max normalised per query.
- ``msmarco-dev-queries/`` (6,980 MS MARCO query texts without passages), only with
  ``--msmarco-queries N``: N of them (sampled with ``--seed``) for query diversity. Their candidates
  are the bi-encoder's dense top-``--depth`` over the DL20 + DL22 passages (24,696, read from
  those two directories only; 59 of them also appear in DL19's collection, MS MARCO passages being
  shared across years, and stay: DL19's queries, judgments and runs are never read), and the
  teacher is the bi-encoder's cosine over them. Encoding that corpus is the cost (about 10
  minutes at ~40 passages/s in fp32 on 2 AVX2 cores); the
  embeddings are cached in ``OUTPUT/embeddings`` for the next run.

Every teacher run is min-max normalised per query ([0, 1]), so one loss temperature suits all. A
teacher file already in ``--output`` whose ``teachers.json`` entry says it was made the same way is
kept, not made again.

Writes to ``--output`` (default ``outputs/distill-data``)::

    teacher-dl20.run  teacher-dl22.run     TREC runs of teacher scores
    teachers.json                          what each file is, counts, seconds
    teacher-msmarco.run  msmarco-dev-dense/   with --msmarco-queries: the teacher, and the collection
                                           (queries, candidate passages, runs/dense.run) to train on

    .venv/bin/python recipes/prepare_distillation.py [--output DIR] [--msmarco-queries N]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "trec-dl"
BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DL20_FUSED = ("splade_pp", "tasb", "ada2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help=f"the TREC DL directory (default: {DATA})")
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / "distill-data", help="where to write")
    parser.add_argument(
        "--depth", type=int, default=100, help="BM25 candidates scored per DL20/DL22 query (default: 100)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--msmarco-queries",
        type=int,
        default=0,
        metavar="N",
        help="also prepare N MS MARCO dev queries with dense candidates over the DL20 + DL22 passages "
        "(default: 0, none; offline_minilm_dl20_distill_msmarco.yaml uses 650)",
    )
    parser.add_argument("--seed", type=int, default=12, help="which MS MARCO dev queries are sampled (default: 12)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from hf_rerank.data.collection import IRCollection
    from hf_rerank.data.formats import atomic_write, write_run
    from hf_rerank.data.sources import load_collection
    from hf_rerank.evaluation.fusion import fuse_runs, normalise_run
    from hf_rerank.inference.scoring import score_run
    from hf_rerank.models.auto import load_reranker

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(levelname)s: %(message)s")
    started = time.perf_counter()
    args.output.mkdir(parents=True, exist_ok=True)
    model = load_reranker(BI_ENCODER, precision=args.precision)
    dl20, dl22 = load_collection(str(args.data / "dl20")), load_collection(str(args.data / "dl22-unjudged"))
    record: dict = {"bi_encoder": BI_ENCODER, "normalisation": "min-max per query (ranx)", "files": {}}
    teachers_json = args.output / "teachers.json"
    previous = json.loads(teachers_json.read_text())["files"] if teachers_json.is_file() else {}

    def make(name: str, what: str, teacher) -> None:
        """Write ``teacher()``'s run min-max normalised as ``name``, unless the same file is there already."""
        if (args.output / name).is_file() and previous.get(name, {}).get("what") == what:
            record["files"][name] = previous[name]
            logging.getLogger("prepare_distillation").info("%s: kept, made before (delete it to remake)", name)
            return
        began = time.perf_counter()
        run = normalise_run(teacher(), "min-max")
        write_run(args.output / name, run, tag="hf-rerank-teacher")
        seconds = round(time.perf_counter() - began, 1)
        record["files"][name] = {
            "what": what,
            "queries": len(run),
            "passages": sum(map(len, run.values())),
            "seconds": seconds,
        }

    def dl20_teacher() -> dict:
        scored = score_run(dl20, "bm25", model, depth=args.depth, batch_size=args.batch_size)
        runs = {"bi-encoder": scored.run, **{name: dl20.run(name) for name in DL20_FUSED}}
        return fuse_runs(runs, method="wsum", norm="min-max")

    def msmarco_teacher() -> dict:
        collection = msmarco_dev_dense(args, model, IRCollection.union(dl20, dl22).corpus)
        collection.to_dir(args.output / "msmarco-dev-dense")
        return collection.runs["dense"]

    make(
        "teacher-dl20.run",
        f"DL20: wsum (equal weights) of min-max normalised {BI_ENCODER} over BM25 top-{args.depth}, "
        + ", ".join(DL20_FUSED),
        dl20_teacher,
    )
    make(
        "teacher-dl22.run",
        f"DL22 (unjudged): {BI_ENCODER} over BM25 top-{args.depth}, min-max normalised",
        lambda: score_run(dl22, "bm25", model, depth=args.depth, batch_size=args.batch_size).run,
    )
    if args.msmarco_queries:
        make(
            "teacher-msmarco.run",
            f"MS MARCO dev ({args.msmarco_queries} queries sampled with seed {args.seed}): {BI_ENCODER}'s dense "
            f"top-{args.depth} over the DL20 + DL22 passages, cosine min-max normalised; their collection: "
            "msmarco-dev-dense/",
            msmarco_teacher,
        )

    record["seconds"] = round(time.perf_counter() - started, 1)
    with atomic_write(teachers_json) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return record


def msmarco_dev_dense(args: argparse.Namespace, model, corpus: dict[str, str]):
    """``args.msmarco_queries`` MS MARCO dev queries sampled with ``args.seed``, as a collection
    whose run ``dense`` is ``model``'s cosine top-``args.depth`` over ``corpus`` and whose corpus is
    the passages that run holds (no qrels)."""
    from hf_rerank.data.collection import IRCollection
    from hf_rerank.data.formats import read_texts
    from hf_rerank.errors import UsageError
    from hf_rerank.inference.dense import dense_retrieve, encode_corpus

    queries = read_texts(args.data / "msmarco-dev-queries" / "queries.tsv", kind="query")
    if not 0 < args.msmarco_queries <= len(queries):
        raise UsageError(
            f"--msmarco-queries must be 1..{len(queries)} (the dev queries there), got {args.msmarco_queries}"
        )
    chosen = random.Random(args.seed).sample(sorted(queries), args.msmarco_queries)
    embeddings = encode_corpus(model, corpus, batch_size=args.batch_size, cache_dir=args.output / "embeddings")
    run = dense_retrieve(
        model, {qid: queries[qid] for qid in chosen}, embeddings, k=args.depth, precision=args.precision
    )
    used = {pid for ranked in run.values() for pid in ranked}
    return IRCollection(
        "msmarco-dev-dense",
        {qid: queries[qid] for qid in chosen},
        {pid: text for pid, text in corpus.items() if pid in used},
        {},
        {"dense": run},
    )


if __name__ == "__main__":
    main()
