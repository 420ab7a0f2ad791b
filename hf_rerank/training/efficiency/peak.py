"""A matmul rate measured on the device for the dtype in use (:func:`measure_matmul_peak`).

MFU is model FLOPs / step time / this rate, not a datasheet peak, so it says how close training
comes to what this chip does on large matmuls: timed square matmuls of a size that fits a 2-second
budget, best of up to 9 rounds, with a warning when the median round is more than 10% below the
best (the device was shared); skipped, with no MFU, where the dtype is too slow to time.
"""

from __future__ import annotations

import functools
import logging
import math
import statistics
import time
from dataclasses import dataclass

import torch

from hf_rerank.training.efficiency.device import device_name, normalise_device, synchronize

logger = logging.getLogger("hf_rerank")


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
    device = normalise_device(device)
    return _measure_matmul_peak(device, dtype, torch.get_num_threads() if device.type == "cpu" else None, budget_s)


def _time_products(a, b, out, device: torch.device, count: int) -> float:
    """Seconds for ``count`` back-to-back ``a @ b`` products into ``out`` (synchronised)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(count):
        torch.matmul(a, b, out=out)
    synchronize(device)
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
