"""Training callbacks: IR evaluation of the model being trained.

``IREvaluationCallback(collection, run, name=...)`` reranks ``run``'s top-``depth`` with the
current model at every evaluation, with the same code as ``hf-rerank evaluate``
(:func:`~hf_rerank.evaluation.rerank.rerank` and :func:`~hf_rerank.evaluation.metrics.evaluate_run`),
and reports ``eval_<name>_<metric>`` (e.g. ``eval_dl19_ndcg@10``). A
:class:`~hf_rerank.training.trainer.RerankTrainer` runs it inside its evaluation loop, so the
values are logged, seen by other callbacks and usable as ``metric_for_best_model``. Under DDP
each rank scores a slice of the pairs, the scores are gathered, and the main process computes
the metrics once and broadcasts them.
"""

from __future__ import annotations

import logging

import numpy as np
import torch.distributed as dist
from transformers import TrainerCallback

from hf_rerank.data.collection import IRCollection
from hf_rerank.evaluation.metrics import evaluate_run, get_metric_set
from hf_rerank.evaluation.rerank import rerank
from hf_rerank.models.cross_encoder import CrossEncoder

logger = logging.getLogger("hf_rerank")


class ShardedScorer:
    """Score pairs with ``scorer`` split across the DDP ranks; every rank gets all scores back."""

    def __init__(self, scorer, rank: int, world_size: int):
        self.scorer, self.rank, self.world_size = scorer, rank, world_size

    def score_pairs(self, queries, passages, *, batch_size: int, show_progress: bool) -> np.ndarray:
        mine = self.scorer.score_pairs(queries[self.rank :: self.world_size], passages[self.rank :: self.world_size],
                                       batch_size=batch_size, show_progress=show_progress)
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, mine)
        scores = np.empty(len(queries), dtype=np.float32)
        for rank, part in enumerate(gathered):
            scores[rank :: self.world_size] = part
        return scores


class IREvaluationCallback(TrainerCallback):
    """Rerank a run with the model being trained and report IR metrics.

    Args:
        collection: the evaluation collection (queries, corpus, qrels, the run).
        run: the first-stage run to rerank (e.g. ``bm25``).
        name: the label in metric names (``eval_<name>_<metric>``), e.g. ``dl19``.
        depth: candidates reranked per query.
        metric_set: ``trec-dl``, ``msmarco-dev`` or ``paper``.
        batch_size: pairs per forward pass.
        max_length: tokens per pair (default: the trainer's ``args.max_length``).
    """

    def __init__(self, collection: IRCollection, run: str, *, name: str, depth: int = 100, metric_set: str = "trec-dl",
                 batch_size: int = 64, max_length: int | None = None):
        collection.run(run)  # fail now, not at the first evaluation, if the run is missing
        self.collection, self.run, self.name, self.depth = collection, run, name, depth
        self.metric_set = get_metric_set(metric_set)
        self.batch_size, self.max_length = batch_size, max_length
        self.last_run = None

    def compute(self, trainer, prefix: str = "eval") -> dict[str, float]:
        """Rerank with ``trainer``'s current model; ``{f"{prefix}_{name}_{metric}": value}``."""
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        precision = "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32"
        scorer = CrossEncoder(model, trainer.processing_class, max_length=self.max_length or trainer.args.max_length,
                              device=str(trainer.args.device), precision=precision)
        world_size = trainer.args.world_size
        if world_size > 1:
            scorer = ShardedScorer(scorer, trainer.args.process_index, world_size)
        try:
            result = rerank(self.collection, self.run, scorer, depth=self.depth, batch_size=self.batch_size,
                            show_progress=trainer.is_world_process_zero())
        finally:
            model.train(was_training)
        metrics = [None]
        if trainer.is_world_process_zero():
            evaluation = evaluate_run(self.collection.qrels, result.run, self.metric_set)
            metrics = [{f"{prefix}_{self.name}_{key}": value for key, value in evaluation.means.items()}]
            self.last_run = result.run
        if world_size > 1:
            dist.broadcast_object_list(metrics, src=0)
        return metrics[0]



