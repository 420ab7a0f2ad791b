"""``EfficiencyCallback``: a training run's efficiency, measured the same way in every run.

- **Step time**: per optimizer step, the wall time from the end of the previous step (or of the
  logging, evaluation or saving that followed it) to the end of this one, split into *data wait*
  (fetching and collating the step's batches: tokenisation on the critical path shows here) and
  *compute* (forward, backward, optimizer), of which the *optimizer* step (``optimizer.step()``
  alone) is also timed. CUDA is synchronised at each mark (4 per step), so GPU work is timed,
  not queued. The first ``warmup_steps`` steps (allocator warm-up, lazy initialisation,
  ``torch.compile``) are left out of every rate below; the summary says how many.
- **Samples, sequences, tokens**: counted from the batches themselves (:mod:`.counts`).
- **Model FLOPs** (:mod:`.flops`) and **MFU** = model FLOPs / step time / a matmul peak measured
  on this device for the dtype in use (:mod:`.peak`).
- **Memory**: peak resident memory of the process, sampled every ``sample_interval_s`` seconds
  during training (:mod:`.sampler`), and the process's lifetime maximum (``getrusage``); on CUDA,
  the peak allocated and reserved by PyTorch during training; the bytes of the optimizer's state
  tensors at the end of training (:mod:`.memory`).
- **GPU use (NVIDIA)**: NVML utilisation and device memory in use, sampled in the same thread.

Where the numbers go: with :class:`~hf_rerank.training.efficiency.mixin.EfficiencyTrainerMixin`
in the trainer, every training log gains ``eff_*`` rates over the steps since the previous log
(:meth:`EfficiencyCallback.interval_metrics`), and the end-of-training log (and so
``TrainOutput.metrics``) gains ``eff_<key>`` for every number of :meth:`EfficiencyCallback.summarize`,
whose dict is kept as ``callback.summary`` for ``metrics.json`` (``"efficiency"``, which
:mod:`hf_rerank.hub.training_sections` puts in the model card).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import psutil
import torch
from torch import nn
from transformers import TrainerCallback

from hf_rerank.training.efficiency.counts import BatchCounts, count_batch
from hf_rerank.training.efficiency.device import device_name, normalise_device, synchronize
from hf_rerank.training.efficiency.flops import FLOPS_FORMULA, TransformerFlops
from hf_rerank.training.efficiency.memory import MIB, optimizer_state_bytes, process_max_rss_bytes
from hf_rerank.training.efficiency.peak import MatmulPeak, measure_matmul_peak
from hf_rerank.training.efficiency.sampler import UsageSampler

logger = logging.getLogger("hf_rerank")


@dataclass
class StepRecord:
    """One optimizer step: when it started (its data wait included; ``time.perf_counter()`` s),
    data wait, compute and (within compute) optimizer seconds, and the counts and model FLOPs of
    its batches."""

    start: float
    data_s: float
    compute_s: float
    optimizer_s: float = 0.0
    samples: int = 0
    sequences: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    flops: float = 0.0


@dataclass
class _Pending:
    samples: int = 0
    sequences: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    flops: float = 0.0


def training_dtype(args, model: nn.Module | None) -> torch.dtype:
    """The dtype matmuls run in: bf16/fp16 under ``args.bf16``/``args.fp16`` (autocast), else the
    model's parameter dtype. hf-rerank's training arguments set those two flags from
    :func:`hf_rerank.precision.choose_precision` at start-up, so this is the precision decided there."""
    if args.bf16:
        return torch.bfloat16
    if args.fp16:
        return torch.float16
    parameter = next(model.parameters(), None) if model is not None else None
    return parameter.dtype if parameter is not None else torch.float32


def _percentile(values, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


class EfficiencyCallback(TrainerCallback):
    """Measure a training run's efficiency (see the module docstring for every number).

    The trainer must hand it each training batch with :meth:`observe_batch` (
    :class:`EfficiencyTrainerMixin` does); without that, only step times and memory are known.

    Args:
        warmup_steps: first optimizer steps left out of the rates (at least one step is kept).
        sample_interval_s: seconds between readings of memory and GPU use.
    Attributes:
        summary: after training, the dict of :meth:`summarize` (None before).
        steps: one :class:`StepRecord` per optimizer step of the current ``train()``.
    """

    def __init__(self, warmup_steps: int = 2, sample_interval_s: float = 0.2):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = warmup_steps
        self.sample_interval_s = sample_interval_s
        self.summary: dict | None = None
        self.steps: list[StepRecord] = []
        self.flops: TransformerFlops | None = None
        self.peak: MatmulPeak | None = None
        self.sampler: UsageSampler | None = None
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self._pending = _Pending()
        self._logged = 0
        self._mark = self._step_start = self._data_wait = self._optimizer_start = self._optimizer_s = 0.0

    # -- what the trainer calls ------------------------------------------------------------
    def observe_batch(self, inputs: Mapping, samples: int | None = None) -> BatchCounts:
        """Count one training batch (a micro-batch under gradient accumulation) into the current
        step; ``inputs`` and ``samples`` as for :func:`count_batch`."""
        counts = count_batch(inputs, samples)
        pending = self._pending
        pending.samples += counts.samples
        pending.sequences += counts.sequences
        pending.real_tokens += counts.real_tokens
        pending.padded_tokens += counts.padded_tokens
        if self.flops is not None:
            pending.flops += self.flops.training_flops(counts.lengths)
        return counts

    def interval_metrics(self) -> dict[str, float]:
        """``eff_*`` rates over the steps since the previous call (warm-up steps left out; empty
        if no such step): samples and real tokens per second, padding ratio, MFU, mean step
        time (s), data-wait and optimizer fractions of it, mean GPU utilisation (%), and the peaks
        of host and GPU memory so far (MiB)."""
        records = self.steps[max(self._logged, self.warmup_steps) :]
        self._logged = len(self.steps)
        if not records:
            return {}
        rates = self._rates(records)
        util = self._gpu_util(records)
        metrics = {
            "samples_per_second": rates["samples_per_second"],
            "tokens_per_second": rates["tokens_per_second"],
            "padding_ratio": rates["padding_ratio"],
            "mfu": rates["mfu"],
            "step_time_s": rates["step_time_mean_s"],
            "data_wait_fraction": rates["data_wait_fraction"],
            "optimizer_fraction": rates["optimizer_fraction"],
            "gpu_util_percent": float(np.mean(util)) if util else None,
            "peak_host_memory_mib": self._peak_rss() / MIB,
            "peak_gpu_memory_mib": torch.cuda.max_memory_allocated(self.device) / MIB if self._cuda else None,
        }
        return {f"eff_{key}": value for key, value in metrics.items() if value is not None}

    def summarize(self, optimizer=None) -> dict:
        """The run's efficiency summary (also kept as ``self.summary``); keys and units:

        ``device``, ``device_name``, ``dtype`` (of the matmuls); ``steps``,
        ``warmup_steps_excluded``; ``step_time_{mean,p50,p90,p99}_s``, ``data_wait_fraction``,
        ``optimizer_fraction`` (shares of the step time), ``optimizer_step_mean_s``;
        ``samples_per_second``, ``sequences_per_second``, ``tokens_per_second`` (real tokens),
        ``padding_ratio``; ``train_flops_per_second`` (model FLOPs achieved),
        ``matmul_peak_flops_per_second``, ``matmul_peak_steady``, ``matmul_peak_method``,
        ``matmul_peak_seconds`` (what measuring it cost), ``mfu``, ``flops_formula``,
        ``non_embedding_parameters``; ``peak_host_memory_mib`` (sampled during training),
        ``process_max_rss_mib`` (lifetime), ``peak_gpu_memory_allocated_mib``,
        ``peak_gpu_memory_reserved_mib``, ``optimizer_state_mib`` (of ``optimizer``);
        ``gpu_util_{mean,p50,max}_percent``, ``gpu_memory_used_max_mib`` (NVML) and ``nvml``
        (whether it sampled, or why not). Rates cover the steps after the warm-up ones; a value
        that cannot be known here (a GPU number on a CPU, tokens when no batch was observed)
        is None.
        """
        records = self.steps[self._first_measured() :]
        rates = self._rates(records) if records else {}
        times = [r.data_s + r.compute_s for r in records]
        samples = self.sampler.samples if self.sampler is not None else []
        util = self._gpu_util(records)
        used = [s.gpu_memory_used_bytes for s in samples if s.gpu_memory_used_bytes is not None]
        summary = {
            "device": str(self.device),
            "device_name": device_name(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "steps": len(self.steps),
            "warmup_steps_excluded": len(self.steps) - len(records),
            "step_time_mean_s": float(np.mean(times)) if times else None,
            "step_time_p50_s": _percentile(times, 50),
            "step_time_p90_s": _percentile(times, 90),
            "step_time_p99_s": _percentile(times, 99),
            **{
                key: rates.get(key)
                for key in (
                    "data_wait_fraction",
                    "optimizer_fraction",
                    "optimizer_step_mean_s",
                    "samples_per_second",
                    "sequences_per_second",
                    "tokens_per_second",
                    "padding_ratio",
                    "train_flops_per_second",
                )
            },
            "matmul_peak_flops_per_second": self.peak.flops_per_second if self.peak else None,
            "matmul_peak_steady": self.peak.steady if self.peak else None,
            "matmul_peak_method": self.peak.method if self.peak else None,
            "matmul_peak_seconds": self.peak.seconds if self.peak else None,
            "mfu": rates.get("mfu"),
            "flops_formula": FLOPS_FORMULA if self.flops else None,
            "non_embedding_parameters": self.flops.non_embedding_parameters if self.flops else None,
            "peak_host_memory_mib": self._peak_rss() / MIB,
            "process_max_rss_mib": process_max_rss_bytes() / MIB,
            "peak_gpu_memory_allocated_mib": torch.cuda.max_memory_allocated(self.device) / MIB if self._cuda else None,
            "peak_gpu_memory_reserved_mib": torch.cuda.max_memory_reserved(self.device) / MIB if self._cuda else None,
            "optimizer_state_mib": optimizer_state_bytes(optimizer) / MIB if optimizer is not None else None,
            "gpu_util_mean_percent": float(np.mean(util)) if util else None,
            "gpu_util_p50_percent": _percentile(util, 50),
            "gpu_util_max_percent": max(util) if util else None,
            "gpu_memory_used_max_mib": max(used) / MIB if used else None,
            "nvml": self.sampler.nvml if self.sampler is not None else None,
        }
        self.summary = summary
        return summary

    # -- TrainerCallback events ------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.device = normalise_device(args.device)
        self.dtype = training_dtype(args, model)
        self.summary, self.steps, self._pending, self._logged = None, [], _Pending(), 0
        try:
            self.flops = TransformerFlops.from_model(model)
        except ValueError as exc:
            self.flops = None
            logger.warning("efficiency: no model FLOPs, so no MFU (%s)", exc)
        self.peak = measure_matmul_peak(self.device, self.dtype)
        if self._cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.sampler = UsageSampler(self.sample_interval_s, self.device.index if self._cuda else None).start()
        self._mark = self._now()

    def on_step_begin(self, args, state, control, **kwargs):
        now = self._now()
        self._data_wait, self._step_start = now - self._mark, now

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._optimizer_start = self._now()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self._optimizer_s = self._now() - self._optimizer_start

    def on_step_end(self, args, state, control, **kwargs):
        now = self._now()
        pending = self._pending
        self.steps.append(
            StepRecord(
                start=self._step_start - self._data_wait,
                data_s=self._data_wait,
                compute_s=now - self._step_start,
                optimizer_s=self._optimizer_s,
                samples=pending.samples,
                sequences=pending.sequences,
                real_tokens=pending.real_tokens,
                padded_tokens=pending.padded_tokens,
                flops=pending.flops,
            )
        )
        self._pending, self._optimizer_s = _Pending(), 0.0
        self._mark = now

    def on_log(self, args, state, control, **kwargs):
        self._mark = self._now()  # time spent logging, evaluating or saving is not data wait

    on_evaluate = on_save = on_log

    def on_train_end(self, args, state, control, optimizer=None, **kwargs):
        if self.summary is None:
            self.summarize(optimizer)
        if self.sampler is not None:
            self.sampler.stop()

    # -- internals -------------------------------------------------------------------------
    @property
    def _cuda(self) -> bool:
        return self.device.type == "cuda"

    def _now(self) -> float:
        synchronize(self.device)
        return time.perf_counter()

    def _first_measured(self) -> int:
        return min(self.warmup_steps, max(len(self.steps) - 1, 0))

    def _rates(self, records: list[StepRecord]) -> dict:
        seconds = sum(r.data_s + r.compute_s for r in records)
        real = sum(r.real_tokens for r in records)
        padded = sum(r.padded_tokens for r in records)
        flops = sum(r.flops for r in records)
        counted = padded > 0
        achieved = flops / seconds if counted and self.flops is not None else None
        return {
            "step_time_mean_s": seconds / len(records),
            "data_wait_fraction": sum(r.data_s for r in records) / seconds,
            "optimizer_fraction": sum(r.optimizer_s for r in records) / seconds,
            "optimizer_step_mean_s": sum(r.optimizer_s for r in records) / len(records),
            "samples_per_second": sum(r.samples for r in records) / seconds if counted else None,
            "sequences_per_second": sum(r.sequences for r in records) / seconds if counted else None,
            "tokens_per_second": real / seconds if counted else None,
            "padding_ratio": 1 - real / padded if counted else None,
            "train_flops_per_second": achieved,
            "mfu": achieved / self.peak.flops_per_second
            if achieved is not None and self.peak and self.peak.flops_per_second
            else None,
        }

    def _gpu_util(self, records: list[StepRecord]) -> list[float]:
        """GPU utilisation readings taken between the start of ``records`` and the last step's end."""
        if self.sampler is None or not records:
            return []
        end = records[-1].start + records[-1].data_s + records[-1].compute_s
        return [
            s.gpu_util_percent
            for s in self.sampler.samples
            if s.gpu_util_percent is not None and records[0].start <= s.time <= end
        ]

    def _peak_rss(self) -> int:
        samples = self.sampler.samples if self.sampler is not None else []
        return max([s.rss_bytes for s in samples] + [psutil.Process().memory_info().rss])
