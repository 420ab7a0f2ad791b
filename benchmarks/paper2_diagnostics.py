"""Two numbers behind the "why" of the paper2 offline results in docs/results.md, from a finished recipe run.

    .venv/bin/python benchmarks/paper2_diagnostics.py --run outputs/paper2_offline

1. How much of the base model's dense ranks 50-200 on DL20 (the mining window) is judged, and at
   which grade: judged-relevant passages there would be false negatives under MS MARCO-style
   sparse labels. Also the grades of the negatives the ``full_hard`` variant actually mined.
2. How far each variant's non-embedding weights moved from the base: ``||W - W0|| / ||W0||``
   over every non-embedding tensor of the saved (merged) model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors.torch import load_file

from hf_rerank.data.negatives import read_negatives
from hf_rerank.data.sources import load_collection
from hf_rerank.inference.dense import dense_retrieve, encode_corpus
from hf_rerank.models.bi_encoder import BiEncoder
from hf_rerank.models.resolve import resolve_model

BASE = "sentence-transformers/all-MiniLM-L6-v2"


def window_grades(train_data: str, first: int, last: int):
    """Print the grades in the base model's dense window; returns the collection."""
    collection = load_collection(train_data)
    encoder = BiEncoder.from_pretrained(BASE, max_length=256)
    embeddings = encode_corpus(encoder, collection.corpus, show_progress=False)
    queries = {qid: collection.queries[qid] for qid in collection.qrels if qid in collection.queries}
    run = dense_retrieve(encoder, queries, embeddings, k=last, show_progress=False)
    counts = {"judged >= 2": 0, "grade 1": 0, "grade 0": 0, "unjudged": 0}
    for qid, ranked in run.items():
        for pid in list(ranked)[first - 1 : last]:
            grade = collection.qrels[qid].get(pid)
            counts["unjudged" if grade is None else "judged >= 2" if grade >= 2 else f"grade {grade}"] += 1
    total = sum(counts.values())
    print(
        f"base model's dense ranks {first}-{last} over {len(run)} queries ({total} passages): "
        + ", ".join(f"{name} {count} ({count / total:.1%})" for name, count in counts.items())
    )
    return collection


def mined_grades(collection, negatives_file: Path) -> None:
    grades = [collection.qrels[qid].get(pid) for qid, pids in read_negatives(negatives_file).items() for pid in pids]
    print(
        f"mined negatives ({negatives_file}): {len(grades)}; grade 1: {sum(g == 1 for g in grades)}, "
        f"grade 0: {sum(g == 0 for g in grades)}, unjudged: {sum(g is None for g in grades)}"
    )


def weight_drift(run_dir: Path) -> None:
    base = load_file(str(resolve_model(BASE) / "model.safetensors"))
    for variant in sorted(p for p in run_dir.iterdir() if (p / "model.safetensors").is_file() and p.name != "base"):
        tuned = load_file(str(variant / "model.safetensors"))
        moved = total = 0.0
        for name, weights in base.items():
            key = name if name in tuned else name.removeprefix("bert.")
            if "embeddings" in name or key not in tuned:
                continue
            moved += (tuned[key].float() - weights.float()).pow(2).sum().item()
            total += weights.float().pow(2).sum().item()
        print(f"{variant.name}: relative change of the non-embedding weights {(moved / total) ** 0.5:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--run", type=Path, default=Path("outputs/paper2_offline"), help="the recipe's output directory"
    )
    parser.add_argument("--train-data", default="../shared/data/trec-dl/dl20")
    parser.add_argument("--window", type=int, nargs=2, default=[50, 200])
    args = parser.parse_args()
    collection = window_grades(args.train_data, *args.window)
    if (args.run / "full_hard" / "negatives.tsv").is_file():
        mined_grades(collection, args.run / "full_hard" / "negatives.tsv")
    weight_drift(args.run)


if __name__ == "__main__":
    main()
