"""A trained model against its untrained base model: computed when the base model is evaluated, stored in the run.

Inputs: a training run directory (its ``metrics.json``, a :class:`~hf_rerank.training.record.RunRecord`, and
``eval_<name>/metrics.json``, the per-query scores of its final evaluation ``name``) and the base model's
evaluation of the same queries as ``hf-rerank evaluate`` reports it: ``{"model": reference, "metrics": {metric:
mean}, "per_query": {metric: {qid: score}}}``.

Output: the record's ``base_comparison[name]``, ``{"model", "metrics", "significance": {metric: {"delta",
"p_t_test", "p_randomisation"}}}`` (model minus base, paired over the queries; see
:func:`~hf_rerank.evaluation.significance.compare_to_base`), written back atomically. The model card shows it as
its "base model" and "Δ vs base" columns; the card itself computes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

from hf_rerank.errors import MissingFileError, UsageError
from hf_rerank.evaluation.significance import compare_to_base
from hf_rerank.training.record import RunRecord


def evaluation_matching(record: RunRecord, run_dir: Path, *, data: str, run: str, depth: int) -> str:
    """The name of the run's evaluation that reranked the top-``depth`` of first-stage run ``run`` on ``data``
    (the same directory, given as the same text or resolving to the same path); raises UsageError naming what
    the run did evaluate when none or several match."""

    def same_data(recorded: str | None) -> bool:
        if recorded is None:
            return False
        if recorded == data:
            return True
        return Path(recorded).exists() and Path(data).exists() and Path(recorded).resolve() == Path(data).resolve()

    names = [
        name
        for name, protocol in record.eval_protocol.items()
        if same_data(protocol.data) and protocol.run == run and protocol.depth == depth
    ]
    if len(names) != 1:
        evaluated = "; ".join(
            f"{name}: --data {p.data} --run {p.run} --depth {p.depth}" for name, p in record.eval_protocol.items()
        )
        problem = "no evaluation" if not names else f"{len(names)} evaluations ({', '.join(names)})"
        raise UsageError(
            f"{run_dir}/metrics.json: {problem} of --data {data} --run {run} --depth {depth}; "
            f"the run evaluated {evaluated or 'nothing'}"
        )
    return names[0]


def compare_with_base(run_dir: str | Path, name: str, base_evaluation: Mapping) -> dict:
    """``base_comparison[name]`` of the run in ``run_dir``: its evaluation ``name`` (the per-query scores in
    ``eval_<name>/metrics.json``) against ``base_evaluation`` (the base model on the same queries). Raises
    MissingFileError without those scores, UsageError when the queries differ."""
    model_file = Path(run_dir) / f"eval_{name}" / "metrics.json"
    if not model_file.is_file():
        raise MissingFileError(f"{model_file}: no such file (the per-query scores of the run's evaluation {name!r})")
    model_per_query = json.loads(model_file.read_text())["per_query"]
    try:
        significance = compare_to_base(base_evaluation["per_query"], model_per_query)
    except ValueError as error:
        raise UsageError(f"{model_file} against the base model's evaluation: {error}") from None
    return {"model": base_evaluation.get("model"), "metrics": base_evaluation["metrics"], "significance": significance}


def store_base_comparison(run_dir: str | Path, name: str, base_evaluation: Mapping) -> RunRecord:
    """Compare evaluation ``name`` of the run in ``run_dir`` with ``base_evaluation`` (:func:`compare_with_base`),
    store the result in ``run_dir/metrics.json`` (other evaluations' comparisons kept) and return the updated
    record. Raises UsageError when the run has no such evaluation or the queries differ."""
    run_dir = Path(run_dir)
    record = RunRecord.load(run_dir / "metrics.json")
    if name not in record.eval:
        raise UsageError(f"{run_dir}/metrics.json: no evaluation {name!r} (it has {', '.join(record.eval)})")
    comparison = compare_with_base(run_dir, name, base_evaluation)
    record = dataclasses.replace(record, base_comparison={**(record.base_comparison or {}), name: comparison})
    record.write(run_dir / "metrics.json")
    return record
