"""LoRA adapters through peft: attach, describe, save, and load back (on their own or merged).

A LoRA run saves two things (see :func:`save_lora`): the adapters alone (``adapter_config.json``
+ ``adapter_model.safetensors``, a few hundred KB) and the merged model (a plain checkpoint that
loads without peft). :func:`load_model` loads either kind of directory, so every hf-rerank
loader accepts both and gives the same outputs.

Cross-encoders (peft task ``SEQ_CLS``) train their classification head fully beside the adapters
(:func:`classification_head` names it; peft saves it with the adapters as ``modules_to_save``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from hf_rerank.data.formats import DataFormatError
from hf_rerank.errors import UsageError

ADAPTER_CONFIG = "adapter_config.json"

logger = logging.getLogger("hf_rerank")


def classification_head(model: torch.nn.Module) -> list[str]:
    """The names of ``model``'s top-level modules outside its base model that hold parameters.

    Args:
        model: a transformers ``*ForSequenceClassification`` model; its base model is
            ``model.base_model`` (the child named by ``model.base_model_prefix``).

    Returns:
        The head's module names, e.g. ``["classifier"]`` (BERT, RoBERTa, ELECTRA),
        ``["pooler", "classifier"]`` (DeBERTa-v2), ``["head", "classifier"]`` (ModernBERT),
        ``["score"]`` (decoder models).

    Raises:
        ValueError: when no such module exists (``model`` is a bare encoder).
    """
    base = getattr(model, "base_model", model)  # transformers: the child named by base_model_prefix, else the model
    names = (
        []
        if base is model
        else [
            name
            for name, child in model.named_children()
            if child is not base and next(child.parameters(), None) is not None
        ]
    )
    if not names:
        raise UsageError(
            f"{type(model).__name__} has no classification head beside its base model "
            f"(children: {', '.join(name for name, _ in model.named_children())})"
        )
    return names


def check_target_modules(model: torch.nn.Module, target_modules: list[str]) -> None:
    """Raise ValueError unless every name in ``target_modules`` is the last part(s) of a module name
    of ``model`` (peft's matching); the message lists the names of the model's linear layers."""
    names = [name for name, _ in model.named_modules()]
    missing = [
        target for target in target_modules if not any(name == target or name.endswith("." + target) for name in names)
    ]
    if missing:
        linear = sorted(
            {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
        )
        raise UsageError(
            f"LoRA target modules {missing} match no module of {type(model).__name__}; its linear layers "
            f"are named: {', '.join(linear)}"
        )


def apply_lora(
    model: torch.nn.Module,
    *,
    r: int,
    alpha: float,
    dropout: float,
    target_modules: list[str],
    task_type: str = "FEATURE_EXTRACTION",
    base_reference: str | None = None,
):
    """Wrap ``model`` in a ``peft.PeftModel`` with LoRA on ``target_modules``; only adapters train
    (and, for ``SEQ_CLS``, the classification head).

    Args:
        model: a transformers model.
        r, alpha, dropout: LoRA rank, scaling numerator (the update is scaled by ``alpha / r``) and
            dropout on the adapter input.
        target_modules: module name suffixes, e.g. ``["query", "value"]`` for BERT attention.
        task_type: peft's task type: ``FEATURE_EXTRACTION`` for encoders, ``SEQ_CLS`` for
            cross-encoders, whose :func:`classification_head` then trains fully (peft's
            ``modules_to_save``: saved with the adapters).
        base_reference: what ``adapter_config.json`` records as the base model (a Hub id or
            path that :func:`~hf_rerank.models.resolve.resolve_model` resolves); default: the
            model's own ``name_or_path``.

    Returns:
        The ``PeftModel``.

    Raises:
        ValueError: ``r < 1``, or a target module that names no module of ``model`` (the message
            lists its linear layers).
    """
    from peft import LoraConfig, get_peft_model

    if r < 1:
        raise UsageError(f"LoRA rank must be >= 1, got {r}")
    check_target_modules(model, target_modules)
    head = classification_head(model) if task_type == "SEQ_CLS" else None
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
        task_type=task_type,
        base_model_name_or_path=base_reference,
        modules_to_save=head,
    )
    peft_model = get_peft_model(model, config)
    config = peft_model.peft_config["default"]
    if config.modules_to_save:  # peft appends its own head names ("classifier", "score") to ours
        config.modules_to_save = list(dict.fromkeys(config.modules_to_save))
    if base_reference is not None:
        config.base_model_name_or_path = base_reference
    return peft_model


def lora_summary(model) -> dict:
    """What a LoRA run records in ``metrics.json`` for the ``PeftModel`` ``model``.

    Returns:
        ``{"r", "alpha", "dropout", "target_modules", "modules_to_save", "trainable_parameters",
        "total_parameters", "trainable_share"}``; ``modules_to_save``: the modules trained fully
        (a cross-encoder's head, in model order; ``[]`` for encoders).
    """
    from peft.utils import ModulesToSaveWrapper

    config = model.peft_config["default"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {
        "r": config.r,
        "alpha": config.lora_alpha,
        "dropout": config.lora_dropout,
        "target_modules": sorted(config.target_modules),
        "modules_to_save": [
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, ModulesToSaveWrapper)
        ],
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_share": trainable / total,
    }


def lora_from_args(model: torch.nn.Module, args, *, task_type: str, base_reference: str):
    """Apply LoRA as the training arguments ask (``lora_r``, ``lora_alpha``, ``lora_dropout``,
    ``lora_target_modules``), logging what trains.

    Args:
        model: the transformers model a run is about to train.
        args: training arguments with the four ``lora_*`` fields
            (:class:`~hf_rerank.training.arguments.RerankTrainingArguments`).
        task_type, base_reference: as for :func:`apply_lora`.

    Returns:
        ``(model, summary)``: ``(model, None)`` unchanged when ``args.lora_r`` is None, else the
        ``PeftModel`` and its :func:`lora_summary`.
    """
    if args.lora_r is None:
        return model, None
    model = apply_lora(
        model,
        r=args.lora_r,
        alpha=args.lora_alpha,
        dropout=args.lora_dropout,
        target_modules=args.lora_target_modules,
        task_type=task_type,
        base_reference=base_reference,
    )
    summary = lora_summary(model)
    logger.info(
        "LoRA r=%d alpha=%s on %s%s: %d of %d parameters train (%.2f%%)",
        summary["r"],
        summary["alpha"],
        ", ".join(summary["target_modules"]),
        f", head {', '.join(summary['modules_to_save'])} fully" if summary["modules_to_save"] else "",
        summary["trainable_parameters"],
        summary["total_parameters"],
        100 * summary["trainable_share"],
    )
    return model, summary


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
        raise DataFormatError(config_file, None, f"not a peft adapter config ({error})") from None
    if not base:
        raise DataFormatError(config_file, None, "names no base_model_name_or_path")
    return base


def load_model(path: Path, auto_class, **kwargs) -> torch.nn.Module:
    """Load a checkpoint or an adapter directory as one plain transformers model.

    Args:
        path: a model directory, or a directory of peft adapters (:func:`is_adapter_dir`).
        auto_class: the transformers auto class to load with, e.g. ``AutoModelForSequenceClassification``.
        kwargs: passed to ``from_pretrained`` (``dtype``, ``trust_remote_code``, ...).

    Returns:
        ``auto_class.from_pretrained(path)``; for an adapter directory, its base with the adapters
        merged in. A cross-encoder's adapters (task ``SEQ_CLS``) on a base without a
        sequence-classification head get the 1-logit head that hf-rerank's cross-encoder training
        adds, so the head saved with the adapters fits it.
    """
    path = Path(path)
    if not is_adapter_dir(path):
        return auto_class.from_pretrained(path, **kwargs)
    from peft import PeftModel

    from hf_rerank.models.auto import detect_model_type
    from hf_rerank.models.resolve import read_json_file, resolve_model

    base_path = resolve_model(adapter_base(path))
    if (
        read_json_file(path / ADAPTER_CONFIG).get("task_type") == "SEQ_CLS"
        and detect_model_type(base_path) != "cross-encoder"
    ):
        kwargs = {"num_labels": 1, **kwargs}
    base = auto_class.from_pretrained(base_path, **kwargs)
    return PeftModel.from_pretrained(base, path).merge_and_unload()


def save_lora(
    model, adapter_dir: Path, merged_dir: Path, *, tokenizer, is_main_process: bool = True
) -> torch.nn.Module:
    """Save a trained LoRA model twice: the adapters alone and the merged model, each with the tokenizer.

    Args:
        model: the trained ``PeftModel`` (unwrapped from any DDP wrapper). It is merged in place:
            use the returned model afterwards, not ``model``.
        adapter_dir: receives ``adapter_config.json``, ``adapter_model.safetensors`` (with a
            cross-encoder's head) and the tokenizer.
        merged_dir: receives the merged model (``config.json``, ``model.safetensors``; loads
            without peft) and the tokenizer.
        tokenizer: the model's tokenizer.
        is_main_process: only the main process writes; every process merges.

    Returns:
        The merged model (a plain transformers model).
    """
    if is_main_process:
        model.save_pretrained(adapter_dir)  # the adapters first: merging removes them
        tokenizer.save_pretrained(adapter_dir)
    merged = model.merge_and_unload()
    if is_main_process:
        merged.save_pretrained(merged_dir)
        tokenizer.save_pretrained(merged_dir)
    return merged
