"""``Loss``: what every score loss object is (options, shape, target), and how the registry builds one.

A loss object holds its options (set from the config: ``--loss_temperature 0.05`` becomes
``KLDistillation(temperature=0.05)``) and is called as ``loss(scores, targets, mask=None)`` ->
a scalar tensor. Class attributes say how the trainer feeds it:

- ``grouped``: needs ``(B, G)`` lists (one query per row) rather than independent pairs;
- ``target``: ``"labels"`` (relevance grades from qrels) or ``"teacher"`` (a teacher's scores for
  the same candidates, :mod:`hf_rerank.data.teacher`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

TARGETS = ("labels", "teacher")


@dataclasses.dataclass(frozen=True)
class Loss:
    """Base class of the registered score losses (see the module docstring); subclasses are dataclasses
    whose fields are the loss's options and implement :meth:`compute`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    grouped: ClassVar[bool]
    target: ClassVar[str]

    def __call__(self, scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.compute(scores, targets, mask)

    def compute(self, scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options this loss takes (its dataclass fields), in declaration order."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def options(self) -> dict:
        """``{option: value}`` as set, for metrics.json and the model card."""
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """``name(option=value, ...)``, e.g. ``kl(temperature=0.05)``."""
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.options().items())})"
