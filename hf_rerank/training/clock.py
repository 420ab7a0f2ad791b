"""A run's training wall time across resumed sessions: ``TrainingClockCallback``.

The Trainer's ``train_runtime`` covers one call of ``train()``; a run resumed from a checkpoint
would otherwise report only its last session. The callback writes, into every checkpoint it sees
saved, ``hf_rerank_clock.json``: ``{"train_seconds": s, "global_step": n}``, the training seconds
of every session up to that save. A session resumed from that checkpoint starts from ``s``
(:attr:`TrainingClockCallback.prior_seconds`), so ``prior_seconds + train_runtime`` is the
run's whole training time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from hf_rerank.data.formats import atomic_write

CLOCK_FILE = "hf_rerank_clock.json"


def read_prior_seconds(checkpoint: str | Path | None) -> float:
    """Training seconds recorded in ``checkpoint``'s clock file (0 for none, or a checkpoint that
    predates the clock)."""
    path = Path(checkpoint) / CLOCK_FILE if checkpoint else None
    if path is None or not path.is_file():
        return 0.0
    return float(json.loads(path.read_text())["train_seconds"])


class TrainingClockCallback(TrainerCallback):
    """Keep the run's training seconds in each checkpoint (module docstring).

    Args:
        resumed_from: the checkpoint directory this session resumes from, or None.
    """

    def __init__(self, resumed_from: str | Path | None = None):
        self.prior_seconds = read_prior_seconds(resumed_from)
        self._started = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            seconds = self.prior_seconds + time.perf_counter() - self._started
            with atomic_write(checkpoint / CLOCK_FILE) as handle:
                json.dump({"train_seconds": seconds, "global_step": state.global_step}, handle)
