"""Training efficiency, measured the same way in every run: ``EfficiencyCallback``.

What is measured, and how (all per process, i.e. per device under DDP):

- **Step time**: per optimizer step, the wall time from the end of the previous step (or of the
  logging, evaluation or saving that followed it) to the end of this one, split into *data wait*
  (fetching and collating the step's batches: tokenisation on the critical path shows here) and
  *compute* (forward, backward, optimizer), of which the *optimizer* step (``optimizer.step()``
  alone) is also timed. CUDA is synchronised at each mark (4 per step), so GPU work is timed,
  not queued. The first ``warmup_steps`` steps (allocator warm-up, lazy initialisation,
  ``torch.compile``) are left out of every rate below; the summary says how many.
- **Samples, sequences, tokens**: counted from the batches themselves (:func:`count_batch`): real
  tokens are the ones under an attention mask, padded tokens are every position of the padded
  batch; padding ratio = 1 - real / padded.
- **Model FLOPs** (:class:`TransformerFlops`): per sequence of ``n`` real tokens,
  ``(4 N + 2 N_trainable) n + 12 H sum_layers pairs_l(n)``; ``N`` is the number of non-embedding
  parameters (every parameter not owned by an ``nn.Embedding``), ``H`` the hidden size, and
  ``pairs_l(n)`` the (query, key) pairs layer ``l`` attends: ``n^2`` for global attention, fewer
  for a sliding window. With every weight trained this is PaLM's ``6 N + 12 L H T`` per token
  (Chowdhery et al. 2022, appendix B; the ``6 N`` is Kaplan et al. 2020, section 2.1): 2 FLOPs
  per weight per token forward, 4 backward (2 for the input gradient, 2 for the weight gradient,
  which frozen weights skip), and per layer two ``n x n x H`` matmuls (``QK^T``, ``AV``) at 2
  FLOPs per multiply-add, times 3 for forward plus backward. Padding is not useful work and is
  not counted. Norms, activations, softmax and the head's per-sequence work are not counted
  either (a classification head applied to one token per sequence is counted per token: < 1.5%
  too much for MiniLM-L6, < 0.5% for ModernBERT-base).
- **MFU** = model FLOPs / step time / a matmul peak *measured on this device for the dtype in
  use* (:func:`measure_matmul_peak`: timed square matmuls of a size that fits a 2-second budget,
  best of up to 9 rounds, with a warning when the median round is more than 10% below the best,
  i.e. the device was shared; skipped, with no MFU, where the dtype is too slow to time), not a
  datasheet peak, so it says how close training comes to what this chip does on large matmuls.
- **Memory**: peak resident memory of the process, sampled every ``sample_interval_s`` seconds
  during training (psutil), and the process's lifetime maximum (``getrusage``); on CUDA, the
  peak allocated and reserved by PyTorch during training; the bytes of the optimizer's state
  tensors at the end of training.
- **GPU use (NVIDIA)**: NVML (``nvidia-ml-py``) sampled in a background thread every
  ``sample_interval_s`` seconds: utilisation (the share of time in which any kernel ran, as
  ``nvidia-smi`` shows it: a busy GPU is not a fast one, which is why MFU is reported beside it)
  and device memory in use (all processes).

Where the numbers go: with :class:`EfficiencyTrainerMixin` in the trainer, every training log
gains ``eff_*`` rates over the steps since the previous log (:meth:`EfficiencyCallback.interval_metrics`),
and the end-of-training log (and so ``TrainOutput.metrics``) gains ``eff_<key>`` for every
number of :meth:`EfficiencyCallback.summarize`, whose dict is kept as ``callback.summary`` for
``metrics.json`` (``"efficiency"``, which :mod:`hf_rerank.hub.card` puts in the model card).

This module imports only torch, transformers, numpy and psutil (and, on CUDA, ``pynvml`` if
installed), so ``benchmarks/gpu_check.py`` can use it on a machine without hf-rerank's other
dependencies.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import psutil
import torch
from torch import nn
from transformers import TrainerCallback

logger = logging.getLogger("hf_rerank")

MIB = 1 << 20

__all__ = [
    "BatchCounts",
    "EfficiencyArguments",
    "EfficiencyCallback",
    "EfficiencyTrainerMixin",
    "MatmulPeak",
    "TransformerFlops",
    "UsageSampler",
    "count_batch",
    "measure_matmul_peak",
    "optimizer_state_bytes",
]


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------


@dataclass
class BatchCounts:
    """What one batch holds: ``samples`` (training examples), ``sequences`` (rows the model
    encodes), ``real_tokens`` (under an attention mask), ``padded_tokens`` (all positions) and
    ``lengths`` (real tokens per sequence, int64)."""

    samples: int
    sequences: int
    real_tokens: int
    padded_tokens: int
    lengths: np.ndarray


def _tensors_named(inputs: Mapping, suffix: str):
    for name, value in inputs.items():
        if isinstance(value, Mapping):
            yield from _tensors_named(value, suffix)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, Mapping):
                    yield from _tensors_named(item, suffix)
        elif torch.is_tensor(value) and (name == suffix or name.endswith("_" + suffix)):
            yield value


def count_batch(inputs: Mapping, samples: int | None = None) -> BatchCounts:
    """Count a model-input batch.

    Args:
        inputs: the batch (a mapping, possibly nested in mappings and lists of mappings): every
            tensor named ``attention_mask`` or
            ``*_attention_mask`` counts as sequences of rows (leading dimensions flattened) whose
            real tokens are the mask's nonzero entries. Without any mask, tensors named
            ``input_ids`` / ``*_input_ids`` count, every position real (nothing was padded).
        samples: training examples in the batch; default: the first dimension of ``labels``
            if the batch has it (a cross-encoder group of G passages is one sample, G
            sequences), else the rows of the first mask (or input ids).
    Raises:
        ValueError: the batch has neither attention masks nor input ids.
    """
    masks = list(_tensors_named(inputs, "attention_mask"))
    if not masks:
        masks = [torch.ones_like(ids, dtype=torch.bool) for ids in _tensors_named(inputs, "input_ids")]
    if not masks:
        raise ValueError(f"cannot count tokens: no attention_mask or input_ids among {sorted(inputs)}")
    lengths = np.concatenate(
        [(mask.reshape(-1, mask.shape[-1]) != 0).sum(dim=-1).cpu().numpy().astype(np.int64) for mask in masks]
    )
    padded = sum(mask.numel() for mask in masks)
    first_rows = masks[0].numel() // masks[0].shape[-1]
    if samples is None:
        labels = inputs.get("labels")
        samples = int(labels.shape[0]) if torch.is_tensor(labels) and labels.dim() > 0 else first_rows
    return BatchCounts(
        samples=samples,
        sequences=len(lengths),
        real_tokens=int(lengths.sum()),
        padded_tokens=int(padded),
        lengths=lengths,
    )


# ---------------------------------------------------------------------------------------------
# FLOPs
# ---------------------------------------------------------------------------------------------

FLOPS_FORMULA = (
    "(4 N + 2 N_trainable) x real tokens + 12 H x attended (query, key) pairs per layer "
    "(PaLM appendix B; Kaplan et al. 2020): 6 N + 12 L H T per token with every weight trained"
)


@dataclass(frozen=True)
class TransformerFlops:
    """Training FLOPs of a transformer encoder (see the module docstring for the formula).

    Attributes:
        non_embedding_parameters: N, parameters not owned by an ``nn.Embedding``.
        trainable_non_embedding_parameters: those of them with ``requires_grad``.
        hidden_size: H.
        windows: per layer, ``None`` for global attention, or ``w`` for a bidirectional sliding
            window in which a token attends to the tokens at distance <= ``w``.
    """

    non_embedding_parameters: int
    trainable_non_embedding_parameters: int
    hidden_size: int
    windows: tuple[int | None, ...]

    @classmethod
    def from_model(cls, model: nn.Module) -> TransformerFlops:
        """Read N from ``model``'s parameters and H, the layers and their attention windows from
        its config (``hidden_size``, ``num_hidden_layers``; ``layer_types`` with
        ``sliding_attention`` layers and ``sliding_window``, as ModernBERT has).

        Raises:
            ValueError: the config has no ``hidden_size`` or ``num_hidden_layers``.
        """
        config = getattr(model, "config", None)
        hidden = getattr(config, "hidden_size", None)
        layers = getattr(config, "num_hidden_layers", None)
        if hidden is None or layers is None:
            raise ValueError(f"{type(model).__name__}: its config gives no hidden_size and num_hidden_layers")
        embedding = {
            id(p) for module in model.modules() if isinstance(module, nn.Embedding) for p in module.parameters()
        }
        parameters = [p for p in model.parameters() if id(p) not in embedding]
        layer_types = getattr(config, "layer_types", None) or ["full_attention"] * layers
        window = getattr(config, "sliding_window", None)
        windows = tuple(window if kind == "sliding_attention" and window is not None else None for kind in layer_types)
        return cls(
            non_embedding_parameters=sum(p.numel() for p in parameters),
            trainable_non_embedding_parameters=sum(p.numel() for p in parameters if p.requires_grad),
            hidden_size=int(hidden),
            windows=windows,
        )

    def training_flops(self, lengths: np.ndarray) -> float:
        """FLOPs of one forward and backward pass over sequences of ``lengths`` real tokens."""
        n = np.asarray(lengths, dtype=np.float64)
        dense = (4 * self.non_embedding_parameters + 2 * self.trainable_non_embedding_parameters) * n.sum()
        pairs = 0.0
        for window in self.windows:
            if window is None:
                pairs += float((n * n).sum())
            else:  # each token, itself plus up to `window` tokens on either side
                m = np.minimum(window, np.maximum(n - 1, 0))
                pairs += float((n + 2 * (m * n - m * (m + 1) / 2)).sum())
        return float(dense + 12 * self.hidden_size * pairs)


# ---------------------------------------------------------------------------------------------
# Matmul peak
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatmulPeak:
    """A measured matmul rate: ``flops_per_second`` (the best timed round; None when the measurement
    was skipped because not even the smallest product fitted the time budget) for ``dtype`` on
    ``device``; ``median_flops_per_second``, the median round, and ``steady``, whether the median
    is within 10% of the best (if not, something else was using the device while it was measured,
    and MFU against it is not comparable between runs); ``seconds``, the wall time the measurement
    took; ``method`` says what was done."""

    flops_per_second: float | None
    device: str
    dtype: str
    method: str
    median_flops_per_second: float | None = None
    steady: bool = True
    seconds: float = 0.0


PEAK_ROUNDS = 9
PEAK_ROUND_SECONDS = 0.1
PEAK_BUDGET_SECONDS = 2.0
PEAK_SIZES = {"cuda": (1024, 2048, 4096, 8192), "cpu": (256, 512, 1024, 2048)}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _normalise_device(device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def measure_matmul_peak(device, dtype: torch.dtype, budget_s: float = PEAK_BUDGET_SECONDS) -> MatmulPeak:
    """Best matmul rate of ``device`` in ``dtype`` (FLOP/s) within a wall-clock budget of about
    ``budget_s`` seconds, measured once per process (and, on a CPU, per ``torch.get_num_threads()``)
    and cached.

    Square ``n x n`` matmuls (``torch.matmul`` into a preallocated output, at ``2 n^3`` FLOPs per
    product; CPU threads: the current ``torch.get_num_threads()``; CUDA fp32: TF32 as
    ``torch.backends.cuda.matmul`` allows). Sizes are tried from small to large (CPU 256-2048,
    CUDA 1024-8192): one warm-up and one timed product each, growing while the next size's product
    (predicted from this one's at ``n^3``) would take at most 1.5 ``PEAK_ROUND_SECONDS`` and probing
    has used at most a third of the budget. Every size that fitted but the smallest (or the only
    one) is then timed in up to 9 rounds of as many back-to-back products as fill about 0.1 s
    (the rest of the budget shared between the sizes; CUDA synchronised around each round): the
    best round over all sizes, and the median round of that size. (Large square products are not
    always the fastest: on a 2-core AVX2 EPYC, fp32 512^3 ran at ~97 GFLOP/s, 2048^3 at ~78.) A
    median more than 10% below the best is logged as a warning (``steady`` false): the device was
    shared while it was measured. Where even the smallest product takes longer than the whole
    budget (a dtype the device only emulates), the measurement is skipped (``flops_per_second``
    None, so no MFU) and the method says why.
    About 1.5-2 s on a 2-core CPU or an H100; logged at INFO with what it did.
    """
    device = _normalise_device(device)
    return _measure_matmul_peak(device, dtype, torch.get_num_threads() if device.type == "cpu" else None, budget_s)


def _time_products(a, b, out, device: torch.device, count: int) -> float:
    """Seconds for ``count`` back-to-back ``a @ b`` products into ``out`` (synchronised)."""
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(count):
        torch.matmul(a, b, out=out)
    _synchronize(device)
    return time.perf_counter() - start


@functools.cache
def _measure_matmul_peak(device: torch.device, dtype: torch.dtype, threads: int | None, budget_s: float) -> MatmulPeak:
    started = time.perf_counter()
    name = str(dtype).removeprefix("torch.")
    sizes = PEAK_SIZES["cuda" if device.type == "cuda" else "cpu"]
    generator = torch.Generator(device=device).manual_seed(0)
    fitted: dict[int, tuple] = {}  # size -> (seconds for one product, operands)
    for n in sizes:
        if fitted:
            largest = max(fitted)
            if (
                fitted[largest][0] * (n / largest) ** 3 > 1.5 * PEAK_ROUND_SECONDS
                or time.perf_counter() - started > budget_s / 3
            ):
                break  # the next size would not fit a round, or probing has had its share of the budget
        a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
        b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
        out = torch.empty(n, n, device=device, dtype=dtype)
        seconds = _time_products(a, b, out, device, 1)  # first use: includes lazy initialisation
        if seconds <= 2 * PEAK_ROUND_SECONDS:
            seconds = _time_products(a, b, out, device, 1)
        if seconds > 2 * PEAK_ROUND_SECONDS and fitted:
            break  # slower than predicted: the sizes before it stand
        fitted[n] = (seconds, (a, b, out))
    where = (
        f"torch CPU threads: {threads}"
        if device.type == "cpu"
        else f"TF32 {'allowed' if torch.backends.cuda.matmul.allow_tf32 else 'off'}"
        if dtype == torch.float32
        else device_name(device)
    )
    tried = list(fitted)
    chosen = min(fitted)
    if fitted[chosen][0] > budget_s:
        elapsed = time.perf_counter() - started
        method = (
            f"skipped: one {chosen}x{chosen}x{chosen} {name} product took {fitted[chosen][0]:.1f} s, more than "
            f"the {budget_s:g} s budget ({where}); {name} is likely emulated on this device"
        )
        logger.warning("matmul peak: %s; no MFU for this run", method)
        return MatmulPeak(None, str(device), name, method, None, True, elapsed)
    # time every fitted size but the smallest (overhead-bound) in rounds: the fastest size wins
    timed = tried[1:] or tried
    best, rates = 0.0, []
    for index, n in enumerate(timed):
        single, (a, b, out) = fitted[n]
        inner = max(1, math.floor(PEAK_ROUND_SECONDS / max(single, 1e-9)))
        share = (budget_s - (time.perf_counter() - started)) / (len(timed) - index)
        count = max(1, min(PEAK_ROUNDS, math.floor(share / max(inner * single, 1e-9))))
        size_rates = [2 * n**3 * inner / _time_products(a, b, out, device, inner) for _ in range(count)]
        if max(size_rates) > best:
            best, rates, chosen, chosen_inner = max(size_rates), size_rates, n, inner
    del a, b, out, fitted
    median = statistics.median(rates)
    steady = median >= 0.9 * best
    elapsed = time.perf_counter() - started
    method = (
        f"best of {len(rates)} timed rounds of {chosen_inner} back-to-back {chosen}x{chosen}x{chosen} {name} "
        f"torch.matmul products (median round {median / 1e9:.1f} GFLOP/s; sizes probed: {', '.join(map(str, tried))}, "
        f"timed in rounds: {', '.join(map(str, timed))}; "
        f"{elapsed:.1f} s of a {budget_s:g} s budget; {where})"
    )
    logger.info("matmul peak: %.1f GFLOP/s, %s", best / 1e9, method)
    if not steady:
        logger.warning(
            "matmul peak on %s: the median round (%.1f GFLOP/s) is more than 10%% below the best (%.1f): "
            "the device was busy while it was measured; MFU is relative to the best round",
            device,
            median / 1e9,
            best / 1e9,
        )
    return MatmulPeak(best, str(device), name, method, median, steady, elapsed)


def device_name(device: torch.device) -> str:
    """``torch.cuda.get_device_name`` on CUDA; on a CPU its model name and the threads torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model} ({torch.get_num_threads()} torch threads)"


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def optimizer_state_bytes(optimizer) -> int:
    """Bytes of the tensors in ``optimizer.state`` (Adam's moments, Lion's momentum, step counters).

    Wrappers holding the optimizer in ``.optimizer`` (accelerate's ``AcceleratedOptimizer``) are
    looked through; a storage shared by several state tensors is counted once.
    """
    while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    seen: set[tuple[str, int]] = set()
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                storage = value.untyped_storage()
                key = (str(value.device), storage.data_ptr())
                if key not in seen:
                    seen.add(key)
                    total += storage.nbytes()
    return total


