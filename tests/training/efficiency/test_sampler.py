"""UsageSampler against a fake ``pynvml``: readings in a thread, CUDA_VISIBLE_DEVICES, NVML missing or failing."""

from __future__ import annotations

import sys
import time

import pytest

from hf_rerank.training.efficiency.memory import MIB
from hf_rerank.training.efficiency.sampler import UsageSampler
from tests.training.efficiency.fake_pynvml import fake_pynvml

pytestmark = pytest.mark.usefixtures("one_thread")


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
