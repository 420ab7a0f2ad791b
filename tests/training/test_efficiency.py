"""EfficiencyCallback and its helpers: FLOPs by hand, token counts, optimizer-state bytes, the NVML
sampler against a fake ``pynvml``, and the callback on a tiny CrossEncoderTrainer run."""

from __future__ import annotations

import ast
import re
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from lion_pytorch import Lion
from transformers import AutoModelForSequenceClassification, ModernBertConfig, ModernBertForSequenceClassification

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.data.examples import PairExample
from hf_rerank.training import efficiency
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from hf_rerank.training.efficiency import (
    MIB,
    EfficiencyArguments,
    EfficiencyCallback,
    EfficiencyTrainerMixin,
    TransformerFlops,
    UsageSampler,
    count_batch,
    measure_matmul_peak,
    optimizer_state_bytes,
)
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------ FLOPs


def test_flops_of_a_tiny_bert_by_hand():
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))  # hidden 32, 2 layers, FFN 64
    layer = 4 * (32 * 32 + 32) + 2 * 32 + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 32  # Q K V O, 2 LayerNorms, FFN
    n_params = 2 * layer + 2 * 32 + (32 * 32 + 32) + (32 + 1)  # + embedding LayerNorm, pooler, classifier
    flops = TransformerFlops.from_model(model)
    assert flops.non_embedding_parameters == flops.trainable_non_embedding_parameters == n_params == 18241
    assert flops.windows == (None, None)
    lengths = np.array([3, 5])
    attention = 12 * 32 * 2 * (3 * 3 + 5 * 5)  # 12 H per (query, key) pair per layer, all pairs attended
    assert flops.training_flops(lengths) == 6 * n_params * 8 + attention

    for parameter in model.bert.encoder.layer[0].parameters():  # frozen: no weight gradients
        parameter.requires_grad_(False)
    frozen = TransformerFlops.from_model(model)
    assert frozen.trainable_non_embedding_parameters == n_params - layer
    assert frozen.training_flops(lengths) == (4 * n_params + 2 * (n_params - layer)) * 8 + attention


def test_flops_count_sliding_window_pairs():
    config = ModernBertConfig(
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        global_attn_every_n_layers=3,
        local_attention=2,
        num_labels=1,
    )
    flops = TransformerFlops.from_model(ModernBertForSequenceClassification(config))
    assert flops.windows == (None, 1, 1)  # tokens at distance <= local_attention // 2
    only_attention = TransformerFlops(0, 0, hidden_size=1, windows=(None, 1))
    # n = 4: global 16 pairs; window 1: 4 tokens x themselves + 3 neighbouring pairs x 2 directions = 10
    assert only_attention.training_flops([4]) == 12 * (16 + 10)
    assert only_attention.training_flops([1]) == 12 * (1 + 1)


def test_flops_need_a_transformer_config():
    with pytest.raises(ValueError, match="hidden_size"):
        TransformerFlops.from_model(torch.nn.Linear(2, 2))


# ------------------------------------------------------------------------------------ tokens


def test_count_batch_pairs_groups_nested_and_unpadded():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    pairs = count_batch(
        {"input_ids": torch.zeros(2, 4, dtype=torch.long), "attention_mask": mask, "labels": torch.tensor([1.0, 0.0])}
    )
    assert (pairs.samples, pairs.sequences, pairs.real_tokens, pairs.padded_tokens) == (2, 2, 5, 8)
    assert pairs.lengths.tolist() == [3, 2]

    groups = count_batch({"attention_mask": torch.cat([mask, mask]), "labels": torch.zeros(2, 2)})
    assert (groups.samples, groups.sequences, groups.real_tokens, groups.padded_tokens) == (2, 4, 10, 16)

    nested = count_batch({"query": {"attention_mask": mask}, "passage_attention_mask": torch.ones(2, 6)})
    assert (nested.samples, nested.sequences, nested.real_tokens, nested.padded_tokens) == (2, 4, 17, 20)
    assert count_batch({"attention_mask": mask}, samples=1).samples == 1

    unpadded = count_batch({"input_ids": torch.zeros(3, 7, dtype=torch.long)})
    assert (unpadded.sequences, unpadded.real_tokens, unpadded.padded_tokens) == (3, 21, 21)
    with pytest.raises(ValueError, match="no attention_mask or input_ids"):
        count_batch({"pixel_values": torch.zeros(2, 3)})


