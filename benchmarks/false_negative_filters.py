"""How many false negatives do teacher-based filters catch, and how many true negatives do they cost?

Measured on DL20 (training material; DL19 is the test set and is refused here). Candidates: each
query's BM25 top-100 (``--depth``). Teachers: the bundled all-MiniLM-L6-v2 bi-encoder (cosines,
scored by :func:`hf_rerank.mining.teacher.mine_with_teacher`, the code of ``hf-rerank
mine-ce``), and with ``--fusion`` also a min-max wsum (equal weights, ranx) of all DL20 runs.

Setting. Per query, the *positive* is the judged passage of grade >= 2 (TREC DL's relevance
convention) with the highest teacher score (the reference of the relative margin); every other
scored candidate is a would-be negative: judged positives are NOT excluded by their judgments, as
when a training set's labels are sparse (MS MARCO: about one positive per query). A filter
setting (:class:`~hf_rerank.mining.teacher.NegativeFilters` with ``exclude_judged=False``)
then removes some would-be negatives. For each setting, over all queries:

- grade >= 2 caught: judged-relevant would-be negatives the filter removes, of all of them (false
  negatives caught); the same for grade >= 1 (TREC DL's "related" passages included);
- grade 0 lost: judged non-relevant would-be negatives it removes, of all of them (true
  negatives lost); unjudged: the same for passages NIST never judged (unknown either way);
- kept: the negatives that remain.

Grid: no filter; relative margin 0, 0.05, 0.1, 0.2 (threshold ``s+ - |s+| * m``,
sentence-transformers' definition); ceilings at the 99th, 95th and 90th percentile of the
teacher's candidate scores (so the grid means the same for any teacher's scale); rank windows
11-100, 21-100, 51-100 of the teacher's ranking; relative margin 0.1 with window 11-100.

Prints a markdown table per teacher and writes everything to ``--json``:

    nice .venv/bin/python benchmarks/false_negative_filters.py --json out/false_negative_filters.json --fusion
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import atomic_write
from hf_rerank.evaluation.fusion import fuse_runs
from hf_rerank.mining.teacher import (
    NegativeFilters,
    TeacherNegatives,
    filter_with_teacher,
    mine_with_teacher,
    union_candidates,
)
from hf_rerank.models import BiEncoder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec-dl" / "dl20"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
POSITIVE_GRADE = 2
#: What a would-be negative is, by its judgment: (label, test on the grade; None = unjudged).
CLASSES = (
    ("grade>=2", lambda g: g is not None and g >= 2),
    ("grade>=1", lambda g: g is not None and g >= 1),
    ("grade0", lambda g: g == 0),
    ("unjudged", lambda g: g is None),
)


def grid(teacher_scores: list[float]) -> list[tuple[str, NegativeFilters]]:
    """The filter settings (module docstring); ceilings from the percentiles of ``teacher_scores``."""
    settings = [("no filter", NegativeFilters(exclude_judged=False))]
    settings += [
        (f"relative margin {m:g}", NegativeFilters(exclude_judged=False, relative_margin=m))
        for m in (0.0, 0.05, 0.1, 0.2)
    ]
    for percentile in (99, 95, 90):
        ceiling = round(float(np.percentile(teacher_scores, percentile)), 4)
        settings.append(
            (f"max score {ceiling:g} (p{percentile})", NegativeFilters(exclude_judged=False, max_score=ceiling))
        )
    settings += [
        (f"window {first}-100", NegativeFilters(exclude_judged=False, window=(first, 100))) for first in (11, 21, 51)
    ]
    settings.append(
        (
            "relative margin 0.1 + window 11-100",
            NegativeFilters(exclude_judged=False, relative_margin=0.1, window=(11, 100)),
        )
    )
    return settings


def count(mined: TeacherNegatives, qrels) -> dict:
    """Would-be negatives of each class and how many of them the filters removed, over all queries."""
    totals = {label: {"total": 0, "removed": 0} for label, _ in CLASSES}
    kept = 0
    for qid, decided in mined.decisions.items():
        for pid, reason in decided.items():
            grade = qrels.get(qid, {}).get(pid)
            kept += reason is None
            for label, test in CLASSES:
                if test(grade):
                    totals[label]["total"] += 1
                    totals[label]["removed"] += reason is not None
    return {**totals, "kept": kept, "removed": sum(map(len, mined.decisions.values())) - kept}


def measure(name: str, teacher, collection: IRCollection, candidates) -> dict:
    """Every setting of :func:`grid` applied with ``teacher``'s scores; the counts per setting."""
    scores = [teacher[qid][pid] for qid, pids in candidates.items() for pid in pids if pid in teacher.get(qid, {})]
    results = []
    for label, filters in grid(scores):
        mined = filter_with_teacher(
            teacher, candidates, collection.qrels, positive_grade=POSITIVE_GRADE, filters=filters
        )
        results.append({"setting": label, "filters": filters.describe(), **count(mined, collection.qrels)})
    return {
        "teacher": name,
        "queries": len(mined.decisions),
        "queries_without_positive": mined.queries_without_positive,
        "unscored_candidates": mined.unscored,
        "settings": results,
    }


