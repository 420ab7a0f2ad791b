"""How a ``transformers.Trainer`` takes part in efficiency measurement: the ``efficiency_metrics``
training argument (:class:`EfficiencyArguments`) and the hooks that feed the callback and log its
numbers (:class:`EfficiencyTrainerMixin`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hf_rerank.training.efficiency.callback import EfficiencyCallback


@dataclass
class EfficiencyArguments:
    """The training-argument field that switches efficiency measurement on (mixed into hf-rerank's
    arguments)."""

    efficiency_metrics: bool = field(
        default=True,
        metadata={"help": "measure throughput, padding, MFU, memory and GPU use (NVML) into the logs and metrics.json"},
    )


class EfficiencyTrainerMixin:
    """Mixed into a ``transformers.Trainer`` (before it in the bases): attaches an
    :class:`EfficiencyCallback` when ``args.efficiency_metrics`` is true (or uses the one passed in
    ``callbacks``), hands it every training batch, and adds its numbers to the training logs
    (``eff_*`` rates at each logging step, the summary's numbers at the end of training).

    Attributes:
        efficiency: the callback, or None when measurement is off.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        attached = [cb for cb in self.callback_handler.callbacks if isinstance(cb, EfficiencyCallback)]
        self.efficiency = attached[0] if attached else None
        if self.efficiency is None and self.args.efficiency_metrics:
            self.efficiency = EfficiencyCallback()
            self.add_callback(self.efficiency)

    def batch_samples(self, inputs) -> int | None:
        """Training examples in a batch, where ``count_batch`` cannot tell (None: it can)."""
        return None

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.efficiency is not None:
            self.efficiency.observe_batch(inputs, self.batch_samples(inputs))
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.efficiency is not None:
            if "loss" in logs:  # a training logging step
                logs.update(self.efficiency.interval_metrics())
            elif "train_runtime" in logs:  # the end of training: these logs are TrainOutput.metrics
                summary = self.efficiency.summarize(self.optimizer)
                logs.update(
                    {
                        f"eff_{key}": value
                        for key, value in summary.items()
                        if isinstance(value, (int, float)) and not isinstance(value, bool)
                    }
                )
        super().log(logs, start_time)
