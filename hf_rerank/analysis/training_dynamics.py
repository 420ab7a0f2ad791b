"""The training-dynamics figure: training loss, learning rate and an evaluation metric against step.

Input is a ``transformers.Trainer`` log history (``trainer.state.log_history``, the list a run
writes to ``log_history.json``): one dict per logging event, each with a ``step``. Training
entries carry ``loss`` and ``learning_rate``; evaluation entries carry ``eval_loss`` and the IR
callback's ``eval_<name>_<metric>`` (e.g. ``eval_dl19_ndcg@10``, also at step 0 with
``eval_on_start``); the closing summary entry (``train_runtime``, ...) carries no series and is
skipped.

The figure has three panels sharing the step axis: loss (training, plus held-out ``eval_loss``
when logged), learning rate, and the evaluation metric. A series that was never logged leaves its
panel with a "not logged" note rather than failing. Drawn on a :class:`matplotlib.figure.Figure`
with the Agg canvas (pyplot's global state is never touched) and written atomically as a PNG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hf_rerank.data.formats import atomic_write

#: Keys of evaluation entries that are bookkeeping, not metrics.
NOT_METRICS = ("eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
#: The metric picked when none is named: the first logged ``eval_*_<suffix>`` in this order.
PREFERRED_METRICS = ("ndcg@10", "mrr@10", "map@100-l2", "mrr@10-l2")
DPI = 150

Series = tuple[list[int], list[float]]


@dataclass
class TrainingDynamics:
    """The series of one run: ``(steps, values)`` each, steps increasing; ``metric`` names the last."""

    loss: Series
    eval_loss: Series
    learning_rate: Series
    metric_name: str | None
    metric: Series


def eval_metric_names(log_history: Sequence[Mapping]) -> list[str]:
    """Every ``eval_*`` metric key logged (bookkeeping keys excluded), in first-seen order."""
    names: dict[str, None] = {}
    for entry in log_history:
        for key, value in entry.items():
            if key.startswith("eval_") and key not in NOT_METRICS and isinstance(value, (int, float)):
                names.setdefault(key)
    return list(names)


def default_metric(log_history: Sequence[Mapping]) -> str | None:
    """The metric to plot when none is named: ``eval_<name>_ndcg@10`` if logged, else the next of
    :data:`PREFERRED_METRICS`, else the first ``eval_*`` metric; None without evaluations."""
    names = eval_metric_names(log_history)
    for suffix in PREFERRED_METRICS:
        for name in names:
            if name.endswith(f"_{suffix}"):
                return name
    return names[0] if names else None


def _series(log_history: Sequence[Mapping], key: str) -> Series:
    points = sorted(
        (int(entry["step"]), float(entry[key]))
        for entry in log_history
        if isinstance(entry.get(key), (int, float)) and math.isfinite(entry[key])
    )
    return [step for step, _ in points], [value for _, value in points]


def training_dynamics(log_history: Sequence[Mapping], metric: str | None = None) -> TrainingDynamics:
    """Extract the plotted series from a Trainer log history.

    Args:
        log_history: the Trainer's log history (a list of dicts, each with an integer ``step``).
        metric: the evaluation key to plot (e.g. ``eval_dl19_ndcg@10``); default :func:`default_metric`.

    Raises:
        ValueError: ``log_history`` is not a list of dicts with ``step``; ``metric`` was never
            logged; nothing (loss, learning rate or an evaluation metric) was logged at all.
    """
    if isinstance(log_history, (str, bytes)) or not isinstance(log_history, Sequence):
        raise ValueError(f"log_history must be a list of dicts, got {type(log_history).__name__}")
    for index, entry in enumerate(log_history):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("step"), int):
            raise ValueError(f"log_history[{index}] is not a dict with an integer 'step': {entry!r}")
    if metric is not None and metric not in eval_metric_names(log_history):
        logged = ", ".join(eval_metric_names(log_history)) or "none"
        raise ValueError(f"metric {metric!r} was never logged (evaluation metrics logged: {logged})")
    metric = metric or default_metric(log_history)
    dynamics = TrainingDynamics(
        loss=_series(log_history, "loss"),
        eval_loss=_series(log_history, "eval_loss"),
        learning_rate=_series(log_history, "learning_rate"),
        metric_name=metric,
        metric=_series(log_history, metric) if metric else ([], []),
    )
    if not (dynamics.loss[0] or dynamics.learning_rate[0] or dynamics.metric[0]):
        raise ValueError("log_history holds no training loss, learning rate or evaluation metric to plot")
    return dynamics


def plot_training_dynamics(
    log_history: Sequence[Mapping], path: str | os.PathLike, *, metric: str | None = None, title: str | None = None
):
    """Draw loss, learning rate and ``metric`` against step; write a PNG atomically.

    Args:
        log_history, metric: as for :func:`training_dynamics`.
        path: the ``.png`` file to write; parent directories are created.
        title: optional figure title.

    Returns:
        The :class:`matplotlib.figure.Figure` (three axes: loss, learning rate, metric).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    if Path(path).suffix.lower() != ".png":
        raise ValueError(f"the figure is written as PNG; path must end in .png, got {os.fspath(path)!r}")
    dynamics = training_dynamics(log_history, metric)
    figure = Figure(figsize=(8.0, 5.6), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, lr_axes, metric_axes = figure.subplots(3, 1, sharex=True)
    panels = [
        (loss_axes, "loss", [(dynamics.loss, "training loss", "-"), (dynamics.eval_loss, "held-out loss", "o--")]),
        (lr_axes, "learning rate", [(dynamics.learning_rate, "learning rate", "-")]),
        (
            metric_axes,
            dynamics.metric_name.removeprefix("eval_") if dynamics.metric_name else "evaluation metric",
            [(dynamics.metric, dynamics.metric_name or "", "o-")],
        ),
    ]
    for axes, label, lines in panels:
        drawn = [(series, name, style) for series, name, style in lines if series[0]]
        for (steps, values), name, style in drawn:
            axes.plot(steps, values, style, label=name, markersize=4, linewidth=1.4)
        if not drawn:
            axes.text(0.5, 0.5, "not logged", transform=axes.transAxes, ha="center", va="center", color="grey")
        if len(drawn) > 1:
            axes.legend(fontsize=8, frameon=False)
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
    lr_axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.1e}"))  # no offset text between panels
    metric_axes.set_xlabel("step")
    if title:
        figure.suptitle(title)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=DPI)
    return figure
