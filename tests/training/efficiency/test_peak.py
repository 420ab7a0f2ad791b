"""measure_matmul_peak: measured once, within its budget, the busy-device warning, skipped when too slow."""

from __future__ import annotations

import re
import time

import pytest
import torch

from hf_rerank.training.efficiency import peak as peak_module
from hf_rerank.training.efficiency.peak import measure_matmul_peak

pytestmark = pytest.mark.usefixtures("one_thread")


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
    peak = peak_module._measure_matmul_peak.__wrapped__(torch.device("cpu"), dtype, 1, 1.0)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0 and peak.seconds == pytest.approx(elapsed, abs=0.05)
    assert peak.flops_per_second > 1e7 and "of a 1 s budget" in peak.method


def fake_products(monkeypatch, seconds_per_product):
    """Replace the timed products by ``seconds_per_product(call, count)`` (call counts from 0)."""
    calls = {"n": -1}

    def timed(a, b, out, device, count):
        calls["n"] += 1
        return seconds_per_product(calls["n"], count) * count

    monkeypatch.setattr(peak_module, "_time_products", timed)
    monkeypatch.setattr(peak_module, "PEAK_SIZES", {"cpu": (8,)})  # one size: a warm-up and a probe, then rounds


def test_matmul_peak_warns_when_the_device_was_busy(monkeypatch, caplog):
    # 2 ms per product, 6 ms in every other timed round (as if another process shared the cores):
    # five of the nine rounds are slow, so the median is a third of the best.
    monkeypatch.setattr(peak_module, "PEAK_ROUND_SECONDS", 0.01)  # 5 products per round
    fake_products(monkeypatch, lambda call, count: 0.006 if call >= 2 and call % 2 == 0 else 0.002)
    with caplog.at_level("WARNING", logger="hf_rerank"):
        peak = peak_module._measure_matmul_peak.__wrapped__(torch.device("cpu"), torch.float32, 1, 2.0)
    assert not peak.steady and "best of 9 timed rounds of 5 back-to-back 8x8x8" in peak.method
    assert peak.flops_per_second == pytest.approx(2 * 8**3 / 0.002)
    assert peak.median_flops_per_second == pytest.approx(peak.flops_per_second / 3)
    assert "the device was busy" in caplog.text


def test_matmul_peak_takes_fewer_rounds_when_the_budget_is_short(monkeypatch):
    fake_products(monkeypatch, lambda call, count: 0.05)  # 0.1 s rounds of 2 products
    peak = peak_module._measure_matmul_peak.__wrapped__(torch.device("cpu"), torch.float32, 1, 0.55)
    assert "best of 5 timed rounds of 2 back-to-back" in peak.method  # just under 0.55 s left for rounds of 0.1 s


def test_matmul_peak_is_skipped_when_one_product_exceeds_the_budget(monkeypatch, caplog):
    fake_products(monkeypatch, lambda call, count: 3.0)
    with caplog.at_level("WARNING", logger="hf_rerank"):
        peak = peak_module._measure_matmul_peak.__wrapped__(torch.device("cpu"), torch.bfloat16, 1, 2.0)
    assert peak.flops_per_second is None and peak.method.startswith("skipped: one 8x8x8 bfloat16 product took 3.0 s")
    assert "no MFU for this run" in caplog.text
