"""LoRA adapters through peft: attach, describe, and load back (on their own or merged).

A LoRA run saves two things (see :func:`save_lora`): the adapters alone (``adapter_config.json``
+ ``adapter_model.safetensors``, a few hundred KB) and the merged model (a plain checkpoint that
loads without peft). :func:`load_model` loads either kind of directory, so every hf-rerank
loader accepts both and gives the same outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch

ADAPTER_CONFIG = "adapter_config.json"


def apply_lora(model: torch.nn.Module, *, r: int, alpha: float, dropout: float, target_modules: list[str],
               task_type: str = "FEATURE_EXTRACTION", base_reference: str | None = None):
    """Wrap ``model`` in a ``peft.PeftModel`` with LoRA on ``target_modules``; only adapters train.

    Args:
        model: a transformers model.
        r, alpha, dropout: LoRA rank, scaling numerator (the update is scaled by ``alpha / r``) and
            dropout on the adapter input.
        target_modules: module name suffixes, e.g. ``["query", "value"]`` for BERT attention.
        task_type: peft's task type (``FEATURE_EXTRACTION`` for encoders, ``SEQ_CLS`` for
            cross-encoders, whose classification head then trains fully).
        base_reference: what ``adapter_config.json`` records as the base model (a Hub id or
            path that :func:`~hf_rerank.models.resolve.resolve_model` resolves); default: the
            model's own ``name_or_path``.
    """
    from peft import LoraConfig, get_peft_model

    if r < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {r}")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                        task_type=task_type, base_model_name_or_path=base_reference)
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as error:  # peft: "Target modules {...} not found in the base model"
        names = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)})
        raise ValueError(f"LoRA target modules {target_modules} not found; this model's linear layers are named: "
                         f"{', '.join(names)}") from error
    if base_reference is not None:
        peft_model.peft_config["default"].base_model_name_or_path = base_reference
    return peft_model


def lora_summary(model) -> dict:
    """``{"r", "alpha", "dropout", "target_modules", "trainable_parameters", "total_parameters", "trainable_share"}``."""
    config = model.peft_config["default"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {
        "r": config.r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
        "target_modules": sorted(config.target_modules), "trainable_parameters": trainable,
        "total_parameters": total, "trainable_share": trainable / total,
    }


def is_adapter_dir(path: Path) -> bool:
    """Whether ``path`` holds peft adapters (``adapter_config.json``) rather than a full model."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: Path) -> str:
    """The base model reference recorded in an adapter directory."""
    from hf_rerank.models.resolve import read_json_file

    config_file = Path(path) / ADAPTER_CONFIG
    try:
        base = read_json_file(config_file)["base_model_name_or_path"]
    except KeyError as error:
        raise ValueError(f"{config_file}: not a peft adapter config ({error})") from None
    if not base:
        raise ValueError(f"{config_file}: names no base_model_name_or_path")
    return base


def load_model(path: Path, auto_class, **kwargs) -> torch.nn.Module:
    """``auto_class.from_pretrained(path)``; for an adapter directory, its base with the adapters merged in."""
    path = Path(path)
    if not is_adapter_dir(path):
        return auto_class.from_pretrained(path, **kwargs)
    from peft import PeftModel

    from hf_rerank.models.resolve import resolve_model

    base = auto_class.from_pretrained(resolve_model(adapter_base(path)), **kwargs)
    return PeftModel.from_pretrained(base, path).merge_and_unload()


def save_lora(model, adapter_dir: Path, merged_dir: Path) -> torch.nn.Module:
    """Save the adapters alone to ``adapter_dir`` and the merged model to ``merged_dir``.

    Returns the merged model (a plain transformers model; ``model`` is unchanged: merging works on
    a copy of the base weights).
    """
    import copy

    model.save_pretrained(adapter_dir)
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(merged_dir)
    return merged
