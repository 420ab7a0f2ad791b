"""recipes/prepare_distillation.py on a tiny TREC DL tree with the real bundled bi-encoder: the
teacher files, the MS MARCO dev collection with dense candidates, and files kept when made before."""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "recipes"))

import prepare_distillation  # noqa: E402

from hf_rerank.data.collection import IRCollection  # noqa: E402
from hf_rerank.data.formats import read_run  # noqa: E402
from hf_rerank.errors import UsageError  # noqa: E402

PASSAGES20 = {
    "a": "The capital of France is Paris.",
    "b": "Cats sleep for most of the day.",
    "c": "Paris hosts the Louvre museum.",
    "d": "Rainfall in the Amazon basin.",
}
PASSAGES22 = {"e": "Dogs were domesticated from wolves.", "f": "How to bake sourdough bread.", "a": PASSAGES20["a"]}
DEV_QUERIES = {"m1": "where is the louvre", "m2": "dog ancestry", "m3": "bread recipe", "m4": "cat naps"}
BEST = {"m1": "c", "m2": "e", "m3": "f", "m4": "b"}  # the passage each dev query is about


def write_tree(root: Path) -> Path:
    def tsv(path: Path, rows: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{key}\t{text}\n" for key, text in rows.items()))

    def run(path: Path, ranked: dict[str, list[str]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{q} Q0 {p} {i + 1} {10 - i} r\n" for q, pids in ranked.items() for i, p in enumerate(pids)]
        path.write_text("".join(lines))

    tsv(root / "dl20" / "queries.tsv", {"1": "capital of france", "2": "how long do cats sleep"})
    tsv(root / "dl20" / "collection.tsv", PASSAGES20)
    (root / "dl20" / "qrels.txt").write_text("1 0 a 3\n1 0 b 0\n2 0 b 2\n2 0 d 0\n")
    for name, order in {"bm25": "abcd", "splade_pp": "acbd", "tasb": "cabd", "ada2": "abdc"}.items():
        run(root / "dl20" / "runs" / f"{name}.run", {"1": list(order), "2": list(reversed(order))})
    tsv(root / "dl22-unjudged" / "queries.tsv", {"7": "wolf dogs"})
    tsv(root / "dl22-unjudged" / "collection.tsv", PASSAGES22)
    run(root / "dl22-unjudged" / "runs" / "bm25.run", {"7": ["e", "f", "a"]})
    tsv(root / "msmarco-dev-queries" / "queries.tsv", DEV_QUERIES)
    return root


@pytest.mark.slow
def test_teachers_and_msmarco_dev_candidates_then_kept_when_made_before(tmp_path, caplog):
    data, out = write_tree(tmp_path / "trec-dl"), tmp_path / "out"
    argv = ["--data", str(data), "--output", str(out), "--depth", "3", "--precision", "fp32"]
    record = prepare_distillation.main([*argv, "--msmarco-queries", "3"])
    assert set(record["files"]) == {"teacher-dl20.run", "teacher-dl22.run", "teacher-msmarco.run"}
    assert record["files"]["teacher-msmarco.run"]["queries"] == 3

    dev = IRCollection.from_dir(out / "msmarco-dev-dense")
    teacher = read_run(out / "teacher-msmarco.run")
    assert set(dev.queries) == set(teacher) == set(random.Random(12).sample(sorted(DEV_QUERIES), 3))
    assert not dev.qrels
    corpus = {**PASSAGES20, **PASSAGES22}
    for qid, scored in teacher.items():
        assert dev.queries[qid] == DEV_QUERIES[qid]
        assert len(scored) == 3 and set(scored) <= set(dev.corpus)
        assert (max(scored.values()), min(scored.values())) == (1.0, 0.0)  # min-max per query
        dense = dev.runs["dense"][qid]
        assert sorted(dense, key=dense.get, reverse=True) == sorted(scored, key=scored.get, reverse=True)
        assert max(scored, key=scored.get) == BEST[qid]
    assert all(dev.corpus[pid] == corpus[pid] for pid in dev.corpus)
    assert list((out / "embeddings").glob("corpus-*.pt"))  # the corpus encoding is cached

    before = {path.name: path.stat().st_mtime_ns for path in out.glob("teacher-*.run")}
    caplog.clear()
    caplog.set_level(logging.INFO, logger="prepare_distillation")
    again = prepare_distillation.main([*argv, "--msmarco-queries", "3"])
    assert again["files"] == record["files"]
    assert {path.name: path.stat().st_mtime_ns for path in out.glob("teacher-*.run")} == before
    assert caplog.text.count("kept, made before") == 3
    # another sample remakes only the MS MARCO teacher
    other = prepare_distillation.main([*argv, "--msmarco-queries", "2", "--seed", "5"])
    assert other["files"]["teacher-msmarco.run"]["queries"] == 2
    assert other["files"]["teacher-dl20.run"] == record["files"]["teacher-dl20.run"]

    with pytest.raises(UsageError, match=r"--msmarco-queries must be 1\.\.4"):
        prepare_distillation.main([*argv, "--msmarco-queries", "5", "--seed", "6"])