def table(measured: dict) -> str:
    """A markdown table of one teacher's settings."""

    def share(cell: dict) -> str:
        return (
            f"{cell['removed']}/{cell['total']} ({100 * cell['removed'] / cell['total']:.1f}%)"
            if cell["total"]
            else "0/0"
        )

    lines = [
        f"teacher: {measured['teacher']} ({measured['queries']} queries; "
        f"{len(measured['queries_without_positive'])} without a scored grade>=2 positive)",
        "",
        "| filter | removed | grade>=2 caught | grade>=1 caught | grade 0 lost | unjudged removed | kept |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in measured["settings"]:
        lines.append(
            f"| {row['setting']} | {row['removed']} | {share(row['grade>=2'])} | {share(row['grade>=1'])} | "
            f"{share(row['grade0'])} | {share(row['unjudged'])} | {row['kept']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a training collection (default: DL20)")
    parser.add_argument("--run", default="bm25", help="the candidates' run (default: bm25)")
    parser.add_argument("--depth", type=int, default=100, help="candidates per query (default: 100)")
    parser.add_argument(
        "--fusion", action="store_true", help="also measure a min-max wsum of all the collection's runs as teacher"
    )
    parser.add_argument(
        "--precision", default="fp32", help="the model's precision (default: fp32, the same on any CPU)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", required=True, type=Path, help="write the measurements here")
    args = parser.parse_args()
    if args.data.resolve().name == "dl19":
        raise SystemExit(f"--data {args.data}: DL19 is the test set; mine on training data (DL20)")

    collection = IRCollection.from_dir(args.data)
    candidates = union_candidates([collection.run(args.run)], args.depth)
    started = time.perf_counter()
    model = BiEncoder.from_pretrained(MODEL, precision=args.precision)
    scored = mine_with_teacher(
        collection,
        candidates,
        model,
        positive_grade=POSITIVE_GRADE,
        filters=NegativeFilters(exclude_judged=False),
        batch_size=args.batch_size,
        show_progress=False,
    )
    seconds = time.perf_counter() - started
    pairs = sum(map(len, scored.teacher.values()))
    measured = [measure(f"{MODEL} (cosine, {args.precision})", scored.teacher, collection, candidates)]
    if args.fusion:
        names = sorted(collection.runs)
        fused = fuse_runs({name: collection.run(name) for name in names}, method="wsum", norm="min-max")
        measured.append(measure(f"wsum of min-max {', '.join(names)} (equal weights)", fused, collection, candidates))

    print(
        f"{collection.name}: {len(candidates)} queries, top-{args.depth} of {args.run}; positive: the best-scored "
        f"grade>={POSITIVE_GRADE} passage; judged positives NOT excluded. "
        f"{MODEL} scored {pairs} pairs in {seconds:.0f} s.\n"
    )
    for teacher in measured:
        print(table(teacher) + "\n")
    report = {
        "data": str(args.data),
        "run": args.run,
        "depth": args.depth,
        "positive_grade": POSITIVE_GRADE,
        "model_pairs": pairs,
        "model_seconds": round(seconds, 1),
        "teachers": measured,
    }
    with atomic_write(args.json) as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
