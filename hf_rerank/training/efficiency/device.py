"""The device being measured: its canonical ``torch.device``, a synchronisation point, its name.

Every timing mark of the efficiency package synchronises CUDA (:func:`synchronize`), so GPU work
is timed, not queued.
"""

from __future__ import annotations

import platform

import torch


def synchronize(device: torch.device) -> None:
    """Wait for ``device``'s queued work (CUDA); nothing on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def normalise_device(device) -> torch.device:
    """``device`` (a ``torch.device`` or a string) as a ``torch.device``; a CUDA device without an
    index becomes the current one (``cuda:<current>``)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


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