# ------------------------------------------------------------------------------------ optimizer state


def _one_step(optimizer, model):
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return optimizer


def test_optimizer_state_bytes_of_adamw_and_lion():
    model = torch.nn.Linear(3, 4)  # 12 + 4 fp32 parameters
    assert optimizer_state_bytes(torch.optim.AdamW(model.parameters())) == 0  # no state before a step
    adamw = _one_step(torch.optim.AdamW(model.parameters(), foreach=False), model)
    assert optimizer_state_bytes(adamw) == 2 * 16 * 4 + 2 * 4  # exp_avg, exp_avg_sq; a float32 step per tensor
    lion = _one_step(Lion(model.parameters(), lr=1e-4), model)
    assert optimizer_state_bytes(lion) == 16 * 4  # exp_avg only

    @dataclass
    class Wrapper:  # accelerate's AcceleratedOptimizer holds the optimizer in .optimizer
        optimizer: torch.optim.Optimizer

    assert optimizer_state_bytes(Wrapper(lion)) == 16 * 4
    buffer = torch.zeros(10)
    shared = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])
    shared.state["a"] = {"x": buffer[:5], "y": buffer[5:]}  # one storage, counted once
    assert optimizer_state_bytes(shared) == 40


# ------------------------------------------------------------------------------------ NVML sampler


def fake_pynvml(utilisations, used=3 * MIB, fail_after=None):
    """A stand-in for pynvml: utilisation readings from ``utilisations`` in order (then its last),
    memory ``used`` bytes; readings raise after ``fail_after`` of them."""
    module = types.ModuleType("pynvml")
    module.calls = []
    readings = iter(utilisations)
    state = {"last": utilisations[-1], "count": 0}

    class NVMLError(Exception):
        pass

    def utilization(handle):
        state["count"] += 1
        if fail_after is not None and state["count"] > fail_after:
            raise NVMLError("Not Supported")
        state["last"] = next(readings, state["last"])
        return types.SimpleNamespace(gpu=state["last"], memory=0)

    module.NVMLError = NVMLError
    module.nvmlInit = lambda: module.calls.append("init")
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetHandleByIndex = lambda index: ("index", index)
    module.nvmlDeviceGetHandleByUUID = lambda uuid: ("uuid", uuid)
    module.nvmlDeviceGetUtilizationRates = utilization
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=used, total=80 * 1024 * MIB)
    return module


def test_usage_sampler_reads_nvml_in_a_thread(monkeypatch):
    fake = fake_pynvml([10, 20, 30, 40])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sampler = UsageSampler(interval_s=0.01, cuda_index=0).start()
    assert sampler._handle == ("index", 0)
    time.sleep(0.15)
    samples = sampler.stop()
    utils = [s.gpu_util_percent for s in samples]
    assert len(samples) >= 4 and utils[:4] == [10, 20, 30, 40] and set(utils[4:]) <= {40}
    assert all(s.gpu_memory_used_bytes == 3 * MIB and s.rss_bytes > 0 for s in samples)
    assert [s.time for s in samples] == sorted(s.time for s in samples)
    assert sampler.nvml == "sampled every 0.01 s" and fake.calls == ["init", "shutdown"]


