"""A card's YAML metadata: ``huggingface_hub.ModelCardData`` with library, base model, datasets, tags,
pipeline and a ``model-index`` of one ``EvalResult`` per evaluation and metric (values exactly as in
the run record)."""

from __future__ import annotations

from pathlib import Path

from hf_rerank.hub.formatting import hub_model_id, is_local_path
from hf_rerank.training.record import RunRecord

#: Hub dataset ids among hf-rerank's registered sources (the others are ir_datasets ids or local).
HUB_DATASETS = ("sentence-transformers/msmarco", "microsoft/ms_marco")


def card_data(
    record: RunRecord,
    sections: list[dict],
    *,
    kind: str,
    model_name: str,
    license: str | None,
    language: list[str],
    adapter_base: str | None,
):
    """The card's ``ModelCardData``: library, base model, datasets, tags, pipeline, ``model-index``."""
    from huggingface_hub import EvalResult, ModelCardData

    optimizer = (record.optimizer or {}).get("name")
    tags = [
        "cross-encoder" if kind == "cross-encoder" else "sentence-transformers",
        *([optimizer] if optimizer else []),
        "hf-rerank",
        *(["reranker"] if kind == "cross-encoder" else ["lora"] if record.lora else []),
    ]
    eval_data = [record.protocol(name).data for name in record.eval]
    datasets = list(dict.fromkeys(d for d in [record.train_data, *eval_data] if d in HUB_DATASETS))
    results = []
    for section, name in zip(sections, record.eval, strict=True):
        protocol = record.protocol(name)
        data = protocol.data or name
        dataset_type = data if not is_local_path(data) or data in HUB_DATASETS else Path(data).name
        for metric, value in record.eval[name].items():
            results.append(
                EvalResult(
                    task_type="text-ranking" if protocol.run is not None else "text-retrieval",
                    task_name="Reranking" if protocol.run is not None else "Retrieval",
                    dataset_type=dataset_type,
                    dataset_name=section["title"],
                    metric_type=metric,
                    metric_value=value,
                    metric_config=protocol.metric_set,
                )
            )
    return ModelCardData(
        language=language,
        license=license,
        library_name="transformers" if kind == "cross-encoder" else "sentence-transformers",
        base_model=hub_model_id(adapter_base) or hub_model_id(record.model),
        datasets=datasets or None,
        tags=tags,
        pipeline_tag="text-ranking" if kind == "cross-encoder" else "sentence-similarity",
        model_name=model_name,
        eval_results=results,
    )
