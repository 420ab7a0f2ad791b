"""Teacher runs for distillation: names and files merged, one teacher per query."""

import pytest

from hf_rerank.data.collection import IRCollection
from hf_rerank.data.formats import read_run, write_run
from hf_rerank.data.teacher import load_runs, load_teacher


@pytest.fixture
def collection():
    return IRCollection(
        "c",
        {"q1": "a", "q2": "b"},
        {"p1": "x", "p2": "y"},
        runs={"teacher": {"q1": {"p1": 2.0, "p2": 1.0}}, "bm25": {"q2": {"p2": 5.0}}},
    )


def test_names_and_files_merge_with_their_sources(collection, tmp_path):
    write_run(tmp_path / "t.run", {"q2": {"p1": 0.5, "p2": 0.25}})
    teacher = load_teacher(["teacher", str(tmp_path / "t.run")], collection)
    assert teacher.run == {"q1": {"p1": 2.0, "p2": 1.0}, "q2": {"p1": 0.5, "p2": 0.25}}
    assert teacher.sources == [
        {"source": "teacher", "queries": 1, "passages": 2},
        {"source": str(tmp_path / "t.run"), "queries": 1, "passages": 2},
    ]


def test_a_query_with_two_teachers_or_an_unknown_teacher_is_refused(collection, tmp_path):
    write_run(tmp_path / "t.run", {"q1": {"p1": 0.5}})
    with pytest.raises(ValueError, match=r"teacher '.*t.run' scores query 'q1', which 'teacher' scores too"):
        load_teacher(["teacher", str(tmp_path / "t.run")], collection)
    with pytest.raises(KeyError, match="has no run 'absent'"):
        load_teacher(["absent"], collection)
    with pytest.raises(TypeError, match="a list of run names or files"):
        load_teacher("teacher", collection)


def test_load_runs_takes_names_and_files(collection, tmp_path):
    path = tmp_path / "other.run"
    write_run(path, {"q1": {"p2": 10.0, "7": 5.0, "007": 0.0}})
    runs = load_runs(["bm25", str(path)], collection)
    assert list(runs) == ["bm25", str(path)]
    assert runs["bm25"] is collection.runs["bm25"] and runs[str(path)] == read_run(path)
    with pytest.raises(KeyError, match="has no run 'nope'"):
        load_runs(["nope"], collection)
    with pytest.raises(FileNotFoundError, match="--runs bm25: no such run file .a run name needs --data"):
        load_runs(["bm25"])
    with pytest.raises(ValueError, match="--runs: 'bm25' is given twice"):
        load_runs(["bm25", "bm25"], collection)
