"""The training-data arguments both training runs share, declared once.

:class:`TrainDataArguments` is a base of both runs' data arguments
(:class:`~hf_rerank.training.run_cross_encoder.DataArguments`,
:class:`~hf_rerank.training.run_embedding.EmbeddingDataArguments`), beside
:class:`~hf_rerank.training.eval_arguments.EvaluationArguments`; its field names are command-line flags
and YAML config keys. Each run declares ``train_data`` itself (the cross-encoder run takes several).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainDataArguments:
    """How much of the training data is read and how its judgments become labels: ``train_limit``
    (read by :func:`~hf_rerank.training.run_common.load_run_data`), ``positive_grade`` and
    ``graded_labels`` (read by both runs' example builders and
    :func:`~hf_rerank.training.run_common.teacher_examples`)."""

    train_limit: int | None = field(
        default=1_000_000, metadata={"help": "triplets to read (sentence-transformers/msmarco only)"}
    )
    positive_grade: int = field(
        default=1, metadata={"help": "grade from which a judged passage is a positive (TREC DL: 2)"}
    )
    graded_labels: bool = field(default=False, metadata={"help": "labels are grades (losses see 0..3) instead of 0/1"})
