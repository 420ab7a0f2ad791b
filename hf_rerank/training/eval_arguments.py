"""The evaluation both training runs make, declared once: which collection's run is reranked, and how.

:class:`EvaluationArguments` is a base of both runs' data arguments
(:class:`~hf_rerank.training.run_cross_encoder.DataArguments`,
:class:`~hf_rerank.training.run_embedding.EmbeddingDataArguments`); its field names are command-line
flags and YAML config keys. Each run declares ``eval_depth`` itself: the cross-encoder run reranks
the paper's BM25 top-1000 by default, the embedding run the top-100.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hf_rerank.evaluation.metrics import metric_set_names


@dataclass
class EvaluationArguments:
    """The evaluation data: ``eval_data``'s first-stage run ``eval_run`` reranked and scored with the
    metric set ``eval_metrics``, reported as ``eval_<eval_name>_<metric>``."""

    eval_data: str = field(
        default="msmarco-passage/trec-dl-2019/judged", metadata={"help": "collection to rerank at each evaluation"}
    )
    eval_run: str = field(default="bm25", metadata={"help": "first-stage run of eval_data to rerank"})
    eval_name: str = field(default="dl19", metadata={"help": "label in metric names: eval_<name>_<metric>"})
    eval_metrics: str = field(default="trec-dl", metadata={"help": f"metric set: {metric_set_names()}"})
