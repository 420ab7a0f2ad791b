"""``train_cross_encoder`` with LoRA (``--lora_r``) end to end on a tiny cross-encoder and the bundled sample.

Two optimizer steps of a 2-layer 32-dim BERT on ``sample-train``, reranking ``sample-test``'s BM25
top-20: the run must train only the adapters and the classification head, and save the adapters
(``adapter/``) and the merged model (the run's final checkpoint), which score alike wherever they load.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hf_rerank.models import CrossEncoder, detect_model_type
from hf_rerank.training.arguments import CrossEncoderTrainingArguments
from hf_rerank.training.run_cross_encoder import DataArguments, ModelArguments, train_cross_encoder

pytestmark = pytest.mark.usefixtures("one_thread")

QUERIES = ["what do bees make", "who wrote hamlet", "bees", "what is the capital of france"]
PASSAGES = [
    "bees make honey from nectar",
    "shakespeare wrote hamlet",
    "honey is sweet",
    "paris is the capital of france",
]


def test_lora_run_trains_adapters_and_head_and_saves_both_forms(tmp_path, tiny_cross_encoder_dir):
    st = pytest.importorskip("sentence_transformers")
    output = tmp_path / "run"
    args = CrossEncoderTrainingArguments(
        output_dir=str(output),
        loss="bce",
        per_device_train_batch_size=8,
        max_steps=2,
        learning_rate=1e-2,
        max_length=64,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        precision="fp32",
        seed=3,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
    )
    data = DataArguments(
        train_data="sample-train",
        positive_grade=2,
        negatives_per_query=2,
        eval_holdout=0,
        eval_data="sample-test",
        eval_name="sample",
        eval_depth=20,
    )
    summary = train_cross_encoder(ModelArguments(str(tiny_cross_encoder_dir)), data, args)

    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["lora"] == summary["lora"] and metrics["global_steps"] == 2 and "sample" in metrics["eval"]
    lora = metrics["lora"]
    assert (lora["r"], lora["alpha"], lora["dropout"]) == (4, 8, 0.0)
    assert lora["target_modules"] == ["query", "value"] and lora["modules_to_save"] == ["classifier"]
    assert lora["trainable_parameters"] == 1024 + 33  # the adapters (see tests/models/test_lora.py) + the head

    adapter = output / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert not (adapter / "model.safetensors").exists()
    assert (output / "config.json").is_file() and (output / "model.safetensors").is_file()
    assert detect_model_type(adapter) == detect_model_type(output) == "cross-encoder"

    # only the LoRA targets (merged into their weights) and the head differ from the starting checkpoint
    before, after = load_file(tiny_cross_encoder_dir / "model.safetensors"), load_file(output / "model.safetensors")
    assert before.keys() == after.keys()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {
        f"bert.encoder.layer.{i}.attention.self.{m}.weight" for i in (0, 1) for m in ("query", "value")
    } | {"classifier.weight", "classifier.bias"}

    pairs = list(zip(QUERIES, PASSAGES))
    scores = {
        "hf-rerank merged": CrossEncoder.from_pretrained(output, precision="fp32", max_length=64),
        "hf-rerank adapter": CrossEncoder.from_pretrained(adapter, precision="fp32", max_length=64),
    }
    scores = {name: model.score_pairs(QUERIES, PASSAGES, show_progress=False) for name, model in scores.items()}
    identity = torch.nn.Identity()  # raw logits, as hf-rerank scores (sentence-transformers' default: sigmoid)
    scores["sentence-transformers merged"] = st.CrossEncoder(
        str(output), activation_fn=identity, max_length=64, device="cpu"
    ).predict(pairs, show_progress_bar=False)
    on_base = st.CrossEncoder(str(tiny_cross_encoder_dir), activation_fn=identity, max_length=64, device="cpu")
    on_base.load_adapter(str(adapter))
    scores["sentence-transformers adapter"] = on_base.predict(pairs, show_progress_bar=False)
    reference = scores["hf-rerank merged"]
    for name, values in scores.items():
        assert np.abs(values - reference).max() <= 1e-5, name
    untrained = CrossEncoder.from_pretrained(tiny_cross_encoder_dir, precision="fp32", max_length=64)
    assert np.abs(untrained.score_pairs(QUERIES, PASSAGES, show_progress=False) - reference).max() > 1e-4
