"""Readers and writers: round trips, string ids, and a clear error for every bad input."""

import os

import pytest

from hf_rerank.data.formats import (
    DataFormatError,
    atomic_write,
    read_jsonl,
    read_qrels,
    read_run,
    read_texts,
    read_tsv,
    write_qrels,
    write_run,
    write_tsv,
)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_round_trip_keeps_string_ids(tmp_path):
    texts = {
        "19335": "anthropological definition of environment",
        "msmarco_passage_08_24643970": "a  passage\twith tab",
    }
    write_tsv(tmp_path / "q.tsv", texts)
    back = read_tsv(tmp_path / "q.tsv")
    assert list(back) == ["19335", "msmarco_passage_08_24643970"]
    assert back["msmarco_passage_08_24643970"] == "a passage with tab"
    assert all(isinstance(key, str) for key in back)


def test_jsonl_joins_title_and_text(tmp_path):
    path = write(
        tmp_path / "corpus.jsonl",
        '{"_id": 7, "title": "Cats", "text": "live 15 years"}\n{"_id": "d2", "text": "no title"}\n',
    )
    assert read_jsonl(path) == {"7": "Cats live 15 years", "d2": "no title"}
    out = write(tmp_path / "out.jsonl", '{"_id": "a", "title": "", "text": "x"}\n')
    assert read_texts(out) == {"a": "x"}


def test_qrels_and_run_round_trip(tmp_path):
    qrels = {"19335": {"msmarco_passage_08_24643970": 3, "1017759": 0}}
    write_qrels(tmp_path / "qrels.txt", qrels)
    assert read_qrels(tmp_path / "qrels.txt") == qrels
    run = {"19335": {"b": 2.0, "a": 5.5, "c": -1.0}}
    write_run(tmp_path / "x.run", run)
    back = read_run(tmp_path / "x.run")
    assert list(back["19335"]) == ["a", "b", "c"]
    assert back["19335"]["a"] == pytest.approx(5.5)


def test_run_ties_follow_trec_eval_not_the_rank_column(tmp_path):
    # trec_eval sorts by score, then docno descending, and ignores ranks: x (2.0), then z, y, a (1.0)
    path = write(tmp_path / "r.run", "1 Q0 a 1 1.0 t\n1 Q0 y 2 1.0 t\n1 Q0 z 3 1.0 t\n1 Q0 x 4 2.0 t\n")
    assert list(read_run(path)["1"]) == ["x", "z", "y", "a"]


def test_written_runs_keep_every_digit_and_read_back_in_the_same_order(tmp_path):
    run = {"q": {"a": 0.12345671, "b": 0.12345674, "c": 0.5, "d": 0.5}}  # equal to 6 decimals, not equal
    write_run(tmp_path / "x.run", run)
    lines = (tmp_path / "x.run").read_text().splitlines()
    assert [line.split()[2:5] for line in lines] == [
        ["d", "1", "0.5"],
        ["c", "2", "0.5"],
        ["b", "3", "0.12345674"],
        ["a", "4", "0.12345671"],
    ]
    assert read_run(tmp_path / "x.run") == run and list(read_run(tmp_path / "x.run")["q"]) == ["d", "c", "b", "a"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_are_never_written(tmp_path, bad):
    with pytest.raises(ValueError, match=f"not written: query 'q', passage 'b' has score {bad!r}"):
        write_run(tmp_path / "x.run", {"q": {"a": 1.0, "b": bad}})
    assert not (tmp_path / "x.run").exists()


def test_a_byte_order_mark_is_dropped_by_every_reader(tmp_path):
    bom = "\ufeff"
    assert read_tsv(write(tmp_path / "q.tsv", bom + "19335\tcats\n")) == {"19335": "cats"}
    assert read_jsonl(write(tmp_path / "c.jsonl", bom + '{"_id": "p1", "text": "x"}\n')) == {"p1": "x"}
    assert read_qrels(write(tmp_path / "qrels.txt", bom + "19335 0 p1 2\n")) == {"19335": {"p1": 2}}
    assert read_run(write(tmp_path / "r.run", bom + "19335 Q0 p1 1 3.5 t\n")) == {"19335": {"p1": 3.5}}


@pytest.mark.parametrize(
    ("reader", "content", "line", "words"),
    [
        (read_tsv, "1\tok\n2 no tab here\n", 2, "no tab"),
        (read_tsv, "1\tok\n2\t   \n", 2, "empty text text for id '2'"),
        (read_tsv, "1\tok\n1\tagain\n", 2, "duplicate text id '1' (first on line 1)"),
        (read_jsonl, '{"_id": "1", "text": "a"}\n{"_id": "2", "text": \n', 2, "invalid JSON"),
        (read_jsonl, '{"id": "1", "text": "a"}\n', 1, "'_id' and 'text'"),
        (read_qrels, "1 0 a 1\n1 0 b\n", 2, "expected 4 fields"),
        (read_qrels, "1 0 a 1\n1 0 b 2.5\n", 2, "grade must be an integer, found '2.5'"),
        (read_qrels, "1 0 a high\n", 1, "grade must be an integer"),
        (read_qrels, "1 0 a -1\n", 1, "grade must be >= 0"),
        (read_qrels, "1 0 a 1\n1 0 a 2\n", 2, "judged twice"),
        (read_run, "1 Q0 a 1 2.0\n", 1, "expected 6 fields"),
        (read_run, "1 Q0 a one 2.0 t\n", 1, "rank must be an integer"),
        (read_run, "1 Q0 a 1 high t\n", 1, "score must be a number"),
        (read_run, "1 Q0 a 1 2.0 t\n1 Q0 b 2 nan t\n", 2, "score must be a finite number, found 'nan'"),
        (read_run, "1 Q0 a 1 -inf t\n", 1, "score must be a finite number, found '-inf'"),
        (
            read_run,
            "1 Q0 a 1 2.0 t\n1 Q0 b 2 1.0 t\n\n1 Q0 a 3 0.5 t\n",
            4,
            "duplicate (query '1', passage 'a'): already on line 1",
        ),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, reader, content, line, words):
    path = write(tmp_path / "bad.txt", content)
    with pytest.raises(DataFormatError) as caught:
        reader(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert words in str(caught.value)


def test_empty_query_is_an_error_naming_the_line(tmp_path):
    path = write(tmp_path / "queries.tsv", "1\tfirst\n2\t\n")
    with pytest.raises(DataFormatError, match=r"queries.tsv:2: empty query text for id '2'"):
        read_tsv(path, kind="query")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.run"):
        read_run(tmp_path / "nope.run")


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    write_tsv(target, {"1": "old"})
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("partial")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "1\told\n"
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_a_staged_directory_replaces_all_or_nothing(tmp_path):
    from hf_rerank.data.formats import staged_directory

    out = tmp_path / "out"
    with staged_directory(out) as staging:
        (staging / "run.trec").write_text("old run")
        (staging / "metrics.json").write_text("old metrics")
    with pytest.raises(KeyboardInterrupt):  # killed between the two writes
        with staged_directory(out) as staging:
            (staging / "run.trec").write_text("new run")
            raise KeyboardInterrupt
    assert (out / "run.trec").read_text() == "old run" and (out / "metrics.json").read_text() == "old metrics"
    with staged_directory(out) as staging:
        (staging / "run.trec").write_text("new run")
        (staging / "metrics.json").write_text("new metrics")
    assert (out / "run.trec").read_text() == "new run" and (out / "metrics.json").read_text() == "new metrics"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # a directory's usual mode, not mkdtemp's private 0700
