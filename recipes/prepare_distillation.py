"""Teacher runs and candidates for the offline distillation recipe (``offline_minilm_dl20_distill.yaml``).

Training material (never DL19, the test set), all under ``../shared/data/trec-dl/``:

- ``dl20/``: 54 judged queries. Teacher: ``wsum`` of the min-max normalised scores of the bundled
  all-MiniLM-L6-v2 bi-encoder over BM25's top-100 and of the SPLADE++, TAS-B and ada-002 runs,
  equal weights (ranx fusion). On DL20 this teacher scores nDCG@10 0.7268 against 0.6081 for the
  bi-encoder alone (measured here; DL20 is training data, so choosing on it is fair).
- ``dl22-unjudged/``: 76 more real queries; only BM25 and BM25+RM3 exist there, and fusing them
  with the bi-encoder lowers DL20's nDCG@10 (0.5713 vs 0.6081), so the teacher is the bi-encoder
  over BM25's top-100, min-max normalised per query.

``msmarco-dev-queries/`` (MS MARCO query texts without passages) is not used: its candidates would
need the bi-encoder's dense retrieval over the DL20 + DL22 passages (24,700), and this script's own
scoring encoded passages at 21-22 per second on the 2-core AVX2 CPU it was measured on (fp32, 12,109
passages in 9.3 minutes, the CPU shared with other work): some 19 minutes for that corpus alone,
time the training steps need more.

Every teacher run is min-max normalised per query ([0, 1]), so one loss temperature suits all.

Writes to ``--output`` (default ``outputs/distill-data``)::

    teacher-dl20.run  teacher-dl22.run     TREC runs of teacher scores
    teachers.json                          what each file is, counts, seconds

    .venv/bin/python recipes/prepare_distillation.py [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from hf_rerank.data.formats import write_run
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

    def save(name: str, run: dict, what: str) -> None:
        write_run(args.output / name, run, tag="hf-rerank-teacher")
        record["files"][name] = {"what": what, "queries": len(run), "passages": sum(map(len, run.values()))}

    scored20 = score_run(dl20, "bm25", model, depth=args.depth, batch_size=args.batch_size)
    fused = fuse_runs(
        {"bi-encoder": scored20.run, **{name: dl20.run(name) for name in DL20_FUSED}}, method="wsum", norm="min-max"
    )
    save(
        "teacher-dl20.run",
        normalise_run(fused, "min-max"),
        f"DL20: wsum (equal weights) of min-max normalised {BI_ENCODER} over BM25 top-{args.depth}, "
        + ", ".join(DL20_FUSED),
    )
    scored22 = score_run(dl22, "bm25", model, depth=args.depth, batch_size=args.batch_size)
    save(
        "teacher-dl22.run",
        normalise_run(scored22.run, "min-max"),
        f"DL22 (unjudged): {BI_ENCODER} over BM25 top-{args.depth}, min-max normalised",
    )

    record["seconds"] = round(time.perf_counter() - started, 1)
    (args.output / "teachers.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
