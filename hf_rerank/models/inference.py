"""Shared inference plumbing: device choice, the compute dtype (:mod:`hf_rerank.precision`), length-sorted batching.

Length-sorted batching: inputs are tokenised once without padding, sorted by length, cut into
batches of ``batch_size`` and padded per batch, so a batch wastes at most the spread of its own
lengths. Results are returned in the caller's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from hf_rerank.errors import UsageError
from hf_rerank.precision import pick_dtype


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ModelRunner:
    """What both rerankers hold: a model on its device, its tokenizer, a length limit, a dtype.

    ``precision`` picks the compute dtype for ``device`` (:func:`pick_dtype`); a model whose
    weights are in another dtype (an fp32 model being trained, scored in bf16) runs under autocast.
    """

    def __init__(self, model, tokenizer, *, max_length: int, device: str | None, precision: str):
        self.device = pick_device(device)
        self.dtype = pick_dtype(precision, self.device)
        self.model = model.to(self.device).eval()
        self.autocast = self.dtype != torch.float32 and model.dtype != self.dtype
        self.tokenizer = tokenizer
        self.max_length = max_length


def load_checkpoint(reference, auto_class, *, device: str | None, precision: str, trust_remote_code: bool):
    """``(path, model, tokenizer)`` for a model reference (see :func:`~hf_rerank.models.resolve.resolve_model`).

    A directory of LoRA adapters loads as its base model with the adapters merged in
    (:func:`~hf_rerank.models.lora.load_model`).

    The weights are loaded in the compute dtype that ``precision`` picks for ``device`` (faster
    than autocast); a model handed to a reranker in fp32 with a bf16/fp16 precision runs under
    autocast instead, as a model being trained does.
    """
    from transformers import AutoTokenizer

    from hf_rerank.models.lora import adapter_base, is_adapter_dir, load_model
    from hf_rerank.models.resolve import BrokenCheckpointError, resolve_model

    path = resolve_model(reference)
    tokenizer_source = path
    if is_adapter_dir(path) and not (path / "tokenizer_config.json").is_file():
        tokenizer_source = resolve_model(adapter_base(path))
    dtype = pick_dtype(precision, pick_device(device))
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=trust_remote_code)
        model = load_model(path, auto_class, trust_remote_code=trust_remote_code, dtype=dtype)
    except BrokenCheckpointError:
        raise
    except Exception as error:  # transformers, safetensors and tokenizers raise many types for damaged files
        raise BrokenCheckpointError(f"{path}: cannot load the checkpoint ({type(error).__name__}: {error})") from error
    return path, model, tokenizer


def sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Yield index arrays of at most ``batch_size`` items, longest first, grouped by length."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def run_batched(
    features: list[dict[str, list[int]]],
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    *,
    tokenizer,
    batch_size: int,
    device: torch.device,
    description: str,
    show_progress: bool = True,
) -> torch.Tensor:
    """Apply ``forward`` to tokenised ``features`` in length-sorted, per-batch-padded batches.

    Args:
        features: one dict of token lists (``input_ids``, ``attention_mask``, ...) per item.
        forward: maps a padded batch on ``device`` to a float tensor ``(batch, ...)``.
    Returns:
        float32 CPU tensor ``(len(features), ...)`` in the order of ``features``.
    """
    outputs: list[torch.Tensor] = []
    indices: list[np.ndarray] = []
    lengths = [len(item["input_ids"]) for item in features]
    with (
        torch.inference_mode(),
        tqdm(total=len(features), desc=description, unit="item", disable=not show_progress) as bar,
    ):
        for batch_indices in sorted_batches(lengths, batch_size):
            batch = tokenizer.pad([features[i] for i in batch_indices], return_tensors="pt")
            batch = {key: value.to(device) for key, value in batch.items()}
            outputs.append(forward(batch).float().cpu())
            indices.append(batch_indices)
            bar.update(len(batch_indices))
    if not outputs:
        return torch.empty(0)
    stacked = torch.cat(outputs)
    result = torch.empty_like(stacked)
    result[torch.from_numpy(np.concatenate(indices))] = stacked
    return result
