"""optimizer_state_bytes of AdamW and Lion, through wrappers, shared storages counted once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from lion_pytorch import Lion

from hf_rerank.training.efficiency.memory import optimizer_state_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_step(optimizer, model):
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    return optimizer


def test_optimizer_state_bytes_of_adamw_and_lion():
    model = torch.nn.Linear(3, 4)  # 12 + 4 fp32 parameters
    assert optimizer_state_bytes(torch.optim.AdamW(model.parameters())) == 0  # no state before a step
    adamw = _one_step(torch.optim.AdamW(model.parameters(), foreach=False), model)
    assert optimizer_state_bytes(adamw) == 2 * 16 * 4 + 2 * 4  # exp_avg, exp_avg_sq; a float32 step per tensor
    lion = _one_step(Lion(model.parameters(), lr=1e-4), model)
    assert optimizer_state_bytes(lion) == 16 * 4  # exp_avg only

    @dataclass
    class Wrapper:  # accelerate's AcceleratedOptimizer holds the optimizer in .optimizer
        optimizer: torch.optim.Optimizer

    assert optimizer_state_bytes(Wrapper(lion)) == 16 * 4
    buffer = torch.zeros(10)
    shared = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])
    shared.state["a"] = {"x": buffer[:5], "y": buffer[5:]}  # one storage, counted once
    assert optimizer_state_bytes(shared) == 40
