"""Training callbacks: IR evaluation and embedding-space diagnostics of the model being trained.

Both are :class:`EvaluationCallback` s: a :class:`~hf_rerank.training.trainer.RerankTrainer`
calls their ``compute(trainer, prefix)`` inside its evaluation loop and logs what they return.

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

logger = logging.getLogger("hf_rerank")


class ShardedScorer:
    """Score pairs with ``scorer`` split across the DDP ranks; every rank gets all scores back."""

    def __init__(self, scorer, rank: int, world_size: int):
        self.scorer, self.rank, self.world_size = scorer, rank, world_size

    def score_pairs(self, queries, passages, *, batch_size: int, show_progress: bool) -> np.ndarray:
        mine = self.scorer.score_pairs(
            queries[self.rank :: self.world_size],
            passages[self.rank :: self.world_size],
            batch_size=batch_size,
            show_progress=show_progress,
        )
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, mine)
        scores = np.empty(len(queries), dtype=np.float32)
        for rank, part in enumerate(gathered):
            scores[rank :: self.world_size] = part
        return scores


class EvaluationCallback(TrainerCallback):
    """A callback that adds metrics to every evaluation: ``compute(trainer, prefix) -> {name: value}``."""

    def compute(self, trainer, prefix: str = "eval") -> dict[str, float]:
        raise NotImplementedError


class IREvaluationCallback(EvaluationCallback):
    """Rerank a run with the model being trained and report IR metrics.

    Args:
        collection: the evaluation collection (queries, corpus, qrels, the run).
        run: the first-stage run to rerank (e.g. ``bm25``).
        name: the label in metric names (``eval_<name>_<metric>``), e.g. ``dl19``.
        depth: candidates reranked per query.
        metric_set: a name of :data:`~hf_rerank.evaluation.metrics.METRIC_SETS`.
        batch_size: pairs per forward pass.
        max_length: tokens per pair (default: the trainer's ``args.max_length``).
    """

    def __init__(
        self,
        collection: IRCollection,
        run: str,
        *,
        name: str,
        depth: int = 100,
        metric_set: str = "trec-dl",
        batch_size: int = 64,
        max_length: int | None = None,
    ):
        collection.run(run)  # fail now, not at the first evaluation, if the run is missing
        self.collection, self.run, self.name, self.depth = collection, run, name, depth
        self.metric_set = get_metric_set(metric_set)
        self.batch_size, self.max_length = batch_size, max_length
        self.last_run = None

    @property
    def headline(self) -> str:
        """The key of the metric set's headline metric (its first: ``ndcg@10`` for ``trec-dl`` and ``paper``,
        ``mrr@10`` for ``msmarco-dev``) as evaluations log it: ``eval_<name>_<metric>``."""
        return f"eval_{self.name}_{self.metric_set.metrics[0]}"

    def compute(self, trainer, prefix: str = "eval") -> dict[str, float]:
        """Rerank with ``trainer``'s current model; ``{f"{prefix}_{name}_{metric}": value}``."""
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        scorer = trainer.scorer(model)
        if self.max_length:
            scorer.max_length = self.max_length
        world_size = trainer.args.world_size
        if world_size > 1:
            scorer = ShardedScorer(scorer, trainer.args.process_index, world_size)
        try:
            result = rerank(
                self.collection,
                self.run,
                scorer,
                depth=self.depth,
                batch_size=self.batch_size,
                show_progress=trainer.is_world_process_zero(),
            )
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


class EmbeddingSpaceCallback(EvaluationCallback):
    """Embedding-space numbers of the model being trained, and a loud warning when it regresses.

    At every evaluation it encodes ``pairs`` (query text, positive passage text) with the
    trainer's current bi-encoder and reports
    :func:`~hf_rerank.analysis.embedding_space.embedding_space_stats` as
    ``eval_space_<stat>`` (anisotropy, isotropy, effective rank, participation ratio,
    alignment, uniformity). After each evaluation it compares ``watch`` (e.g.
    ``eval_dl19_ndcg@10``) with its value at the first evaluation (the starting point when the
    run evaluates at step 0, ``eval_on_start``) and logs a WARNING when it has fallen below it.

    Args:
        pairs: aligned (query, positive passage) texts, e.g. up to 1,000 judged pairs.
        watch: the metric to compare with the starting point (``None``: no comparison).
        batch_size: texts per forward pass.
    """

    def __init__(self, pairs: list[tuple[str, str]], *, watch: str | None = None, batch_size: int = 64):
        if len(pairs) < 2:
            raise ValueError(f"embedding-space numbers need at least 2 (query, passage) pairs, got {len(pairs)}")
        self.pairs, self.watch, self.batch_size = pairs, watch, batch_size
        self.start: float | None = None
        self.regressed_at: list[int] = []

    def compute(self, trainer, prefix: str = "eval") -> dict[str, float]:
        from hf_rerank.analysis.embedding_space import embedding_space_stats

        if not trainer.is_world_process_zero():
            return {}
        model = trainer.accelerator.unwrap_model(trainer.model)
        was_training = model.training
        encoder = trainer.scorer(model)
        try:
            queries = encoder.encode([q for q, _ in self.pairs], batch_size=self.batch_size, show_progress=False)
            passages = encoder.encode([p for _, p in self.pairs], batch_size=self.batch_size, show_progress=False)
        finally:
            model.train(was_training)
        return {f"{prefix}_space_{key}": value for key, value in embedding_space_stats(queries, passages).items()}

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.watch is None or not metrics or self.watch not in metrics:
            return
        value = metrics[self.watch]
        if self.start is None:
            self.start = value
            return
        if value < self.start:
            self.regressed_at.append(state.global_step)
            logger.warning(
                "\n%s\n!!! %s fell to %.4f at step %d, below its starting point %.4f (%+.4f): fine-tuning is making "
                "this model worse !!!\n%s",
                "!" * 100,
                self.watch,
                value,
                state.global_step,
                self.start,
                value - self.start,
                "!" * 100,
            )
