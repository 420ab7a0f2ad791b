"""hf-rerank's error types: one base class, each also the built-in type callers have always caught."""

import pytest

from hf_rerank.data.formats import DataFormatError
from hf_rerank.errors import DataError, HfRerankError, MissingFileError, UnknownNameError, UsageError


@pytest.mark.parametrize(
    "error, builtin",
    [
        (UsageError("x"), ValueError),
        (DataError("x"), ValueError),
        (DataFormatError("f.tsv", 3, "x"), ValueError),
        (MissingFileError("x"), FileNotFoundError),
        (UnknownNameError("x"), KeyError),
    ],
)
def test_every_kind_is_an_hf_rerank_error_and_its_builtin(error, builtin):
    assert isinstance(error, HfRerankError) and isinstance(error, builtin)


def test_a_malformed_file_is_a_data_error_naming_file_and_line():
    error = DataFormatError("runs/bm25.run", 3, "rank must be an integer")
    assert isinstance(error, DataError) and str(error) == "runs/bm25.run:3: rank must be an integer"
    assert str(DataFormatError("adapter_config.json", None, "no base")) == "adapter_config.json: no base"


def test_an_unknown_name_reads_as_its_message_not_a_quoted_key():
    assert str(UnknownNameError("collection 'c' has no run 'x'")) == "collection 'c' has no run 'x'"
    assert str(KeyError("collection 'c' has no run 'x'")) == "\"collection 'c' has no run 'x'\""
    with pytest.raises(KeyError, match="has no run 'x'"):
        raise UnknownNameError("collection 'c' has no run 'x'")