def test_usage_sampler_maps_cuda_visible_devices(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([1]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    sampler = UsageSampler(interval_s=10, cuda_index=1).start()
    assert sampler._handle == ("index", 5)
    sampler.stop()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234")
    sampler = UsageSampler(interval_s=10, cuda_index=0).start()
    assert sampler._handle == ("uuid", "GPU-1234")
    sampler.stop()


def test_usage_sampler_without_nvml_or_when_it_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    sampler = UsageSampler(interval_s=10, cuda_index=0).start()
    samples = sampler.stop()
    assert "nvidia-ml-py is not installed" in sampler.nvml
    assert len(samples) == 2 and all(s.gpu_util_percent is None and s.rss_bytes > 0 for s in samples)

    assert UsageSampler(interval_s=10).start().nvml == "not sampled: not a CUDA device"

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([50], fail_after=1))
    sampler = UsageSampler(interval_s=0.01, cuda_index=0).start()
    time.sleep(0.05)
    samples = sampler.stop()
    assert samples[0].gpu_util_percent == 50 and all(s.gpu_util_percent is None for s in samples[1:])
    assert sampler.nvml.startswith("sampling failed (NVMLError: Not Supported")


# ------------------------------------------------------------------------------------ matmul peak


def test_matmul_peak_is_measured_once_per_device_and_dtype():
    peak = measure_matmul_peak("cpu", torch.float32)
    assert peak.flops_per_second > 1e8 and peak.dtype == "float32" and peak.device == "cpu"
    assert re.search(r"best of \d timed rounds of \d+ back-to-back (\d+)x\1x\1 float32", peak.method)
    assert "sizes probed: 256, " in peak.method and "s of a 2 s budget" in peak.method
    assert 0 < peak.median_flops_per_second <= peak.flops_per_second
    assert peak.steady == (peak.median_flops_per_second >= 0.9 * peak.flops_per_second)
    assert measure_matmul_peak(torch.device("cpu"), torch.float32) is peak  # cached
    assert torch.get_num_threads() == 1 and "torch CPU threads: 1" in peak.method  # the module's one_thread fixture


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matmul_peak_keeps_to_its_budget_whatever_the_dtype_costs(dtype):
    # bf16 on a CPU without AVX512-BF16/AMX is emulated, ~100x slower than fp32: the size shrinks to fit
    started = time.perf_counter()
    peak = efficiency._measure_matmul_peak.__wrapped__(torch.device("cpu"), dtype, 1, 1.0)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0 and peak.seconds == pytest.approx(elapsed, abs=0.05)
    assert peak.flops_per_second > 1e7 and "of a 1 s budget" in peak.method


def fake_products(monkeypatch, seconds_per_product):
    """Replace the timed products by ``seconds_per_product(call, count)`` (call counts from 0)."""
    calls = {"n": -1}

    def timed(a, b, out, device, count):
        calls["n"] += 1
        return seconds_per_product(calls["n"], count) * count

    monkeypatch.setattr(efficiency, "_time_products", timed)
    monkeypatch.setattr(efficiency, "PEAK_SIZES", {"cpu": (8,)})  # one size: a warm-up and a probe, then rounds


def test_matmul_peak_warns_when_the_device_was_busy(monkeypatch, caplog):
    # 2 ms per product, 6 ms in every other timed round (as if another process shared the cores):
    # five of the nine rounds are slow, so the median is a third of the best.
    monkeypatch.setattr(efficiency, "PEAK_ROUND_SECONDS", 0.01)  # 5 products per round
    fake_products(monkeypatch, lambda call, count: 0.006 if call >= 2 and call % 2 == 0 else 0.002)
    with caplog.at_level("WARNING", logger="hf_rerank"):
        peak = efficiency._measure_matmul_peak.__wrapped__(torch.device("cpu"), torch.float32, 1, 2.0)
    assert not peak.steady and "best of 9 timed rounds of 5 back-to-back 8x8x8" in peak.method
    assert peak.flops_per_second == pytest.approx(2 * 8**3 / 0.002)
    assert peak.median_flops_per_second == pytest.approx(peak.flops_per_second / 3)
    assert "the device was busy" in caplog.text


def test_matmul_peak_takes_fewer_rounds_when_the_budget_is_short(monkeypatch):
    fake_products(monkeypatch, lambda call, count: 0.05)  # 0.1 s rounds of 2 products
    peak = efficiency._measure_matmul_peak.__wrapped__(torch.device("cpu"), torch.float32, 1, 0.55)
    assert "best of 5 timed rounds of 2 back-to-back" in peak.method  # just under 0.55 s left for rounds of 0.1 s


def test_matmul_peak_is_skipped_when_one_product_exceeds_the_budget(monkeypatch, caplog):
    fake_products(monkeypatch, lambda call, count: 3.0)
    with caplog.at_level("WARNING", logger="hf_rerank"):
        peak = efficiency._measure_matmul_peak.__wrapped__(torch.device("cpu"), torch.bfloat16, 1, 2.0)
    assert peak.flops_per_second is None and peak.method.startswith("skipped: one 8x8x8 bfloat16 product took 3.0 s")
    assert "no MFU for this run" in caplog.text


# ------------------------------------------------------------------------------------ the callback in training

QUERIES = {"q1": "what do bees make", "q2": "how tall is mount everest and when was it first climbed"}
CORPUS = {
    "p1": "bees make honey",
    "p2": "honey bees store honey in wax combs built inside the hive during the summer months",
    "p3": "mount everest is 8849 metres tall",
    "p4": "everest was first climbed in 1953 by tenzing norgay and edmund hillary on the south col route",
}


def test_every_trainer_measures_efficiency():
    assert issubclass(CrossEncoderTrainingArguments, EfficiencyArguments)
    assert issubclass(CrossEncoderTrainer, EfficiencyTrainerMixin)


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


def make_trainer(tmp_path: Path, tokenizer, collator, **overrides) -> CrossEncoderTrainer:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))
    pairs = [PairExample(q, p, float(p in ("p1", "p3"))) for q in QUERIES for p in CORPUS] * 3  # 24 pairs
    args = CrossEncoderTrainingArguments(
        **{
            "output_dir": str(tmp_path),
            "per_device_train_batch_size": 4,
            "max_steps": 5,
            "logging_steps": 2,
            "learning_rate": 1e-3,
            "report_to": "none",
            "use_cpu": True,
            "save_strategy": "no",
            "disable_tqdm": True,
            "dataloader_num_workers": 0,
            "max_length": 32,
            "length_bucketing": False,
            "seed": 3,
            **overrides,
        }
    )
    return CrossEncoderTrainer(
        model=model, args=args, train_dataset=pairs, data_collator=collator, processing_class=tokenizer
    )


