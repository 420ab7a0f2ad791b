"""hf-rerank's training arguments: the speed settings they declare and how flags and configs set them."""

from __future__ import annotations

import dataclasses

import pytest
from transformers import HfArgumentParser

from hf_rerank.training.arguments import CrossEncoderTrainingArguments, RerankTrainingArguments
from hf_rerank.training.efficiency.mixin import EfficiencyArguments


@pytest.mark.parametrize("name", ["optimizer_foreach", "fast_cpu_dropout"])
def test_speed_settings_are_training_arguments_not_measurements(name):
    declared = {f.name: f for f in dataclasses.fields(RerankTrainingArguments)}
    assert declared[name].default is True and declared[name].metadata["help"]
    assert name not in {f.name for f in dataclasses.fields(EfficiencyArguments)}


def test_speed_settings_parse_from_flags(tmp_path):
    (args,) = HfArgumentParser(CrossEncoderTrainingArguments).parse_args_into_dataclasses(
        [
            "--output_dir",
            str(tmp_path),
            "--use_cpu",
            "true",
            "--optimizer_foreach",
            "false",
            "--fast_cpu_dropout",
            "false",
        ]
    )
    assert args.optimizer_foreach is False and args.fast_cpu_dropout is False
    (default,) = HfArgumentParser(CrossEncoderTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--use_cpu", "true"]
    )
    assert default.optimizer_foreach is True and default.fast_cpu_dropout is True
