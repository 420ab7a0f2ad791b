"""Which precision a model computes in: decided here, once, for training, evaluation, the
benchmarks and the efficiency callback.

A *request* is one of ``PRECISIONS``:

- ``auto`` (the default everywhere): bf16 where the device computes it natively, else fp32;
- ``bf16``: refused on a device without native bf16, where it would be emulated (on an AVX2 CPU
  a bf16 matmul runs 60-100x slower than fp32): never a silent slow run;
- ``fp16``: CUDA only (CPUs have no fast fp16 matmul);
- ``fp32``: anywhere.

Native bf16: CUDA devices of compute capability 8.0+ (Ampere and later, as
``torch.cuda.is_bf16_supported`` reports); CPUs where oneDNN has bf16 kernels (AVX512-BF16 or
AMX, as ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` reports). Other devices get fp32 for
``auto``.

:func:`choose_precision` returns a :class:`Precision` (the name, the torch dtype, and a sentence
saying why, for logs, ``metrics.json`` and model cards) or raises :class:`PrecisionError`, whose
message says what to use instead. This module imports only torch, so
``benchmarks/gpu_check.py`` can use it without hf-rerank's other dependencies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from hf_rerank.errors import HfRerankError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
# CPU flags that decide matmul speed per dtype (as /proc/cpuinfo spells them)
MATMUL_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")


class PrecisionError(HfRerankError, ValueError):
    """A precision request this device cannot honour at full speed; the message says what to use."""


@dataclass(frozen=True)
class Precision:
    """A decided precision: ``name`` (``bf16``, ``fp16`` or ``fp32``) for ``device_type`` (``cpu``,
    ``cuda``, ...), the ``requested`` value it came from, and ``reason``, one sentence saying why."""

    name: str
    requested: str
    device_type: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]


@functools.cache
def cpu_flags() -> tuple[str, ...]:
    """The :data:`MATMUL_CPU_FLAGS` this machine's CPU has (from ``/proc/cpuinfo``; empty where it
    cannot be read, e.g. off Linux)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((set(line.split(":", 1)[1].split()) for line in handle if line.startswith("flags")), set())
    except OSError:
        flags = set()
    return tuple(flag for flag in MATMUL_CPU_FLAGS if flag in flags)


def describe_hardware(device_type: str) -> str:
    """``"CPU flags: avx2 fma avx512f avx512_bf16"`` or ``"CUDA: NVIDIA H100 (compute capability 9.0)"``."""
    if device_type == "cuda" and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return f"CUDA: {torch.cuda.get_device_name()} (compute capability {major}.{minor})"
    if device_type == "cpu":
        return "CPU flags: " + (" ".join(cpu_flags()) or "unknown")
    return device_type


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether the hardware computes bf16 natively (CUDA: Ampere+; CPU: AVX512-BF16 or AMX)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def choose_precision(requested: str, device_type: str) -> Precision:
    """Decide the compute precision for a ``requested`` value of :data:`PRECISIONS` on a device of
    type ``device_type``; raises :class:`PrecisionError` where the request would be emulated."""
    if requested not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    hardware = describe_hardware(device_type)
    native = native_bf16(device_type)
    if requested == "auto":
        if native:
            return Precision("bf16", requested, device_type, f"auto: bf16, native on this {device_type} ({hardware})")
        return Precision(
            "fp32", requested, device_type, f"auto: fp32, this {device_type} has no native bf16 ({hardware})"
        )
    if requested == "bf16" and not native:
        raise PrecisionError(
            f"bf16 was asked for, but this {device_type} has no native bf16 ({hardware}); it would be emulated, "
            "60-100x slower than fp32 on a CPU. Use --precision auto (fp32 here, bf16 where native) or --precision fp32"
        )
    if requested == "fp16" and device_type != "cuda":
        raise PrecisionError(
            f"fp16 was asked for on {device_type}: fp16 is for CUDA devices only. "
            "Use --precision auto or --precision fp32"
        )
    return Precision(requested, requested, device_type, f"{requested}, as asked ({hardware})")


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The torch dtype :func:`choose_precision` decides for ``precision`` on ``device``."""
    return choose_precision(precision, torch.device(device).type).dtype