def test_callback_on_a_tiny_training_run(tmp_path, tokenizer, monkeypatch):
    # NVML is faked: the callback samples "GPU 0" through a fake pynvml while training on the CPU.
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([42.0]))
    monkeypatch.setattr(efficiency, "UsageSampler", lambda interval_s, cuda_index: UsageSampler(0.02, 0))
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
    peak = efficiency.MatmulPeak(1e12, "cuda:0", "bfloat16", "fake")
    monkeypatch.setattr(efficiency, "measure_matmul_peak", lambda device, dtype: peak)
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


def test_callback_attaches_only_when_asked(tmp_path, tokenizer):
    collator = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)
    assert make_trainer(tmp_path, tokenizer, collator, efficiency_metrics=False).efficiency is None
    given = EfficiencyCallback(warmup_steps=0)
    trainer = CrossEncoderTrainer(
        model=AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1)),
        args=CrossEncoderTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none"),
        train_dataset=[],
        data_collator=collator,
        callbacks=[given],
    )
    assert trainer.efficiency is given  # the one passed in, not a second one
    assert sum(isinstance(cb, EfficiencyCallback) for cb in trainer.callback_handler.callbacks) == 1


def test_module_needs_no_other_hf_rerank_dependency():
    """benchmarks/gpu_check.py imports it on machines with only torch, transformers, numpy, psutil."""
    tree = ast.parse(Path(efficiency.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert imported - set(sys.stdlib_module_names) == {"numpy", "psutil", "torch", "transformers", "pynvml"}
