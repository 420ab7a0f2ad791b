"""hf_rerank.precision: one decision for training, evaluation, benchmarks and the efficiency callback."""

import pytest
import torch
import yaml

from hf_rerank import precision
from hf_rerank.precision import PrecisionError, choose_precision, cpu_flags, pick_dtype
from hf_rerank.training.arguments import CrossEncoderTrainingArguments, EmbeddingTrainingArguments
from hf_rerank.training.config import parse_args


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-native-bf16"])
def native(request, monkeypatch):
    """Pretend the CPU has (or lacks) native bf16, whatever this machine's CPU is."""
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: request.param)
    return request.param


def test_auto_is_bf16_exactly_where_native(native):
    choice = choose_precision("auto", "cpu")
    assert choice.name == ("bf16" if native else "fp32")
    assert choice.dtype == (torch.bfloat16 if native else torch.float32)
    assert choice.requested == "auto" and choice.device_type == "cpu"
    assert choice.reason.startswith(
        "auto: bf16, native on this cpu" if native else "auto: fp32, this cpu has no native bf16"
    )
    assert "CPU flags: " in choice.reason


def test_bf16_is_refused_where_it_would_be_emulated(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: False)
    with pytest.raises(PrecisionError, match=r"no native bf16 .*Use --precision auto .*or --precision fp32"):
        choose_precision("bf16", "cpu")
    with pytest.raises(PrecisionError, match="no native bf16"):
        pick_dtype("bf16", torch.device("cpu"))


def test_explicit_choices(native):
    assert choose_precision("fp32", "cpu").dtype == torch.float32
    if native:
        assert choose_precision("bf16", "cpu").reason.startswith("bf16, as asked")
    with pytest.raises(PrecisionError, match="fp16 is for CUDA devices only"):
        choose_precision("fp16", "cpu")
    with pytest.raises(PrecisionError, match="precision must be one of auto, bf16, fp16, fp32, got 'half'"):
        choose_precision("half", "cpu")


def test_real_decision_matches_the_cpu():
    """Without a fake: auto follows oneDNN's own answer, and the flags come from /proc/cpuinfo."""
    native = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert choose_precision("auto", "cpu").name == ("bf16" if native else "fp32")
    flags = cpu_flags()
    assert set(flags) <= set(precision.MATMUL_CPU_FLAGS)
    if native:
        assert {"avx512_bf16", "amx_bf16"} & set(flags)


def test_training_arguments_decide_once_and_set_the_trainer_flags(tmp_path, native):
    args = CrossEncoderTrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert args.precision == "auto" and args.compute_precision == ("bf16" if native else "fp32")
    assert (args.bf16, args.fp16) == (native, False)
    assert args.precision_choice.reason == choose_precision("auto", "cpu").reason
    if native:
        assert args.use_cpu  # transformers allows bf16 on a CPU only when told it is one
    explicit = EmbeddingTrainingArguments(output_dir=str(tmp_path), report_to="none", precision="fp32")
    assert explicit.compute_precision == "fp32" and not explicit.bf16


def test_training_arguments_refuse_bf16_where_emulated(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: False)
    with pytest.raises(PrecisionError, match=r"--bf16 true \(a config's `bf16: true`\): bf16 was asked for"):
        CrossEncoderTrainingArguments(output_dir=str(tmp_path), report_to="none", bf16=True)
    with pytest.raises(PrecisionError, match="--precision bf16: bf16 was asked for"):
        CrossEncoderTrainingArguments(output_dir=str(tmp_path), report_to="none", precision="bf16")
    with pytest.raises(ValueError, match="--bf16 true contradicts --precision fp32"):
        CrossEncoderTrainingArguments(output_dir=str(tmp_path), report_to="none", bf16=True, precision="fp32")


def test_a_config_asking_for_emulated_bf16_stops_at_parse_time(tmp_path, monkeypatch):
    from transformers import HfArgumentParser

    monkeypatch.setattr(precision, "native_bf16", lambda device_type: False)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path), "bf16": True}))
    with pytest.raises(SystemExit, match="error: --bf16 true .*Use --precision auto"):
        parse_args(HfArgumentParser(CrossEncoderTrainingArguments), ["--config", str(config)])
