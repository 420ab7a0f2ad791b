"""``RerankTrainer``: the ``transformers.Trainer`` every hf-rerank trainer builds on.

What it adds to ``Trainer``:
- the optimizer comes from hf-rerank's factory (:mod:`hf_rerank.optim`: Lion or AdamW, no decay
  on biases and norms, Lion scaling), and its effective hyperparameters are kept in
  ``self.optimizer_hyperparameters``;
- the LR scheduler is built for, and checked to drive, the optimizer that trains;
- on a CPU, dropout uses fast masks and attention runs eagerly
  (:func:`~hf_rerank.training.cpu_dropout.use_fast_cpu_dropout`) unless
  ``--fast_cpu_dropout false``;
- an :class:`~hf_rerank.training.efficiency.callback.EfficiencyCallback` measures every run (samples/s,
  real tokens/s, padding, step times, memory, MFU; GPU use through NVML) unless
  ``--efficiency_metrics false``;
- evaluation runs the :class:`~hf_rerank.training.callbacks.EvaluationCallback` s attached to
  the trainer (IR metrics, embedding-space numbers) inside the evaluation loop, so their
  ``eval_<name>_<metric>`` values are logged,
  seen by every callback and usable as ``metric_for_best_model``; without an ``eval_dataset``
  evaluation runs only those.
"""

from __future__ import annotations

import logging
import time

from transformers import Trainer
from transformers.trainer_utils import IntervalStrategy

from hf_rerank.optim import assert_scheduler_bound, build_optimizer, build_scheduler
from hf_rerank.training.arguments import RerankTrainingArguments
from hf_rerank.training.cpu_dropout import use_fast_cpu_dropout
from hf_rerank.training.efficiency.mixin import EfficiencyTrainerMixin

logger = logging.getLogger("hf_rerank")


class RerankTrainer(EfficiencyTrainerMixin, Trainer):
    """A Trainer whose optimizer, scheduler and IR evaluation are hf-rerank's (see module docstring)."""

    args: RerankTrainingArguments
    loss_is_scaled_for_ga = False  # our losses are per-batch means; Trainer divides by accumulation steps

    def __init__(self, *args, **kwargs):
        # Trainer refuses an eval_strategy without an eval_dataset; ours evaluates with its
        # EvaluationCallbacks alone, so the check is passed over when such callbacks are given.
        from hf_rerank.training.callbacks import EvaluationCallback

        arguments = kwargs.get("args")
        strategy = None
        if (
            arguments is not None
            and kwargs.get("eval_dataset") is None
            and any(isinstance(callback, EvaluationCallback) for callback in kwargs.get("callbacks") or [])
        ):
            strategy, arguments.eval_strategy = arguments.eval_strategy, IntervalStrategy.NO
        try:
            super().__init__(*args, **kwargs)
        finally:
            if strategy is not None:
                arguments.eval_strategy = strategy
        if self.args.fast_cpu_dropout and self.args.device.type == "cpu":
            changed = use_fast_cpu_dropout(self.model)
            logger.info(
                "fast CPU dropout: %d dropout modules replaced; attention %s (was %s)",
                changed["dropout_modules"],
                changed["attention"],
                changed["previous_attention"],
            )

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            spec = self.args.optimizer_spec()
            self.optimizer = build_optimizer(self.model if model is None else model, spec)
            self.optimizer_hyperparameters = spec.effective(self.model if model is None else model)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            training_optimizer = self.optimizer if optimizer is None else optimizer
            self.lr_scheduler = build_scheduler(
                training_optimizer,
                self.args.lr_scheduler_type,
                num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps,
                scheduler_specific_kwargs=self.args.lr_scheduler_kwargs,
            )
            assert_scheduler_bound(self.lr_scheduler, self.optimizer)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def scorer(self, model):
        """A reranker (``score_pairs``) around ``model`` as this trainer trains it; subclasses define it."""
        raise NotImplementedError

    def ir_callbacks(self) -> list:
        from hf_rerank.training.callbacks import EvaluationCallback

        return [cb for cb in self.callback_handler.callbacks if isinstance(cb, EvaluationCallback)]

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        for callback in self.ir_callbacks():
            output.metrics.update(callback.compute(self, metric_key_prefix))
        return output

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if eval_dataset is not None or self.eval_dataset is not None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        started = time.time()
        metrics: dict[str, float] = {}
        for callback in self.ir_callbacks():
            metrics.update(callback.compute(self, metric_key_prefix))
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - started, 4)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics
