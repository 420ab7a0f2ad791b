"""The negatives file: round trip and an error naming the line for every bad input."""

import pytest

from hf_rerank.data.formats import DataFormatError
from hf_rerank.data.negatives import read_negatives, write_negatives


def test_negatives_file_round_trip_and_errors(tmp_path):
    negatives = {"19335": ["p1", "msmarco_passage_08_24643970"], "q2": ["p3"]}
    path = write_negatives(negatives, tmp_path / "out" / "negatives.tsv")
    assert path.read_text() == "19335\tp1\n19335\tmsmarco_passage_08_24643970\nq2\tp3\n"
    assert read_negatives(path) == negatives
    bad = tmp_path / "bad.tsv"
    for text, problem in [
        ("q1\tp1\n\nq1 p2\n", ":3: expected 'qid<TAB>pid', found 1 tab-separated fields"),
        ("q1\tp1\tp2\n", ":1: expected 'qid<TAB>pid', found 3"),
        ("q1\t \n", ":1: empty passage id"),
        ("q1\tp1\nq1\tp1\n", ":2: duplicate (query 'q1', passage 'p1'): already on line 1"),
    ]:
        bad.write_text(text)
        with pytest.raises(DataFormatError) as error:
            read_negatives(bad)
        assert str(error.value).startswith(f"{bad}:") and problem in str(error.value)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_negatives(tmp_path / "missing.tsv")
