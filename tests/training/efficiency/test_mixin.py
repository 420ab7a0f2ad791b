"""EfficiencyTrainerMixin and EfficiencyArguments: every hf-rerank trainer measures, the callback is
attached only when asked, and the package needs no other hf-rerank dependency."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification

from hf_rerank.data.collators import CrossEncoderCollator
from hf_rerank.training import efficiency
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.cross_encoder import CrossEncoderTrainer
from hf_rerank.training.efficiency.callback import EfficiencyCallback
from hf_rerank.training.efficiency.mixin import EfficiencyArguments, EfficiencyTrainerMixin
from tests.conftest import tiny_config
from tests.training.efficiency.tiny_run import CORPUS, QUERIES, make_trainer

pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_trainer_measures_efficiency():
    assert issubclass(CrossEncoderTrainingArguments, EfficiencyArguments)
    assert issubclass(CrossEncoderTrainer, EfficiencyTrainerMixin)


def test_callback_attaches_only_when_asked(tmp_path, tokenizer):
    collator = CrossEncoderCollator(tokenizer, QUERIES, CORPUS, max_length=32)
    assert make_trainer(tmp_path, tokenizer, collator, efficiency_metrics=False).efficiency is None
    given = EfficiencyCallback(warmup_steps=0)
    trainer = CrossEncoderTrainer(
        model=AutoModelForSequenceClassification.from_config(tiny_config(num_labels=1)),
        args=CrossEncoderTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none"),
        train_dataset=[],
        data_collator=collator,
        callbacks=[given],
    )
    assert trainer.efficiency is given  # the one passed in, not a second one
    assert sum(isinstance(cb, EfficiencyCallback) for cb in trainer.callback_handler.callbacks) == 1


def test_package_needs_no_other_hf_rerank_dependency():
    """benchmarks/gpu_check.py imports it on machines with only torch, transformers, numpy, psutil:
    its modules import one another and nothing else of hf-rerank."""
    package = Path(efficiency.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert {path.stem for path in modules} >= {"callback", "counts", "device", "flops", "memory", "mixin", "peak"}
    imported: set[str] = set()
    for path in modules:
        tree = ast.parse(path.read_text())
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    ours = {name for name in imported if name.split(".")[0] == "hf_rerank"}
    assert ours and all(name.startswith("hf_rerank.training.efficiency.") for name in ours), ours
    others = {name.split(".")[0] for name in imported - ours}
    assert others - set(sys.stdlib_module_names) == {"numpy", "psutil", "torch", "transformers", "pynvml"}
