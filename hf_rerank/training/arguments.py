"""Training arguments: what a run is, declared once (``TrainingArguments`` subclasses).

Field names are command-line flags of the recipes (``--optimizer lion --lion_scaling 3``) and keys
of their YAML configs. transformers' own ``optim`` field is not used: its only Lion is
bitsandbytes' 8/32-bit one (CUDA only); ``optimizer`` here selects hf-rerank's factory
(``hf_rerank.optim``), which builds lion-pytorch's Lion or torch's AdamW with the same
parameter groups and logs the effective hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import logging

import torch
from transformers import TrainingArguments


@dataclass
class RerankTrainingArguments(TrainingArguments):
    """Arguments shared by every hf-rerank trainer (the optimizer factory)."""

    optimizer: str = field(default="adamw", metadata={"help": "lion or adamw (hf-rerank's factory; `optim` is ignored)"})
    lion_beta1: float = field(default=0.9, metadata={"help": "Lion beta1 (interpolation of momentum and gradient)"})
    lion_beta2: float = field(default=0.99, metadata={"help": "Lion beta2 (momentum decay)"})
    lion_scaling: float | None = field(
        default=None,
        metadata={"help": "treat learning_rate/weight_decay as AdamW-style and use lr/k, wd*k for Lion (the Lion paper: k = 3-10)"},
    )
    lion_triton: bool = field(default=False, metadata={"help": "use lion-pytorch's Triton kernel (CUDA + triton only; else falls back)"})

    def __post_init__(self):
        if self.bf16 and not self.use_cpu and not torch.cuda.is_available():
            self.use_cpu = True  # transformers allows bf16 on a CPU only when told it is one
        super().__post_init__()
        if self.optimizer not in ("lion", "adamw"):
            raise ValueError(f"optimizer must be 'lion' or 'adamw', got {self.optimizer!r}")
        if self.lion_scaling is not None and self.optimizer != "lion":
            logging.getLogger("hf_rerank").warning(
                "lion_scaling=%s is ignored: it converts AdamW-style hyperparameters for Lion, and the optimizer is %s",
                self.lion_scaling, self.optimizer)
            self.lion_scaling = None


@dataclass
class CrossEncoderTrainingArguments(RerankTrainingArguments):
    """A cross-encoder run: loss, grouping, sequence length."""

    loss: str = field(default="bce", metadata={"help": "bce (pointwise, the first paper's), listwise (softmax CE over groups), ranknet or margin (pairwise)"})
    group_size: int = field(default=8, metadata={"help": "passages per group for grouped losses: 1 positive + group_size-1 negatives"})
    max_length: int = field(default=512, metadata={"help": "tokens per (query, passage) pair; the passage is truncated, never the query"})
    length_bucketing: bool = field(default=True, metadata={"help": "batch examples of similar length together (less padding)"})
