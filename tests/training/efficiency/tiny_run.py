"""A tiny cross-encoder training run on the CPU (24 pairs, batches of 4, 5 steps) for the callback and
the mixin."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from hf_rerank.data.examples import PairExample
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from tests.conftest import tiny_config

QUERIES = {"q1": "what do bees make", "q2": "how tall is mount everest and when was it first climbed"}
CORPUS = {
    "p1": "bees make honey",
    "p2": "honey bees store honey in wax combs built inside the hive during the summer months",
    "p3": "mount everest is 8849 metres tall",
    "p4": "everest was first climbed in 1953 by tenzing norgay and edmund hillary on the south col route",
}


def make_trainer(tmp_path: Path, tokenizer, collator, **overrides) -> CrossEncoderTrainer:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1))
    pairs = [PairExample(q, p, float(p in ("p1", "p3"))) for q in QUERIES for p in CORPUS] * 3  # 24 pairs
    args = CrossEncoderTrainingArguments(
        **{
            "output_dir": str(tmp_path),
            "per_device_train_batch_size": 4,
            "max_steps": 5,
            "logging_steps": 2,
            "learning_rate": 1e-3,
            "report_to": "none",
            "use_cpu": True,
            "save_strategy": "no",
            "disable_tqdm": True,
            "dataloader_num_workers": 0,
            "max_length": 32,
            "length_bucketing": False,
            "seed": 3,
            **overrides,
        }
    )
    return CrossEncoderTrainer(
        model=model, args=args, train_dataset=pairs, data_collator=collator, processing_class=tokenizer
    )
