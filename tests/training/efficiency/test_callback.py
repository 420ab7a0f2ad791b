"""EfficiencyCallback on a tiny CrossEncoderTrainer run (NVML faked), and its CUDA branch driven by hand."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.training.efficiency import callback as callback_module
from hf_rerank.training.efficiency.callback import EfficiencyCallback
from hf_rerank.training.efficiency.flops import TransformerFlops
from hf_rerank.training.efficiency.memory import MIB, optimizer_state_bytes
from hf_rerank.training.efficiency.peak import MatmulPeak
from hf_rerank.training.efficiency.sampler import UsageSampler
from tests.conftest import tiny_config
from tests.training.efficiency.fake_pynvml import fake_pynvml
from tests.training.efficiency.tiny_run import CORPUS, QUERIES, make_trainer

pytestmark = pytest.mark.usefixtures("one_thread")


class SlowRecordingCollator:
    """The cross-encoder collator, 0.1 s slower per batch, keeping every batch it made."""

    def __init__(self, collator):
        self.collator, self.batches = collator, []
        self.queries, self.corpus, self.tokenizer = collator.queries, collator.corpus, collator.tokenizer

    def __call__(self, examples):
        time.sleep(0.1)
        batch = self.collator(examples)
        self.batches.append({key: value.clone() for key, value in batch.items()})
        return batch


def test_callback_on_a_tiny_training_run(tmp_path, tokenizer, monkeypatch):
    # NVML is faked: the callback samples "GPU 0" through a fake pynvml while training on the CPU.
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([42.0]))
    monkeypatch.setattr(callback_module, "UsageSampler", lambda interval_s, cuda_index: UsageSampler(0.02, 0))
    collator = SlowRecordingCollator(CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32))
    trainer = make_trainer(tmp_path, tokenizer, collator)
    assert trainer.efficiency in trainer.callback_handler.callbacks  # attached by default
    output = trainer.train()
    callback = trainer.efficiency
    summary = callback.summary

    # every step's counts are those of the batches the model trained on
    trained = collator.batches[:5]  # the data loader collates one batch ahead
    assert [r.samples for r in callback.steps] == [4] * 5
    assert [r.real_tokens for r in callback.steps] == [int(b["attention_mask"].sum()) for b in trained]
    assert [r.padded_tokens for r in callback.steps] == [b["attention_mask"].numel() for b in trained]
    flops = TransformerFlops.from_model(trainer.model)
    assert [r.flops for r in callback.steps] == [
        flops.training_flops(b["attention_mask"].sum(1).numpy()) for b in trained
    ]

    measured = callback.steps[2:]
    seconds = sum(r.data_s + r.compute_s for r in measured)
    assert summary["steps"] == 5 and summary["warmup_steps_excluded"] == 2
    assert summary["samples_per_second"] == pytest.approx(12 / seconds)
    assert summary["tokens_per_second"] == pytest.approx(sum(r.real_tokens for r in measured) / seconds)
    assert 0 < summary["padding_ratio"] < 1
    assert summary["padding_ratio"] == pytest.approx(
        1 - sum(r.real_tokens for r in measured) / sum(r.padded_tokens for r in measured)
    )
    assert summary["mfu"] == pytest.approx(
        sum(r.flops for r in measured) / seconds / summary["matmul_peak_flops_per_second"]
    )
    assert 0 < summary["mfu"] < 1
    assert summary["data_wait_fraction"] > 0.4  # the collator's 0.1 s per step is data wait, not compute
    assert all(r.data_s >= 0.1 for r in callback.steps)
    assert all(0 < r.optimizer_s < r.compute_s for r in callback.steps)
    assert summary["optimizer_fraction"] == pytest.approx(sum(r.optimizer_s for r in measured) / seconds)
    assert summary["step_time_p50_s"] <= summary["step_time_p90_s"] <= summary["step_time_p99_s"]
    assert summary["dtype"] == "float32" and summary["device"] == "cpu"
    assert summary["optimizer_state_mib"] * MIB == optimizer_state_bytes(trainer.optimizer) > 0
    assert (
        summary["peak_host_memory_mib"] > 10 and summary["process_max_rss_mib"] >= summary["peak_host_memory_mib"] * 0.5
    )
    assert summary["gpu_util_mean_percent"] == summary["gpu_util_max_percent"] == 42.0
    assert summary["gpu_memory_used_max_mib"] == 3.0 and summary["nvml"] == "sampled every 0.02 s"
    assert summary["peak_gpu_memory_allocated_mib"] is None  # no CUDA here
    assert callback.sampler._thread is None  # stopped at the end of training

    # log history: interval rates at logging steps once warm-up is over; the summary at the end
    logs = {entry["step"]: entry for entry in trainer.state.log_history if "loss" in entry}
    assert "eff_mfu" not in logs[2]  # steps 1-2 are warm-up
    assert logs[4]["eff_samples_per_second"] == pytest.approx(
        8 / sum(r.data_s + r.compute_s for r in callback.steps[2:4])
    )
    assert {
        "eff_tokens_per_second",
        "eff_padding_ratio",
        "eff_mfu",
        "eff_step_time_s",
        "eff_data_wait_fraction",
        "eff_optimizer_fraction",
        "eff_gpu_util_percent",
        "eff_peak_host_memory_mib",
    } <= set(logs[4])
    final = trainer.state.log_history[-1]
    assert "train_runtime" in final and final["eff_mfu"] == summary["mfu"] == output.metrics["eff_mfu"]
    assert "eff_nvml" not in final and "eff_device" not in final  # strings stay in the summary


def test_callback_on_cuda_synchronises_and_reads_gpu_memory(monkeypatch):
    """The CUDA branch, driven by hand with torch.cuda and pynvml faked (no GPU here)."""
    calls = []
    fake_cuda = {
        "synchronize": lambda device=None: calls.append(("sync", device)),
        "reset_peak_memory_stats": lambda device=None: calls.append(("reset", device)),
        "max_memory_allocated": lambda device=None: 5 * MIB,
        "max_memory_reserved": lambda device=None: 8 * MIB,
        "get_device_name": lambda device=None: "Fake H100",
    }
    for name, function in fake_cuda.items():
        monkeypatch.setattr(torch.cuda, name, function)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([60.0, 80.0]))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    peak = MatmulPeak(1e12, "cuda:0", "bfloat16", "fake")
    monkeypatch.setattr(callback_module, "measure_matmul_peak", lambda device, dtype: peak)
    model = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))
    args = types.SimpleNamespace(device=torch.device("cuda", 0), bf16=True, fp16=False)
    callback = EfficiencyCallback(warmup_steps=1, sample_interval_s=0.01)
    callback.on_train_begin(args, None, None, model=model)
    assert calls == [("reset", torch.device("cuda", 0)), ("sync", torch.device("cuda", 0))]
    batch = {"attention_mask": torch.tensor([[1, 1, 1, 0]] * 4), "labels": torch.zeros(4)}
    for _ in range(3):
        callback.on_step_begin(args, None, None)
        callback.observe_batch(batch)
        callback.on_pre_optimizer_step(args, None, None)
        callback.on_optimizer_step(args, None, None)
        time.sleep(0.03)
        callback.on_step_end(args, None, None)
    assert [call for call, _ in calls].count("sync") == 1 + 3 * 4  # every mark waits for the GPU
    summary = callback.summarize(torch.optim.SGD(model.parameters()))
    callback.on_train_end(args, None, None)
    assert summary["dtype"] == "bfloat16" and summary["device_name"] == "Fake H100"
    assert summary["peak_gpu_memory_allocated_mib"] == 5.0 and summary["peak_gpu_memory_reserved_mib"] == 8.0
    assert summary["gpu_util_max_percent"] == 80.0 and summary["gpu_memory_used_max_mib"] == 3.0
    assert summary["matmul_peak_flops_per_second"] == 1e12 and summary["matmul_peak_method"] == "fake"
    flops = TransformerFlops.from_model(model).training_flops(np.array([3] * 4))
    seconds = sum(r.data_s + r.compute_s for r in callback.steps[1:])
    assert summary["mfu"] == pytest.approx(2 * flops / seconds / 1e12)
    assert summary["optimizer_state_mib"] == 0.0  # SGD without momentum keeps no state
