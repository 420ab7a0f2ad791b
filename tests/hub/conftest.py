"""Fixtures for the hub tests: the fake Hub server and huggingface_hub pointed at it.

``hub`` starts :class:`~tests.hub.fake_hub.FakeHub` with one user (``alice``, token
:data:`TOKEN`) and points huggingface_hub at it, in this process (its constants are read at
import time, so they are patched) and for subprocesses (``hub_environ``: ``HF_ENDPOINT``,
``HF_TOKEN``, ``HF_HOME``). Xet transfers are disabled: the fake Hub speaks LFS only.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from tests.hub.fake_hub import FakeHub

TOKEN = "hf_SENTINELdoNotLeakThisToken0123456789"
USER = "alice"
#: The Hub id the embedding runs' adapters name as their base (tests publish the tiny encoder there).
BASE_ID = "alice/tiny-encoder"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running fake Hub; huggingface_hub (here and in subprocesses) talks to it."""
    from huggingface_hub import constants, hf_api

    with FakeHub({TOKEN: USER}) as server:
        home = tmp_path / "hf-home"
        environ = {
            "HF_ENDPOINT": server.url,
            "HF_TOKEN": TOKEN,
            "HF_HOME": str(home),
            "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
        monkeypatch.setattr(hf_api.api, "endpoint", server.url)  # huggingface_hub.file_exists & co. (peft uses it)
        server.environ = {**os.environ, **environ}
        yield server


def offline(monkeypatch) -> None:
    """Put huggingface_hub in offline mode (reads only from the cache) for the rest of a test."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tree(directory: Path) -> dict[str, bytes]:
    """``{relative posix path: bytes}`` of every file under ``directory``."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------ run directories

METRICS = ("ndcg@10", "map@100-l2", "mrr@10-l2", "recall@100-l2")
QIDS = [f"q{i}" for i in range(8)]
CONVENTION = "TREC DL passage ranking: nDCG@10 on the graded judgments with linear gains as trec_eval computes it."
LOG_HISTORY = [
    {
        "eval_loss": 1.38,
        "eval_dl19_ndcg@10": 0.30,
        "eval_dl19_map@100-l2": 0.20,
        "eval_runtime": 3.0,
        "epoch": 0,
        "step": 0,
    },
    {"loss": 1.37, "grad_norm": 0.6, "learning_rate": 3e-05, "epoch": 0.5, "step": 2},
    {"loss": 1.30, "grad_norm": 0.7, "learning_rate": 1e-05, "epoch": 1.0, "step": 4},
    {
        "eval_loss": 1.33,
        "eval_dl19_ndcg@10": 0.41,
        "eval_dl19_map@100-l2": 0.25,
        "eval_runtime": 3.0,
        "epoch": 1.0,
        "step": 4,
    },
    {"train_runtime": 12.5, "train_samples_per_second": 2.5, "train_loss": 1.33, "epoch": 1.0, "step": 4},
]


def per_query(offset: float, jitter: float = 0.0) -> dict[str, dict[str, float]]:
    """Per-query scores of one system: ``{metric: {qid: score}}``; ``jitter`` alternates in sign over queries."""
    return {
        metric: {
            qid: round(min(1.0, offset + 0.05 * i + 0.01 * m + jitter * (-1) ** i), 4) for i, qid in enumerate(QIDS)
        }
        for m, metric in enumerate(METRICS)
    }


def means(scores: dict) -> dict[str, float]:
    return {metric: sum(values.values()) / len(values) for metric, values in scores.items()}


def eval_report(scores: dict, first: dict, model: str) -> dict:
    """An ``eval_<name>/metrics.json`` as ``hf-rerank evaluate`` writes it (the keys the card reads)."""
    return {
        "metrics": means(scores),
        "first_stage": means(first),
        "significance": {},
        "per_query": scores,
        "model": model,
        "run": "bm25",
        "data": "dl19",
        "depth": 100,
        "metric_set": "trec-dl",
        "convention": CONVENTION,
        "queries": len(QIDS),
    }


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def training_summary(model_scores: dict, first: dict, **extra) -> dict:
    """A ``metrics.json`` (:class:`~hf_rerank.training.record.RunRecord`) as ``train_cross_encoder`` writes it
    (Lion with scaling 3)."""
    significance = {
        m: {
            "delta": means(model_scores)[m] - means(first)[m],
            "p_t_test": 0.001 if m == "ndcg@10" else 0.3,
            "p_randomisation": 0.002 if m == "ndcg@10" else 0.31,
        }
        for m in METRICS
    }
    return {
        "schema_version": 1,
        "kind": "cross-encoder",
        "eval": {"dl19": means(model_scores)},
        "first_stage": {"dl19": means(first)},
        "before_training": {"dl19": {"ndcg@10": 0.30, "map@100-l2": 0.20}},
        "significance": {"dl19": significance},
        "eval_protocol": {
            "dl19": {
                "data": "../shared/data/trec-dl/dl19",
                "run": "bm25",
                "depth": 100,
                "metric_set": "trec-dl",
                "convention": CONVENTION,
                "queries": len(QIDS),
            }
        },
        "train_seconds": 12.5,
        "train_samples_per_second": 2.5,
        "train_loss": 1.33,
        "global_steps": 4,
        "optimizer": {
            "name": "lion",
            "lr": 1e-4 / 3,
            "weight_decay": 0.03,
            "betas": [0.9, 0.99],
            "eps": None,
            "lion_scaling": 3.0,
            "adamw_lr": 1e-4,
            "adamw_weight_decay": 0.01,
            "implementation": "lion-pytorch foreach",
            "n_params_decay": 9,
            "n_params_no_decay": 24,
            "n_elements_decay": 1_000_000,
            "n_elements_no_decay": 800,
        },
        "lr_scheduler": "linear",
        "warmup_steps": 0.1,
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "loss": "listwise",
        "train_data": "sentence-transformers/msmarco",
        "train_examples": 20,
        "example_type": "GroupExample",
        "per_device_train_batch_size": 4,
        "world_size": 1,
        "max_length": 64,
        "precision": "fp32",
        "seed": 12,
        **extra,
    }


@pytest.fixture
def cross_encoder_run(tmp_path, tiny_cross_encoder_dir) -> Path:
    """A cross-encoder run directory: tiny checkpoint, metrics.json (with the comparison against the base
    model, computed from both per-query scores), log history, per-query evaluations of the model and of
    the base model, and a checkpoint-2/ with trainer state."""
    from hf_rerank.evaluation.significance import compare_to_base

    run = tmp_path / "ce-run"
    shutil.copytree(tiny_cross_encoder_dir, run)
    shutil.copytree(tiny_cross_encoder_dir, run / "checkpoint-2")
    for name, content in (
        ("optimizer.pt", b"optimizer state"),
        ("trainer_state.json", b'{"global_step": 2}'),
        ("training_args.bin", b"pickled arguments"),
    ):
        (run / "checkpoint-2" / name).write_bytes(content)
    (run / "training_args.bin").write_bytes(b"pickled arguments")
    first, model, base = per_query(0.2), per_query(0.3), per_query(0.25, jitter=0.03)
    base_comparison = {
        "dl19": {
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "metrics": means(base),
            "significance": compare_to_base(base, model),
        }
    }
    write_json(run / "metrics.json", training_summary(model, first, base_comparison=base_comparison))
    write_json(run / "log_history.json", LOG_HISTORY)
    write_json(run / "eval_dl19" / "metrics.json", eval_report(model, first, str(run)))
    (run / "eval_dl19" / "run.trec").write_text("q0 Q0 p1 1 2.5 run\n")
    write_json(
        run / "eval_dl19_base" / "metrics.json", eval_report(base, first, "sentence-transformers/all-MiniLM-L6-v2")
    )
    return run


def embedding_summary(lora: dict | None) -> dict:
    """A ``metrics.json`` as ``train_embedding`` writes it (reranking + dense evaluation)."""
    first, model = per_query(0.2), per_query(0.35)
    summary = training_summary(
        model,
        first,
        kind="embedding",
        model=BASE_ID,
        lora=lora,
        pooling="mean",
        normalize=True,
        loss="triplet",
        loss_options={"distance": "euclidean", "margin": 5.0},
        negatives="mined",
        mine_window=[50, 200],
        num_train_epochs=1.0,
        regressed_at_steps=[4],
        trainable_parameters=(lora or {}).get("trainable_parameters", 1_000_000),
        total_parameters=(lora or {}).get("total_parameters", 1_000_000),
    )
    summary["optimizer"] = {
        **summary["optimizer"],
        "name": "adamw",
        "lion_scaling": None,
        "adamw_lr": None,
        "adamw_weight_decay": None,
        "lr": 2e-4,
        "weight_decay": 0.01,
        "eps": 1e-8,
        "betas": [0.9, 0.999],
        "implementation": "torch AdamW",
    }
    summary["eval"]["dl19_dense"] = {"ndcg@10": 0.52, "recall@100-l2": 0.61}
    summary["eval_protocol"] = {
        **summary["eval_protocol"],
        "dl19_dense": {
            "data": "../shared/data/trec-dl/dl19",
            "corpus": ["../shared/data/trec-dl/dl19"],
            "corpus_passages": 300,
            "k": 100,
            "search": "exact cosine",
            "metric_set": "trec-dl",
            "convention": CONVENTION,
            "queries": 8,
        },
    }
    summary["embedding_space"] = {
        "anisotropy": 0.21,
        "isotropy": 0.4,
        "effective_rank": 17.5,
        "participation_ratio": 9.2,
        "alignment": 0.62,
        "uniformity": -2.9,
        "anisotropy_queries": 0.3,
        "anisotropy_passages": 0.25,
        "pairs": 16,
    }
    return summary


def tiny_lora_encoder(base_dir: Path, tokenizer, base_reference: str):
    """A BiEncoder whose tiny encoder carries LoRA adapters with non-zero (so visible) updates."""
    from transformers import AutoModel

    from hf_rerank.models.bi_encoder import BiEncoder
    from hf_rerank.models.lora import apply_lora

    torch.manual_seed(1)
    model = apply_lora(
        AutoModel.from_pretrained(base_dir),
        r=4,
        alpha=8,
        dropout=0.0,
        target_modules=["query", "value"],
        base_reference=base_reference,
    )
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            torch.nn.init.normal_(parameter, std=0.3)
    return BiEncoder(model, tokenizer, max_length=64, precision="fp32")


def write_png(path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    FigureCanvasAgg(figure)
    figure.subplots().scatter([0, 1], [1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


@pytest.fixture
def embedding_run(tmp_path, tiny_encoder_dir, tokenizer) -> Path:
    """A LoRA embedding run laid out as ``train_embedding`` writes it: the merged model in
    sentence-transformers layout at the root, the adapters alone in ``adapter/``; plus umap.png."""
    from hf_rerank.models.bi_encoder import BiEncoder
    from hf_rerank.models.lora import lora_summary

    run = tmp_path / "emb-run"
    encoder = tiny_lora_encoder(tiny_encoder_dir, tokenizer, BASE_ID)
    lora = lora_summary(encoder.model)
    encoder.model.save_pretrained(run / "adapter")
    merged = BiEncoder(encoder.model.merge_and_unload(), tokenizer, max_length=64, precision="fp32")
    merged.save_pretrained(run)
    write_json(run / "metrics.json", embedding_summary(lora))
    write_json(run / "log_history.json", LOG_HISTORY)
    write_json(run / "eval_dl19" / "metrics.json", eval_report(per_query(0.35), per_query(0.2), str(run)))
    write_png(run / "umap.png")
    return run
