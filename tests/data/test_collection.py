"""IRCollection: the directory layout, candidates, and the warnings for unscorable input."""

import logging

import pytest

from hf_rerank.data.collection import IRCollection


@pytest.fixture
def collection_dir(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "queries.tsv").write_text("19335\tcats lifespan\nmsmarco_q_1\tdogs\n")
    (tmp_path / "collection.tsv").write_text(
        "p1\tcats live 15 years\nmsmarco_passage_08_24643970\tdogs bark\np3\tother\n"
    )
    (tmp_path / "qrels.txt").write_text("19335 0 p1 3\nmsmarco_q_1 0 msmarco_passage_08_24643970 2\n")
    (tmp_path / "runs" / "bm25.run").write_text(
        "19335 Q0 p3 1 9.0 bm25\n19335 Q0 p1 2 8.0 bm25\n19335 Q0 ghost 3 7.0 bm25\n"
        "msmarco_q_1 Q0 msmarco_passage_08_24643970 1 3.0 bm25\n"
    )
    return tmp_path


def test_reads_directory_layout(collection_dir):
    collection = IRCollection.from_dir(collection_dir, name="tiny")
    assert collection.name == "tiny"
    assert set(collection.queries) == {"19335", "msmarco_q_1"}
    assert collection.qrels["msmarco_q_1"] == {"msmarco_passage_08_24643970": 2}
    assert list(collection.runs) == ["bm25"]
    assert list(collection.run("bm25")["19335"]) == ["p3", "p1", "ghost"]


def test_round_trip(collection_dir, tmp_path):
    collection = IRCollection.from_dir(collection_dir)
    again = IRCollection.from_dir(collection.to_dir(tmp_path / "copy"))
    assert (again.queries, again.corpus, again.qrels) == (collection.queries, collection.corpus, collection.qrels)
    assert {q: list(r) for q, r in again.runs["bm25"].items()} == {
        q: list(r) for q, r in collection.runs["bm25"].items()
    }


def test_candidates_skip_passages_without_text_with_a_counted_warning(collection_dir, caplog):
    collection = IRCollection.from_dir(collection_dir)
    with caplog.at_level(logging.WARNING, logger="hf_rerank"):
        candidates = collection.candidates("bm25", depth=3)
    assert candidates.pairs == [("19335", "p3"), ("19335", "p1"), ("msmarco_q_1", "msmarco_passage_08_24643970")]
    assert candidates.skipped == 1
    assert "bm25.run: 1 of the top-3 candidates name passages with no text" in caplog.text
    assert "passage ghost" in caplog.text
    assert collection.candidates("bm25", depth=1).pairs == [
        ("19335", "p3"),
        ("msmarco_q_1", "msmarco_passage_08_24643970"),
    ]


def test_unknown_run_lists_the_runs(collection_dir):
    with pytest.raises(KeyError, match=r"no run 'tasb' \(runs: bm25\)"):
        IRCollection.from_dir(collection_dir).run("tasb")


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        IRCollection.from_dir(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="queries.tsv"):
        IRCollection.from_dir(tmp_path)
