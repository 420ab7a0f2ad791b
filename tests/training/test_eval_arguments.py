"""The data arguments both training runs share (evaluation, training data): declared once; the metric-set
help names every registered set."""

import dataclasses

import pytest

from hf_rerank.evaluation.metrics import METRIC_SETS, describe_metric_sets, metric_set_names
from hf_rerank.training.eval_arguments import EvaluationArguments
from hf_rerank.training.run_cross_encoder import DataArguments
from hf_rerank.training.run_embedding import EmbeddingDataArguments
from hf_rerank.training.train_data_arguments import TrainDataArguments


@pytest.mark.parametrize("data_class", [DataArguments, EmbeddingDataArguments])
def test_both_runs_inherit_the_shared_evaluation_fields(data_class):
    assert issubclass(data_class, EvaluationArguments)
    fields = {field.name: field for field in dataclasses.fields(data_class)}
    for shared in dataclasses.fields(EvaluationArguments):
        assert fields[shared.name].default == shared.default
        if not (data_class is EmbeddingDataArguments and shared.name == "eval_data"):  # its help adds retrieval
            assert fields[shared.name].metadata == shared.metadata
    assert "eval_depth" in fields  # each run declares its own depth (defaults 1000 and 100)


@pytest.mark.parametrize("data_class", [DataArguments, EmbeddingDataArguments])
def test_both_runs_inherit_the_shared_training_data_fields(data_class):
    assert issubclass(data_class, TrainDataArguments)
    fields = {field.name: field for field in dataclasses.fields(data_class)}
    for shared in dataclasses.fields(TrainDataArguments):
        assert (fields[shared.name].default, fields[shared.name].metadata) == (shared.default, shared.metadata)
    assert [f.name for f in dataclasses.fields(TrainDataArguments)] == [
        "train_limit",
        "positive_grade",
        "graded_labels",
    ]


def test_the_metric_set_help_names_every_registered_set():
    assert metric_set_names() == "trec-dl, msmarco-dev or paper"
    help_text = {field.name: field.metadata["help"] for field in dataclasses.fields(EvaluationArguments)}
    assert help_text["eval_metrics"] == f"metric set: {metric_set_names()}"
    lines = describe_metric_sets().splitlines()
    assert lines[0] == "metric sets:"
    assert lines[1:] == [f"  {name}: {metric_set.convention}" for name, metric_set in METRIC_SETS.items()]