def process_max_rss_bytes() -> int:
    """This process's lifetime peak resident memory (``getrusage``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass(frozen=True)
class UsageSample:
    """One reading: ``time`` (``time.perf_counter()`` s), the process's ``rss_bytes``, and, when NVML
    samples a GPU, its ``gpu_util_percent`` and ``gpu_memory_used_bytes`` (None otherwise)."""

    time: float
    rss_bytes: int
    gpu_util_percent: float | None = None
    gpu_memory_used_bytes: int | None = None


def _nvml_handle(pynvml, cuda_index: int):
    """NVML's handle for torch's CUDA device ``cuda_index``, through ``CUDA_VISIBLE_DEVICES``
    (indices or GPU/MIG UUIDs) when it is set."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        entry = visible.split(",")[cuda_index].strip()
        if entry.isdigit():
            return pynvml.nvmlDeviceGetHandleByIndex(int(entry))
        return pynvml.nvmlDeviceGetHandleByUUID(entry)
    return pynvml.nvmlDeviceGetHandleByIndex(cuda_index)


class UsageSampler:
    """Read the process's resident memory and, given a CUDA device, its GPU's utilisation and
    memory in use (NVML) every ``interval_s`` seconds in a daemon thread, from :meth:`start`
    to :meth:`stop`.

    NVML is used only when ``cuda_index`` is given and ``pynvml`` (package ``nvidia-ml-py``)
    imports and initialises; ``nvml`` says whether it samples, or why not. Readings go to
    ``samples`` (:class:`UsageSample`), one at start and one at stop included.
    """

    def __init__(self, interval_s: float = 0.2, cuda_index: int | None = None):
        self.interval_s = interval_s
        self.cuda_index = cuda_index
        self.samples: list[UsageSample] = []
        self.nvml = "not sampled: not a CUDA device"
        self._pynvml = self._handle = None
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> UsageSampler:
        if self.cuda_index is not None:
            self._start_nvml()
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="hf-rerank-usage-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[UsageSample]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._sample()
        if self._pynvml is not None:
            try:
                self._pynvml.nvmlShutdown()
            except Exception:  # NVML already shut down or the driver went away: nothing to release
                pass
            self._pynvml = self._handle = None
        return self.samples

    def _start_nvml(self) -> None:
        try:
            import pynvml
        except ImportError:
            self.nvml = "not sampled: nvidia-ml-py is not installed (pip install 'hf-rerank[gpu]')"
            return
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # pynvml.NVMLError: no driver, no permission
            self.nvml = f"not sampled: NVML failed to start ({type(exc).__name__}: {exc})"
            return
        self._pynvml = pynvml
        try:
            self._handle = _nvml_handle(pynvml, self.cuda_index)
        except Exception as exc:  # pynvml.NVMLError, or a CUDA_VISIBLE_DEVICES entry NVML cannot resolve
            self.nvml = f"not sampled: no NVML handle for CUDA device {self.cuda_index} ({type(exc).__name__}: {exc})"
            return
        self.nvml = f"sampled every {self.interval_s:g} s"

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        util = used = None
        if self._handle is not None:
            try:
                util = float(self._pynvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
                used = int(self._pynvml.nvmlDeviceGetMemoryInfo(self._handle).used)
            except Exception as exc:  # e.g. NVMLError_NotSupported on a MIG instance
                self.nvml = f"sampling failed ({type(exc).__name__}: {exc})"
                self._handle = None
        self.samples.append(UsageSample(time.perf_counter(), self._process.memory_info().rss, util, used))


# ---------------------------------------------------------------------------------------------
# Callback
# ---------------------------------------------------------------------------------------------


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
        self.device = _normalise_device(args.device)
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
        _synchronize(self.device)
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


# ---------------------------------------------------------------------------------------------
# Trainer and arguments integration
# ---------------------------------------------------------------------------------------------


@dataclass
class EfficiencyArguments:
    """The training-argument field that switches efficiency measurement on (mixed into hf-rerank's
    arguments)."""

    efficiency_metrics: bool = field(
        default=True,
        metadata={"help": "measure throughput, padding, MFU, memory and GPU use (NVML) into the logs and metrics.json"},
    )


class EfficiencyTrainerMixin:
    """Mixed into a ``transformers.Trainer`` (before it in the bases): attaches an
    :class:`EfficiencyCallback` when ``args.efficiency_metrics`` is true (or uses the one passed in
    ``callbacks``), hands it every training batch, and adds its numbers to the training logs
    (``eff_*`` rates at each logging step, the summary's numbers at the end of training).

    Attributes:
        efficiency: the callback, or None when measurement is off.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        attached = [cb for cb in self.callback_handler.callbacks if isinstance(cb, EfficiencyCallback)]
        self.efficiency = attached[0] if attached else None
        if self.efficiency is None and self.args.efficiency_metrics:
            self.efficiency = EfficiencyCallback()
            self.add_callback(self.efficiency)

    def batch_samples(self, inputs) -> int | None:
        """Training examples in a batch, where ``count_batch`` cannot tell (None: it can)."""
        return None

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.efficiency is not None:
            self.efficiency.observe_batch(inputs, self.batch_samples(inputs))
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.efficiency is not None:
            if "loss" in logs:  # a training logging step
                logs.update(self.efficiency.interval_metrics())
            elif "train_runtime" in logs:  # the end of training: these logs are TrainOutput.metrics
                summary = self.efficiency.summarize(self.optimizer)
                logs.update(
                    {
                        f"eff_{key}": value
                        for key, value in summary.items()
                        if isinstance(value, (int, float)) and not isinstance(value, bool)
                    }
                )
        super().log(logs, start_time)
