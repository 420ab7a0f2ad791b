"""Memory of a training process: the bytes of the optimizer's state, the process's lifetime peak
resident memory. (Resident memory during training is sampled by :mod:`.sampler`.)"""

from __future__ import annotations

import resource
import sys

import torch

MIB = 1 << 20  # bytes per MiB


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
