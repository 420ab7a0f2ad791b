"""The files of a run directory a card is made from, read and checked (nothing is computed here).

- ``metrics.json``: the run record (:meth:`~hf_rerank.training.record.RunRecord.load`), required;
- ``config.json``, ``adapter_config.json`` or ``adapter/``: the head's labels and the LoRA layout.

Nothing outside the run directory is read: what a card shows about the base model (its scores, the
tests against it, its embedding-space numbers) is in the record, put there when evaluating.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_rerank.hub.errors import CardError
from hf_rerank.training.record import RunRecord


def read_json(path: Path):
    """The JSON in ``path``; :class:`CardError` naming the file when it is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CardError(f"{path}: not valid JSON ({error})") from None


def load_record(output_dir: Path) -> RunRecord:
    """The run record (``metrics.json``) of a run directory, validated by :meth:`RunRecord.load`."""
    path = output_dir / "metrics.json"
    if not path.is_file():
        raise CardError(f"{output_dir}: no metrics.json; a model card is made from a training run's output directory")
    return RunRecord.load(path)


def model_config(output_dir: Path) -> dict:
    """``{"num_labels", "adapter_only", "adapter_dir", "adapter_base"}`` of the checkpoint in ``output_dir``:
    the head's labels and where LoRA adapters are (and their base model), for the usage snippets."""
    from hf_rerank.models.lora import adapter_base, is_adapter_dir

    config = read_json(output_dir / "config.json") if (output_dir / "config.json").is_file() else {}
    return {
        "num_labels": len(config.get("id2label") or {}) or 1,
        "adapter_only": is_adapter_dir(output_dir),
        "adapter_dir": (output_dir / "adapter" / "adapter_config.json").is_file(),
        "adapter_base": adapter_base(output_dir)
        if is_adapter_dir(output_dir)
        else adapter_base(output_dir / "adapter")
        if (output_dir / "adapter" / "adapter_config.json").is_file()
        else None,
    }
