"""Readings taken in a background thread while training runs (:class:`UsageSampler`).

Every ``interval_s`` seconds: the process's resident memory (psutil) and, on an NVIDIA GPU, NVML's
(``nvidia-ml-py``) utilisation (the share of time in which any kernel ran, as ``nvidia-smi`` shows
it: a busy GPU is not a fast one, which is why MFU is reported beside it) and device memory in use
(all processes).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psutil


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
