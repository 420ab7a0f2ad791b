"""hf-rerank's training arguments: the speed settings they declare, how flags set them, and the optimizer
they ask for, validated by the optimizer factory when they are built."""

from __future__ import annotations

import dataclasses

import pytest
from transformers import HfArgumentParser

from hf_rerank.errors import UsageError
from hf_rerank.optim import OptimizerSpec
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


def parse(tmp_path, *flags: str) -> CrossEncoderTrainingArguments:
    (args,) = HfArgumentParser(CrossEncoderTrainingArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--use_cpu", "true", *flags]
    )
    return args


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--optimizer", "adamw", "--lion_scaling", "3"],
            "lion_scaling=3.0 is only valid with the Lion optimizer, not 'adamw': it converts AdamW-style lr and "
            "weight decay for Lion; use optimizer 'lion', or leave lion_scaling unset",
        ),
        (
            ["--optimizer", "adamw", "--lion_triton", "true"],
            "use_triton (lion-pytorch's Triton kernel; training argument lion_triton) is only valid with the Lion "
            "optimizer, not 'adamw': use optimizer 'lion', or leave it off",
        ),
        (["--optimizer", "sgd"], "unknown optimizer 'sgd'; choose one of ('adamw', 'lion')"),
        (["--optimizer", "lion", "--lion_scaling", "0.5"], "lion_scaling must be >= 1"),
        (["--learning_rate", "0"], "lr must be finite and > 0, got 0.0"),
    ],
)
def test_the_optimizer_factory_refuses_arguments_that_do_not_fit_before_training(tmp_path, flags, message):
    with pytest.raises(UsageError) as refused:  # a ValueError; hf-rerank's CLI prints it as one line
        parse(tmp_path, *flags)
    assert str(refused.value).startswith(message)


def test_optimizer_spec_is_what_the_arguments_ask_for(tmp_path):
    lion = parse(
        tmp_path, "--optimizer", "LION", "--lion_scaling", "3", "--lion_beta1", "0.95", "--optimizer_foreach", "false"
    )
    assert lion.optimizer == "lion"  # as the factory spells it
    assert lion.optimizer_spec() == OptimizerSpec(
        "lion", lr=5e-5, weight_decay=0.0, betas=(0.95, 0.99), eps=1e-8, lion_scaling=3.0, foreach=False
    )
    adamw = parse(tmp_path, "--adam_beta2", "0.98", "--lion_beta1", "0.5")
    assert adamw.optimizer_spec() == OptimizerSpec("adamw", lr=5e-5, weight_decay=0.0, betas=(0.9, 0.98), foreach=None)
